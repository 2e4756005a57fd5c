"""The raw ``sqlite3`` baselines the benchmarks measure payledger against, each a plain
connection in WAL mode with ``synchronous=FULL``:

- :class:`Raw`: a table shaped like the store's ``events`` (same columns, same indexes, the
  ``streams`` table beside it) written with the same rows the cheap way (no validation, no
  concurrency check, no chain);
- :class:`Lean`: the least an event log can be: ``(position, stream number, version, data,
  hash)`` with one unique ``(stream number, version)`` index, written in the same groups the
  store's group commits form, one transaction (one fsync) per group."""

from __future__ import annotations

import hashlib
import sqlite3
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from ledger import open_store
from ledger.events import DECODER, ENCODER, Event
from ledger.prepare import uuid7
from ledger.store import to_micros

__all__ = [
    "INSERT",
    "LEAN_DDL",
    "Lean",
    "Raw",
    "events_ddl",
    "read_decode",
    "read_state_rows",
    "write_state_rows",
]

INSERT: Final = (
    "INSERT INTO events (position, stream, version, type, schema, occurred_at, recorded_at, "
    "event_id, correlation_id, causation_id, data, hash, stream_no) "
    "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)"
)
LEAN_DDL: Final = (
    "CREATE TABLE events (position INTEGER PRIMARY KEY, stream_no INTEGER NOT NULL, "
    "version INTEGER NOT NULL, data TEXT NOT NULL, hash BLOB NOT NULL, "
    "UNIQUE (stream_no, version))"
)
"""The lean events table: a stream number, a version, the data and a hash, nothing else."""


async def events_ddl(tmp: Path) -> list[str]:
    """The ``events`` and ``streams`` tables and their indexes, as a fresh store in ``tmp``
    creates them."""
    path = tmp / "schema.db"
    async with open_store(path):
        pass
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute(
            "SELECT sql FROM sqlite_master WHERE tbl_name IN ('events', 'streams') "
            "AND type IN ('table', 'index') AND sql IS NOT NULL "
            "ORDER BY type = 'index', name"
        ).fetchall()
    finally:
        conn.close()
    return [str(sql) for (sql,) in rows]


class Raw:
    """A plain ``sqlite3`` connection on a table shaped like the store's ``events``."""

    def __init__(self, path: Path, ddl: Sequence[str], *, time_ordered_ids: bool = False) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.new_id = uuid7 if time_ordered_ids else uuid.uuid4
        """The event ids: random (version 4) by default; time-ordered (version 7, as the store
        gives them) for the ceiling of :meth:`commit_groups`."""
        self.conn.execute("PRAGMA journal_mode = WAL")
        self.conn.execute("PRAGMA synchronous = FULL")
        for sql in ddl:
            self.conn.execute(sql)
        self.position = 0
        self.versions: dict[str, int] = {}
        self.numbers: dict[str, int] = {}
        self.numbered = any("stream_no" in sql for sql in ddl)
        """The table numbers streams (schema 4; a store of an older payledger does not)."""
        self.insert = (
            INSERT
            if self.numbered
            else INSERT.replace(", stream_no)", ")", 1).replace(",?)", ")", 1)
        )

    def row(self, stream: str, event: Event) -> tuple[Any, ...]:
        """The row the store would write, built the cheap way (no validation, no chain); a
        stream seen for the first time is numbered in ``streams``."""
        data = ENCODER.encode(event)
        self.position += 1
        version = self.versions.get(stream, 0) + 1
        self.versions[stream] = version
        number = self.numbers.get(stream)
        if number is None:
            number = self.numbers[stream] = len(self.numbers) + 1
            if self.numbered:
                self.conn.execute("INSERT INTO streams (id, name) VALUES (?, ?)", (number, stream))
        row = (
            self.position,
            stream,
            version,
            type(event).__name__,
            1,
            to_micros(event.occurred_at),
            time.time_ns() // 1000,
            str(self.new_id()),
            None,
            None,
            data.decode(),
            hashlib.sha256(data).digest(),
        )
        return (*row, number) if self.numbered else row

    def commit(self, items: Sequence[tuple[str, Event]]) -> None:
        """Every item in one transaction (one ``executemany``, one fsync)."""
        self.conn.execute("BEGIN")
        self.conn.executemany(self.insert, [self.row(s, e) for s, e in items])
        self.conn.execute("COMMIT")

    def commit_each(self, items: Sequence[tuple[str, Event]]) -> None:
        """One transaction, and so one fsync, per event."""
        conn = self.conn
        for stream, event in items:
            conn.execute("BEGIN")
            conn.execute(self.insert, self.row(stream, event))
            conn.execute("COMMIT")

    def commit_groups(self, groups: Sequence[Sequence[tuple[str, Event]]]) -> int:
        """Each group in one transaction, as :meth:`Lean.commit_groups` does, but into the
        store's own tables and indexes: the ceiling of any store with this schema, which must
        write at least these rows and index entries. Returns the number of events written."""
        for group in groups:
            self.commit(group)
        return self.position

    def commit_batches(self, batches: Sequence[tuple[str, Sequence[Event]]]) -> None:
        """One ``executemany`` in one transaction per batch."""
        for stream, events in batches:
            self.commit([(stream, e) for e in events])

    def close(self) -> None:
        self.conn.close()


