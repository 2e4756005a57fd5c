"""Stores of older schemas, made from a store written by this payledger (no binary files in the
repository): the file rewritten as payledger wrote it at schema 1, 2 or 3, the events and the
head kept as they are, so every chain hash, the head and the summed amounts stay what they were.

The tables below are copied from the payledger of schema 3 and never change with the schema:
they are what older stores in the field hold.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Final

__all__ = ["V3_EVENTS", "downgrade"]

V3_EVENTS: Final = """CREATE TABLE events (
    position       INTEGER PRIMARY KEY,
    stream         TEXT    NOT NULL,
    version        INTEGER NOT NULL,
    type           TEXT    NOT NULL,
    schema         INTEGER NOT NULL,
    occurred_at    INTEGER NOT NULL,
    recorded_at    INTEGER NOT NULL,
    event_id       TEXT    NOT NULL UNIQUE,
    correlation_id TEXT,
    causation_id   TEXT,
    data           TEXT    NOT NULL,
    hash           BLOB    NOT NULL,
    UNIQUE (stream, version)
)"""
"""The events table up to schema 3: unique by stream name and version."""

_V3_INDEXES: Final = (
    "CREATE INDEX events_by_type ON events (type, position)",
    "CREATE INDEX events_by_time ON events (occurred_at)",
    "CREATE INDEX events_by_correlation ON events (correlation_id) "
    "WHERE correlation_id IS NOT NULL",
    "CREATE INDEX events_requested_account "
    "ON events (json_extract(data, '$.account_id'), position) WHERE type = 'PaymentRequested'",
    """CREATE TRIGGER events_no_update BEFORE UPDATE ON events BEGIN
    SELECT RAISE(ABORT, 'payledger events are immutable');
END""",
    """CREATE TRIGGER events_no_delete BEFORE DELETE ON events BEGIN
    SELECT RAISE(ABORT, 'payledger events are immutable');
END""",
)
_COLUMNS: Final = (
    "position, stream, version, type, schema, occurred_at, recorded_at, event_id, "
    "correlation_id, causation_id, data, hash"
)


def downgrade(path: Path, version: int) -> None:
    """Rewrite the closed store at ``path`` as payledger wrote it at schema ``version``: 3 (the
    events table unique by stream name, the index by type, no ``streams``), 2 (no Merkle tree
    either) or 1 (no running total of the summed amounts either)."""
    if version not in (1, 2, 3):
        raise ValueError(f"no older schema {version}")
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(V3_EVENTS.replace("events (", "events_old (", 1))
        conn.execute(f"INSERT INTO events_old SELECT {_COLUMNS} FROM events ORDER BY position")
        conn.execute("DROP TABLE events")
        conn.execute("DROP TABLE streams")  # (its triggers with it)
        conn.execute("ALTER TABLE events_old RENAME TO events")
        for statement in _V3_INDEXES:
            conn.execute(statement)
        if version <= 2:
            conn.execute("ALTER TABLE ledger_head DROP COLUMN frontier")
            conn.execute("DROP TABLE ledger_tree")
        if version <= 1:
            conn.execute("ALTER TABLE ledger_head DROP COLUMN summed_minor")
        conn.execute(f"PRAGMA user_version = {version}")
        conn.execute("COMMIT")
        conn.execute("VACUUM")
    finally:
        conn.close()
