"""Shared test configuration: aiosqlite works on asyncio only, so anyio tests run there; the
``backend`` fixture runs a test on each store backend (:mod:`backends`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from backends import BACKENDS, Backend
from hypothesis import HealthCheck, settings
from pg_support import sync_database

settings.register_profile(
    "ci",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
settings.load_profile("ci")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """One database for the session's ``postgres`` places (each test takes a schema of it)."""
    with sync_database("payledger_shared") as url:
        yield url


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Backend:
    """A store backend: each test runs on memory, SQLite and PostgreSQL (parametrize it with
    ``indirect=["backend"]`` to choose)."""
    kind: str = request.param
    database = request.getfixturevalue("pg_database") if kind == "postgres" else None
    return Backend(kind, database)
