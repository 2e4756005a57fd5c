"""The three backends for tests that must hold on each (not a test module).

A test takes the ``backend`` fixture (``tests/conftest.py``), parametrized over
:data:`BACKENDS`, or parametrizes it itself with ``indirect=["backend"]`` (to give each backend
its own number of hypothesis examples, say). ``backend.place()`` gives a new empty place for a
store, and ``place.open()`` opens a store object on it, as often as the test likes:

- ``memory``: one :class:`ledger.memory.MemoryEventStore`; every ``open`` gives that same object
  (there is no second object on the same log), closed when the place ends;
- ``sqlite``: a file in a new temporary directory;
- ``postgres``: a new schema (``search_path`` in the URL) of a database shared by the test
  session, dropped when the place ends: far cheaper than a database per hypothesis example.
  Without a server the test skips, or fails under ``PAYLEDGER_REQUIRE_POSTGRES=1`` (``make
  test``), never silently (:func:`pg_support.server_url`).

:meth:`Place.edit_row` changes a derived-state row behind the store's back (raw SQL, or the
memory store's dictionaries), for tests of ``projections.check``.
"""

from __future__ import annotations

import sqlite3
import tempfile
import uuid
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any, Final
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import anyio
import msgspec
from pg_support import admin

from ledger import EventStore, open_store
from ledger._pg.states import escape_key
from ledger.memory import MemoryEventStore
from ledger.states import MemoryStates

__all__ = ["BACKENDS", "Backend", "Place"]

BACKENDS: Final = ("memory", "sqlite", "postgres")
_PG_COLUMNS: Final = {"summary": "summary_text", "state": "state", "group": "grp"}
_SQLITE_COLUMNS: Final = {"summary": "summary", "state": "state", "group": "grp"}


def with_search_path(url: str, schema: str) -> str:
    """``url`` whose connections use ``schema`` (asyncpg passes unknown query parameters to the
    server as settings)."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "search_path"]
    query.append(("search_path", schema))
    return urlunsplit(parts._replace(query=urlencode(query)))


class Place:
    """Where one store lives (see the module docstring)."""

    def __init__(self, kind: str, target: str, memory: MemoryEventStore | None = None) -> None:
        self.kind = kind
        self.target = target
        """What ``--db`` takes: a file path, a PostgreSQL URL, or ``:memory:``."""
        self._memory = memory

    def open(
        self, *, readonly: bool = False, durability: Any = "full"
    ) -> AbstractAsyncContextManager[EventStore]:
        if self._memory is not None:
            return self._same(self._memory)
        return open_store(self.target, readonly=readonly, durability=durability)

    @staticmethod
    @asynccontextmanager
    async def _same(store: EventStore) -> AsyncIterator[EventStore]:
        yield store

    async def edit_row(self, name: str, kind: str, key: str, **changes: Any) -> None:
        """Change ``summary``, ``state`` or ``group`` of a derived-state row behind the store's
        back."""
        if self._memory is not None:
            states = self._memory.states
            assert isinstance(states, MemoryStates)
            table = states._rows[name]
            table[(kind, key)] = msgspec.structs.replace(table[(kind, key)], **changes)
            return
        columns = _PG_COLUMNS if self.kind == "postgres" else _SQLITE_COLUMNS
        sets = [f"{columns[field]} = {{}}" for field in changes]
        values = list(changes.values())
        if self.kind == "sqlite":
            sql = "UPDATE ledger_states SET " + ", ".join(s.format("?") for s in sets)
            sql += " WHERE name = ? AND kind = ? AND key = ?"
            with sqlite3.connect(self.target) as db:
                assert db.execute(sql, [*values, name, kind, key]).rowcount == 1
            db.close()
            return
        n = len(values)
        sql = "UPDATE ledger_states SET " + ", ".join(
            s.format(f"${i}") for i, s in enumerate(sets, start=1)
        )
        sql += f" WHERE name = ${n + 1} AND kind = ${n + 2} AND key = ${n + 3}"
        async with admin(self.target) as conn:
            if "group" in changes:
                values[list(changes).index("group")] = escape_key(changes["group"])
            done = await conn.execute(sql, *values, *map(escape_key, (name, kind, key)))
            assert done == "UPDATE 1", done

    async def execute(self, sql: str, *args: Any) -> None:
        """Run SQL behind the store's back (not on the memory store)."""
        if self.kind == "sqlite":
            with sqlite3.connect(self.target) as db:
                db.execute(sql, args)
            db.close()
        else:
            assert self.kind == "postgres", "no SQL on the memory store"
            async with admin(self.target) as conn:
                await conn.execute(sql, *args)


class Backend:
    """One kind of store (``memory``, ``sqlite`` or ``postgres``) for a test."""

    def __init__(self, kind: str, database: str | None = None) -> None:
        assert kind in BACKENDS
        self.kind = kind
        self._database = database

    def __repr__(self) -> str:
        return f"Backend({self.kind!r})"

    @asynccontextmanager
    async def place(self) -> AsyncIterator[Place]:
        """A new empty place for a store (see the module docstring)."""
        if self.kind == "memory":
            async with open_store(":memory:") as store:
                assert isinstance(store, MemoryEventStore)
                yield Place("memory", ":memory:", store)
        elif self.kind == "sqlite":
            with tempfile.TemporaryDirectory(prefix="payledger-t-") as tmp:
                yield Place("sqlite", str(Path(tmp) / "ledger.db"))
        else:
            assert self._database is not None
            schema = f"t_{uuid.uuid4().hex[:12]}"
            async with admin(self._database) as conn:
                await conn.execute(f'CREATE SCHEMA "{schema}"')
            try:
                yield Place("postgres", with_search_path(self._database, schema))
            finally:
                with anyio.CancelScope(shield=True):
                    async with admin(self._database) as conn:
                        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')

    @asynccontextmanager
    async def store(self, **options: Any) -> AsyncIterator[EventStore]:
        """A store in a new place, open for the block."""
        async with self.place() as place, place.open(**options) as store:
            yield store