class Lean:
    """A plain ``sqlite3`` connection on the lean table (:data:`LEAN_DDL`)."""

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.conn.execute("PRAGMA journal_mode = WAL")
        self.conn.execute("PRAGMA synchronous = FULL")
        self.conn.execute(LEAN_DDL)
        self.position = 0
        self.versions: dict[int, int] = {}
        self.numbers: dict[str, int] = {}

    def commit_groups(self, groups: Sequence[Sequence[tuple[str, Event]]]) -> int:
        """Each group in one transaction (one ``executemany``, one fsync), its rows built the
        cheap way: the event encoded, its stream numbered in a dict, SHA-256 of its data.
        Returns the number of events written."""
        conn = self.conn
        numbers = self.numbers
        versions = self.versions
        for group in groups:
            rows = []
            for stream, event in group:
                data = ENCODER.encode(event)
                number = numbers.get(stream)
                if number is None:
                    number = numbers[stream] = len(numbers) + 1
                version = versions[number] = versions.get(number, 0) + 1
                self.position += 1
                rows.append(
                    (self.position, number, version, data.decode(), hashlib.sha256(data).digest())
                )
            conn.execute("BEGIN")
            conn.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?)", rows)
            conn.execute("COMMIT")
        return self.position

    def close(self) -> None:
        self.conn.close()


def read_decode(path: Path, page: int = 20_000) -> int:
    """Every event's data read page by page and decoded with plain sqlite3 + msgspec: the least
    any rebuild must do. Returns the number of events."""
    conn = sqlite3.connect(path)
    try:
        n = 0
        after = 0
        while True:
            rows = conn.execute(
                "SELECT position, data FROM events WHERE position > ? ORDER BY position LIMIT ?",
                (after, page),
            ).fetchall()
            if not rows:
                return n
            for _, data in rows:
                DECODER.decode(data)
            n += len(rows)
            after = rows[-1][0]
    finally:
        conn.close()


def read_state_rows(path: Path) -> tuple[list[str], list[tuple[Any, ...]]]:
    """The DDL of a store's ``ledger_states`` table and its index, and every row of it (what a
    rebuild wrote), for :func:`write_state_rows`."""
    conn = sqlite3.connect(path)
    try:
        ddl = [
            str(sql)
            for (sql,) in conn.execute(
                "SELECT sql FROM sqlite_master WHERE tbl_name = 'ledger_states' "
                "AND sql IS NOT NULL ORDER BY type = 'index'"
            )
        ]
        rows = conn.execute("SELECT * FROM ledger_states").fetchall()
    finally:
        conn.close()
    return ddl, rows


def write_state_rows(path: Path, ddl: Sequence[str], rows: Sequence[tuple[Any, ...]]) -> None:
    """``rows`` written with plain ``sqlite3`` into a new file with the table of ``ddl``, as a
    rebuild commits them (WAL, ``synchronous=FULL``, one transaction, the index by group built
    after the rows)."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute(ddl[0])
        conn.execute("BEGIN")
        conn.executemany(f"INSERT INTO ledger_states VALUES ({','.join('?' * len(rows[0]))})", rows)
        for sql in ddl[1:]:
            conn.execute(sql)
        conn.execute("COMMIT")
    finally:
        conn.close()
