"""The derived state of a PostgreSQL store (:mod:`ledger.states`): two tables beside the events.

``ledger_states`` holds the rows by read model, kind and key (and an index by group);
``ledger_state_checkpoints`` each read model's checkpoint and version (see ``schema``, version
2). ``summary`` is a ``jsonb`` column for users' queries, generated from ``summary_text``, which
keeps the summary byte for byte as the read model wrote it: that is what :meth:`get`,
:meth:`grouped` and :meth:`scan` return (``jsonb`` reorders keys and spacing), so
``projections.check`` can compare rows exactly. The names and keys are ``COLLATE "C"``: rows come
back in code point order, as on the other backends, whatever the database's locale.

A commit is one transaction on a connection of its own (not the writer's: appends from every
process go on meanwhile), in this order: read the committed head and refuse a checkpoint past
it; lock the read model's checkpoint row (``INSERT ... ON CONFLICT DO NOTHING`` then ``SELECT ...
FOR UPDATE``, so two first commits of one read model queue too); compare it with ``expected``
(a mismatch rolls back and returns False); with ``reset`` delete the read model's rows and copy
the new ones in (``COPY``), otherwise upsert them; move the checkpoint; ``COMMIT``. The head
only grows, so a checkpoint checked against it stays at or below it.

Text columns cannot hold U+0000, which ids from events may contain. Names, kinds, keys and
groups are stored with an escape that keeps their order: U+0001 is the escape character,
U+0000 becomes U+0001 ``0`` and U+0001 becomes U+0001 ``1``; every other character is stored as
it is.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterable, Sequence
from typing import Any, Final

import anyio
import asyncpg

from ..errors import LedgerError, ReadOnlyError, StoreClosedError, StoreError
from ..states import PAGE, StateCheckpoint, StateRow, StateStore
from .connect import Connection, Settings, close, connect
from .errors import translate

__all__ = ["PostgresStates", "escape_key", "unescape_key"]

Fetch = Callable[[str, Sequence[Any]], Awaitable[list[Any]]]

_ESC: Final = "\x01"
_COLUMNS: Final = "kind, key, grp, position, summary_text, state"
_COPY_COLUMNS: Final = ("name", "kind", "key", "grp", "position", "summary_text", "state")
_EXISTS: Final = (
    "SELECT to_regclass(format('%I.ledger_state_checkpoints', current_schema())) IS NOT NULL"
)
_COPY_AT: Final = 500
"""From this many rows a reset copies them in (``COPY``) rather than inserting them."""
_UPSERT: Final = """
INSERT INTO ledger_states (name, kind, key, grp, position, summary_text, state)
SELECT $1, * FROM unnest($2::text[], $3::text[], $4::text[], $5::bigint[], $6::text[],
                         $7::bytea[])
ON CONFLICT (name, kind, key) DO UPDATE
    SET grp = excluded.grp, position = excluded.position,
        summary_text = excluded.summary_text, state = excluded.state
