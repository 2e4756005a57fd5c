"""The raw ``sqlite3`` baseline the benchmarks measure payledger against: a plain connection on a
table shaped like the store's ``events`` (same columns, same indexes, WAL, ``synchronous=FULL``)
writing the same rows the cheap way (no validation, no concurrency check, no chain)."""

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
from ledger.store import to_micros

__all__ = ["INSERT", "Raw", "events_ddl", "read_decode"]

INSERT: Final = (
    "INSERT INTO events (position, stream, version, type, schema, occurred_at, recorded_at, "
    "event_id, correlation_id, causation_id, data, hash) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)"
)


async def events_ddl(tmp: Path) -> list[str]:
    """The ``events`` table and its indexes, as a fresh store in ``tmp`` creates them."""
    path = tmp / "schema.db"
    async with open_store(path):
        pass
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute(
            "SELECT sql FROM sqlite_master WHERE tbl_name = 'events' "
            "AND type IN ('table', 'index') AND sql IS NOT NULL "
            "ORDER BY type = 'index', name"
        ).fetchall()
    finally:
        conn.close()
    return [str(sql) for (sql,) in rows]


class Raw:
    """A plain ``sqlite3`` connection on a table shaped like the store's ``events``."""

    def __init__(self, path: Path, ddl: Sequence[str]) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.conn.execute("PRAGMA journal_mode = WAL")
        self.conn.execute("PRAGMA synchronous = FULL")
        for sql in ddl:
            self.conn.execute(sql)
        self.position = 0
        self.versions: dict[str, int] = {}

    def row(self, stream: str, event: Event) -> tuple[Any, ...]:
        """The row the store would write, built the cheap way (no validation, no chain)."""
        data = ENCODER.encode(event)
        self.position += 1
        version = self.versions.get(stream, 0) + 1
        self.versions[stream] = version
        return (
            self.position,
            stream,
            version,
            type(event).__name__,
            1,
            to_micros(event.occurred_at),
            time.time_ns() // 1000,
            str(uuid.uuid4()),
            None,
            None,
            data.decode(),
            hashlib.sha256(data).digest(),
        )

    def commit(self, items: Sequence[tuple[str, Event]]) -> None:
        """Every item in one transaction (one ``executemany``, one fsync)."""
        self.conn.execute("BEGIN")
        self.conn.executemany(INSERT, [self.row(s, e) for s, e in items])
        self.conn.execute("COMMIT")

    def commit_each(self, items: Sequence[tuple[str, Event]]) -> None:
        """One transaction, and so one fsync, per event."""
        conn = self.conn
        for stream, event in items:
            row = self.row(stream, event)
            conn.execute("BEGIN")
            conn.execute(INSERT, row)
            conn.execute("COMMIT")

    def commit_batches(self, batches: Sequence[tuple[str, Sequence[Event]]]) -> None:
        """One ``executemany`` in one transaction per batch."""
        for stream, events in batches:
            self.commit([(stream, e) for e in events])

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
