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
    "VERSION_2_LOCK_HEAD",
    "admin",
    "database_url",
    "downgrade_to_2",
    "fresh_database",
    "run",
    "server_url",
    "sync_database",
]

T = TypeVar("T")

ENV_URL = "PAYLEDGER_TEST_POSTGRES_URL"
ENV_REQUIRE = "PAYLEDGER_REQUIRE_POSTGRES"


VERSION_2_LOCK_HEAD = """
CREATE OR REPLACE FUNCTION ledger_lock_head(streams text[], ids uuid[])
RETURNS TABLE (kind integer, key text, number bigint, stream text, version integer,
               data text, hash bytea)
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY SELECT 0, NULL::text, h.position, NULL::text, NULL::integer, NULL::text, h.hash
        FROM ledger_head h WHERE h.id = 1 FOR UPDATE;
    RETURN QUERY SELECT 1, s.name,
            (SELECT e.version FROM events e WHERE e.stream = s.name
             ORDER BY e.version DESC LIMIT 1)::bigint,
            NULL::text, NULL::integer, NULL::text, NULL::bytea
        FROM unnest(streams) AS s(name);
    RETURN QUERY SELECT 2, e.event_id::text, e.position, e.stream, e.version, e.data, NULL::bytea
        FROM events e WHERE e.event_id = ANY (ids);
END
$$;
"""
"""``ledger_lock_head`` as schema versions 1 and 2 created it (no row of kind 3)."""


async def downgrade_to_2(conn: asyncpg.Connection[asyncpg.Record]) -> None:
    """Make the store in ``conn``'s schema what schema version 2 created: no running total or
    frontier in the head, no ``ledger_tree``, the version 2 locking function."""
    await conn.execute(
        "ALTER TABLE ledger_head DROP CONSTRAINT ledger_head_frontier_at_head, "
        "DROP COLUMN summed_minor, DROP COLUMN frontier; "
        "DROP TABLE ledger_tree; "
        f"{VERSION_2_LOCK_HEAD}; "
        "UPDATE ledger_meta SET schema_version = 2"
    )


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