"""


def escape_key(value: str) -> str:
    """``value`` as stored in a name, kind, key or group column (see the module docstring)."""
    if _ESC in value:
        value = value.replace(_ESC, _ESC + "1")
    if "\x00" in value:
        value = value.replace("\x00", _ESC + "0")
    return value


def unescape_key(value: str) -> str:
    """The inverse of :func:`escape_key`."""
    if _ESC not in value:
        return value
    out: list[str] = []
    chars = iter(value)
    for c in chars:
        out.append(("\x00" if next(chars, "1") == "0" else _ESC) if c == _ESC else c)
    return "".join(out)


def _row(values: Sequence[Any]) -> StateRow:
    kind, key, grp, position, summary, state = values
    return StateRow(
        unescape_key(kind), unescape_key(key), unescape_key(grp), int(position), summary, state
    )


class PostgresStates(StateStore):
    """:class:`ledger.states.StateStore` on a PostgreSQL store: reads through the store's
    reading connections (``fetch``), commits on a connection of its own, one at a time."""

    def __init__(self, fetch: Fetch, settings: Settings, where: str) -> None:
        self._fetch = fetch
        self._settings = settings
        self._where = where
        self._conn: Connection | None = None
        self._lock = anyio.Lock()
        self._exists = False
        self._closed = False

    async def aclose(self) -> None:
        self._closed = True
        with anyio.CancelScope(shield=True):
            async with self._lock:
                conn, self._conn = self._conn, None
                await close(conn)

    async def _ready(self) -> bool:
        """Whether the tables exist (a store of schema version 1 has none until upgraded)."""
        if not self._exists:
            rows = await self._fetch(_EXISTS, ())
            self._exists = bool(rows[0][0])
        return self._exists

    # --- reading ---------------------------------------------------------------------------

    async def checkpoint(self, name: str) -> StateCheckpoint:
        if not await self._ready():
            return StateCheckpoint(0, None)
        rows = await self._fetch(
            "SELECT position, version FROM ledger_state_checkpoints WHERE name = $1",
            (escape_key(name),),
        )
        if not rows:
            return StateCheckpoint(0, None)
        return StateCheckpoint(int(rows[0][0]), int(rows[0][1]))

    async def get(self, name: str, kind: str, keys: Collection[str]) -> dict[str, StateRow]:
        if not keys or not await self._ready():
            return {}
        rows = await self._fetch(
            f"SELECT {_COLUMNS} FROM ledger_states "
            "WHERE name = $1 AND kind = $2 AND key = ANY($3::text[])",
            (escape_key(name), escape_key(kind), sorted({escape_key(k) for k in keys})),
        )
        found = [_row(r) for r in rows]
        return {row.key: row for row in found}

    async def grouped(self, name: str, kind: str, groups: Collection[str]) -> list[StateRow]:
        if not groups or not await self._ready():
            return []
        rows = await self._fetch(
            f"SELECT {_COLUMNS} FROM ledger_states "
            "WHERE name = $1 AND kind = $2 AND grp = ANY($3::text[]) ORDER BY key",
            (escape_key(name), escape_key(kind), sorted({escape_key(g) for g in groups})),
        )
        return [_row(r) for r in rows]

    async def scan(self, name: str, kind: str | None = None) -> AsyncIterator[list[StateRow]]:
        if not await self._ready():
            return
        params: list[Any] = [escape_key(name)]
        where = "name = $1"
        if kind is not None:
            params.append(escape_key(kind))
            where += " AND kind = $2"
        first = (
            f"SELECT {_COLUMNS} FROM ledger_states WHERE {where} ORDER BY kind, key LIMIT {PAGE}"
        )
        n = len(params)
        later = (
            f"SELECT {_COLUMNS} FROM ledger_states WHERE {where} "
            f"AND (kind, key) > (${n + 1}, ${n + 2}) ORDER BY kind, key LIMIT {PAGE}"
        )
        rows = await self._fetch(first, params)
        while rows:
            yield [_row(r) for r in rows]
            if len(rows) < PAGE:
                return
            rows = await self._fetch(later, [*params, rows[-1][0], rows[-1][1]])

    # --- writing ---------------------------------------------------------------------------

    def _check_writable(self) -> None:
        if self._closed:
            raise StoreClosedError(f"{self._where}: the store is closed")
        if self._settings.readonly:
            raise ReadOnlyError(f"{self._where}: the store is opened read-only")

    async def _connection(self) -> Connection:
        conn = self._conn
        if conn is None or conn.is_closed():
            self._conn = None
            if conn is not None:
                conn.terminate()
            conn = self._conn = await connect(self._settings, writer=True)
        return conn

    async def _transaction(self, work: Callable[[Connection], Awaitable[bool]]) -> bool:
        """Run ``work`` in one transaction on the commit connection (shielded: a transaction
        is never left half way by a cancelled caller; the caller's cancellation is raised
        afterwards)."""
        self._check_writable()
        if not await self._ready():
            raise StoreError(
                f"{self._where}: derived state: the store is at schema version 1 and has no "
                "derived-state tables; open it writable once as a role that may create them"
            )
        async with self._lock:
            with anyio.CancelScope(shield=True):
                self._check_writable()
                conn = await self._connection()
                try:
                    async with conn.transaction(isolation="read_committed"):
                        return await work(conn)
                except LedgerError:
                    raise
                except Exception as e:
                    if conn.is_closed() or not isinstance(e, asyncpg.PostgresError):
                        self._conn = None
                        conn.terminate()
                    what = f"{self._where}: derived state"
                    if isinstance(e, TypeError | ValueError | asyncpg.DataError):  # a bad row
                        raise StoreError(f"{what}: a row does not fit its columns ({e})") from e
                    raise translate(e, what, self._settings.url) from e
        raise AssertionError("unreachable: the shield suppresses nothing")

    async def commit(
        self,
        name: str,
        rows: Iterable[StateRow],
        *,
        position: int,
        version: int,
        expected: int | None,
        reset: bool = False,
    ) -> bool:
        stored_name = escape_key(name)
        latest = {(row.kind, row.key): row for row in rows}  # a key given twice: the last

        async def work(conn: Connection) -> bool:
            head = await conn.fetchval("SELECT position FROM ledger_head WHERE id = 1")
            if head is None:
                raise StoreError(f"{self._where}: the store's head row is missing (see verify)")
            if position > head:
                raise StoreError(
                    f"{self._where}: derived state: a checkpoint at {position} is past the "
                    f"head {head}"
                )
            await conn.execute(
                "INSERT INTO ledger_state_checkpoints VALUES ($1, 0, 0) "
                "ON CONFLICT (name) DO NOTHING",
                stored_name,
            )
            current = await conn.fetchval(
                "SELECT position FROM ledger_state_checkpoints WHERE name = $1 FOR UPDATE",
                stored_name,
            )
            if expected is not None and current != expected:
                raise _Moved
            values = [
                (
                    escape_key(r.kind),
                    escape_key(r.key),
                    escape_key(r.group),
                    r.position,
                    r.summary,
                    r.state,
                )
                for r in latest.values()
            ]
            if reset:
                await conn.execute("DELETE FROM ledger_states WHERE name = $1", stored_name)
            if reset and len(values) >= _COPY_AT:
                await conn.copy_records_to_table(
                    "ledger_states",
                    records=[(stored_name, *v) for v in values],
                    columns=_COPY_COLUMNS,
                )
            elif values:
                await conn.execute(_UPSERT, stored_name, *map(list, zip(*values, strict=True)))
            await conn.execute(
                "UPDATE ledger_state_checkpoints SET position = $2, version = $3 WHERE name = $1",
                stored_name,
                position,
                version,
            )
            return True

        try:
            return await self._transaction(work)
        except _Moved:
            return False

    async def drop(self, name: str) -> None:
        self._check_writable()
        if not await self._ready():
            return  # nothing was ever written

        async def work(conn: Connection) -> bool:
            await conn.execute("DELETE FROM ledger_states WHERE name = $1", escape_key(name))
            await conn.execute(
                "DELETE FROM ledger_state_checkpoints WHERE name = $1", escape_key(name)
            )
            return True

        await self._transaction(work)


class _Moved(LedgerError):
    """Raised inside a commit whose checkpoint another writer moved: rolls it back."""
