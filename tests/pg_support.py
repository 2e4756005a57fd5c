"""PostgreSQL for the tests: the server's URL, a fresh database per test, an admin connection.

``make test`` and ``.ci/run`` start a throwaway server with ``.ci/postgres.sh`` and export its URL
in ``PAYLEDGER_TEST_POSTGRES_URL`` (a superuser: the tests tamper with triggers and end other
sessions), with ``PAYLEDGER_REQUIRE_POSTGRES=1``: then a missing URL fails the tests that need
PostgreSQL. Run by hand without a URL, those tests skip and say why.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import TypeVar
from urllib.parse import urlsplit, urlunsplit

import anyio
import asyncpg
import pytest

__all__ = [
    "ENV_REQUIRE",
    "ENV_URL",
    "admin",
    "database_url",
    "fresh_database",
    "run",
    "server_url",
    "sync_database",
]

T = TypeVar("T")

ENV_URL = "PAYLEDGER_TEST_POSTGRES_URL"
ENV_REQUIRE = "PAYLEDGER_REQUIRE_POSTGRES"


def server_url() -> str:
    """The test server's URL; skips the test (fails it under ``PAYLEDGER_REQUIRE_POSTGRES=1``)
    when there is none."""
    url = os.environ.get(ENV_URL)
    if url:
        return url
    if os.environ.get(ENV_REQUIRE) == "1":
        pytest.fail(
            f"{ENV_REQUIRE}=1 but {ENV_URL} is not set: the PostgreSQL server did not start "
            "(see .ci/postgres.sh)"
        )
    pytest.skip(f"no PostgreSQL server: set {ENV_URL}, or run `make test`, which starts one")


def database_url(url: str, name: str) -> str:
    """``url`` naming database ``name`` instead."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


@asynccontextmanager
async def admin(url: str | None = None) -> AsyncIterator[asyncpg.Connection[asyncpg.Record]]:
    """A plain asyncpg connection to the server's own database (a superuser's)."""
    conn = await asyncpg.connect(url or server_url())
    try:
        yield conn
    finally:
        with anyio.CancelScope(shield=True):
            await conn.close()


@asynccontextmanager
async def fresh_database(prefix: str = "payledger_t") -> AsyncIterator[str]:
    """A new empty database for one test, dropped afterwards; yields its URL."""
    url = server_url()
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    async with admin(url) as conn:
        await conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield database_url(url, name)
    finally:
        with anyio.CancelScope(shield=True):
            async with admin(url) as conn:
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run(fn: Callable[[], Awaitable[T]]) -> T:
    """Run ``fn`` in a new event loop (for tests that are not async: the CLI runs its own)."""
    return anyio.run(fn, backend="asyncio")


@contextmanager
def sync_database(prefix: str = "payledger_t") -> Iterator[str]:
    """:func:`fresh_database` for a test that is not async."""
    url = server_url()
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"

    async def create() -> None:
        async with admin(url) as conn:
            await conn.execute(f'CREATE DATABASE "{name}"')

    async def drop() -> None:
        async with admin(url) as conn:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    run(create)
    try:
        yield database_url(url, name)
    finally:
        run(drop)
