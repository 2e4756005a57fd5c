"""The derived state of an SQLite store (:mod:`ledger.states`): two tables in the store's file.

``ledger_states`` holds the rows, by read model, kind and key (and an index by group);
``ledger_state_checkpoints`` each read model's checkpoint and version. A commit runs on the
store's writer connection under its write lock, in one ``BEGIN IMMEDIATE`` transaction with the
checkpoint, so it serializes with appends and never sees a head it could pass. The tables are
created by the first commit; until then every read finds nothing. The projection tables of
earlier versions (``proj_*``) are dropped by that first commit: they were derived data.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterable, Sequence
from typing import Any, Final

from ..errors import StoreError
from ..states import PAGE, StateCheckpoint, StateRow, StateStore
from .writer import in_clause

__all__ = ["SQLiteStates", "commit_states"]

_SCHEMA: Final = (
    """CREATE TABLE IF NOT EXISTS ledger_states (
    name     TEXT    NOT NULL,
    kind     TEXT    NOT NULL,
    key      TEXT    NOT NULL,
    grp      TEXT    NOT NULL,
    position INTEGER NOT NULL,
    summary  TEXT    NOT NULL,
    state    BLOB    NOT NULL,
    PRIMARY KEY (name, kind, key)
) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS ledger_states_by_group ON ledger_states (name, kind, grp, key)",
    """CREATE TABLE IF NOT EXISTS ledger_state_checkpoints (
    name     TEXT    PRIMARY KEY,
    position INTEGER NOT NULL,
    version  INTEGER NOT NULL
) WITHOUT ROWID""",
)
_COLUMNS: Final = "kind, key, grp, position, summary, state"

Fetch = Callable[[str, Sequence[Any]], Awaitable[Iterable[Any]]]
Commit = Callable[[Callable[[sqlite3.Connection], bool]], Awaitable[bool]]


def _row(values: Sequence[Any]) -> StateRow:
    kind, key, grp, position, summary, state = values
    return StateRow(kind, key, grp, int(position), summary, bytes(state))


def commit_states(
    conn: sqlite3.Connection,
    name: str,
    rows: Iterable[StateRow],
    position: int,
    version: int,
    expected: int | None,
    reset: bool,
) -> bool:
    """One commit of derived state (runs on the writer connection, in its thread)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        for statement in _SCHEMA:
            conn.execute(statement)
        legacy = [
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name GLOB 'proj_*'"
            )
        ]
        for table in legacy:
            conn.execute(f'DROP TABLE "{table}"')
        head = conn.execute("SELECT position FROM ledger_head WHERE id = 1").fetchone()[0]
        if position > head:
            raise StoreError(f"a checkpoint at {position} is past the head {head}")
        found = conn.execute(
            "SELECT position FROM ledger_state_checkpoints WHERE name = ?", (name,)
        ).fetchone()
        current = 0 if found is None else int(found[0])
        if expected is not None and current != expected:
            conn.execute("ROLLBACK")
            return False
        alone = (
            reset
            and not conn.execute(
                "SELECT 1 FROM ledger_states WHERE name < ? OR name > ? LIMIT 1", (name, name)
            ).fetchone()
        )
        if alone:
            # Every row goes: SQLite empties the table page by page, not row by row, and the
            # index by group is built once, sorted, rather than grown row by row.
            conn.execute("DROP INDEX ledger_states_by_group")
            conn.execute("DELETE FROM ledger_states")
        elif reset:
            conn.execute("DELETE FROM ledger_states WHERE name = ?", (name,))
        conn.executemany(  # (rows made as they are written: a rebuild's are many)
            "INSERT OR REPLACE INTO ledger_states VALUES (?, ?, ?, ?, ?, ?, ?)",
            ((name, r.kind, r.key, r.group, r.position, r.summary, r.state) for r in rows),
        )
        if alone:
            conn.execute(_SCHEMA[1])
        conn.execute(
            "INSERT OR REPLACE INTO ledger_state_checkpoints VALUES (?, ?, ?)",
            (name, position, version),
        )
        conn.execute("COMMIT")
        return True
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


class SQLiteStates(StateStore):
    """:class:`ledger.states.StateStore` on an SQLite store: reads on the store's read
    connection, commits on its writer (``commit`` runs a function there under the write
    lock)."""

    def __init__(self, fetch: Fetch, commit: Commit) -> None:
        self._fetch = fetch
        self._commit = commit

    async def _exists(self) -> bool:
        rows = list(
            await self._fetch(
                "SELECT count(*) FROM sqlite_master WHERE name = 'ledger_state_checkpoints'", ()
            )
        )
        return bool(rows[0][0])

    async def checkpoint(self, name: str) -> StateCheckpoint:
        if not await self._exists():
            return StateCheckpoint(0, None)
        rows = list(
            await self._fetch(
                "SELECT position, version FROM ledger_state_checkpoints WHERE name = ?", (name,)
            )
        )
        if not rows:
            return StateCheckpoint(0, None)
        return StateCheckpoint(int(rows[0][0]), int(rows[0][1]))

    async def get(self, name: str, kind: str, keys: Collection[str]) -> dict[str, StateRow]:
        if not keys or not await self._exists():
            return {}
        in_keys, params = in_clause("key", sorted(keys))
        rows = await self._fetch(
            f"SELECT {_COLUMNS} FROM ledger_states WHERE name = ? AND kind = ? AND {in_keys}",
            (name, kind, *params),
        )
        return {r[1]: _row(r) for r in rows}

    async def grouped(self, name: str, kind: str, groups: Collection[str]) -> list[StateRow]:
        if not groups or not await self._exists():
            return []
        in_groups, params = in_clause("grp", sorted(groups))
        rows = await self._fetch(
            f"SELECT {_COLUMNS} FROM ledger_states WHERE name = ? AND kind = ? AND {in_groups} "
            "ORDER BY key",
            (name, kind, *params),
        )
        return [_row(r) for r in rows]

    async def scan(self, name: str, kind: str | None = None) -> AsyncIterator[list[StateRow]]:
        if not await self._exists():
            return
        after: tuple[str, str] = ("", "")
        first = True
        while True:
            sql = f"SELECT {_COLUMNS} FROM ledger_states WHERE name = ?"
            params: list[Any] = [name]
            if kind is not None:
                sql += " AND kind = ?"
                params.append(kind)
            if not first:
                sql += " AND (kind, key) > (?, ?)"
                params += list(after)
            rows = list(await self._fetch(sql + f" ORDER BY kind, key LIMIT {PAGE}", params))
            if not rows:
                return
            yield [_row(r) for r in rows]
            if len(rows) < PAGE:
                return
            after, first = (rows[-1][0], rows[-1][1]), False

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
        def run(conn: sqlite3.Connection) -> bool:
            return commit_states(conn, name, rows, position, version, expected, reset)

        return await self._commit(run)

    async def drop(self, name: str) -> None:
        def run(conn: sqlite3.Connection) -> bool:
            conn.execute("BEGIN IMMEDIATE")
            try:
                for statement in _SCHEMA:
                    conn.execute(statement)
                conn.execute("DELETE FROM ledger_states WHERE name = ?", (name,))
                conn.execute("DELETE FROM ledger_state_checkpoints WHERE name = ?", (name,))
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            return True

        await self._commit(run)
