"""Migrations: a store of an older schema is brought to :data:`.tables.SCHEMA_VERSION` when it is
first opened for writing, in one ``BEGIN IMMEDIATE`` transaction (all of it or none of it),
unless another connection did it first (checked under the lock).

1 -> 2: ``ledger_head.summed_minor``, the sum of the log's summed amounts. 2 -> 3: the Merkle
tree, folded from every chain hash. 3 -> 4: stream numbers: the ``streams`` table, filled in
the order streams first appear in the log, and the events table rebuilt with ``stream_no`` and
its unique index on ``(stream_no, version)`` (SQLite cannot drop a table's ``UNIQUE``
constraint in place), its indexes made anew (the index by type gives way to the partial index
of :data:`.tables.RARE_TYPES`). No event's content changes, so no chain hash does.

Each step looks at the layout it finds rather than trusting the version number alone, so a
store whose tables are already (partly) those of a later schema is brought the rest of the way.
"""

from __future__ import annotations

import sqlite3
from typing import Final

from .._merkle.frontier import Frontier
from ..store import MAX_SUMMED_MINOR, SUMMED_TYPES
from .tables import (
    EVENTS_INDEXES,
    EVENTS_TABLE,
    IMMUTABLE_TRIGGERS,
    SCHEMA_VERSION,
    STREAMS_TABLE,
    TREE_TABLE,
    TREE_THRESHOLD,
)

__all__ = ["migrate"]

_SUMMED_IN: Final = ", ".join(f"'{name}'" for name in sorted(SUMMED_TYPES))
_REQUESTED_ACCOUNT: Final = EVENTS_INDEXES[2]
_COLUMNS: Final = (
    "position, stream, version, type, schema, occurred_at, recorded_at, event_id, "
    "correlation_id, causation_id, data, hash"
)


def _columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {str(row[1]) for row in conn.execute(f"PRAGMA table_info({table})")}


def _sum_amounts(conn: sqlite3.Connection) -> None:
    """Schema 1 -> 2: the head's running total of the summed amounts."""
    if "summed_minor" not in _columns(conn, "ledger_head"):
        conn.execute("ALTER TABLE ledger_head ADD COLUMN summed_minor INTEGER NOT NULL DEFAULT 0")
    conn.execute(_REQUESTED_ACCOUNT)  # added within schema 1
    try:
        (summed,) = conn.execute(
            "SELECT coalesce(sum(json_extract(data, '$.amount_minor')), 0) FROM events "
            f"WHERE type IN ({_SUMMED_IN}) "
            "AND position <= (SELECT position FROM ledger_head WHERE id = 1)"
        ).fetchone()
    except sqlite3.OperationalError as e:  # past 64 bits: no further summed amount fits
        if "overflow" not in str(e):
            raise
        summed = MAX_SUMMED_MINOR
    conn.execute("UPDATE ledger_head SET summed_minor = ? WHERE id = 1", (summed,))


def _grow_tree(conn: sqlite3.Connection) -> None:
    """Schema 2 -> 3: the Merkle tree, every chain hash up to the head folded."""
    if "frontier" not in _columns(conn, "ledger_head"):
        conn.execute("ALTER TABLE ledger_head ADD COLUMN frontier BLOB")
    conn.execute(TREE_TABLE)
    conn.execute("DELETE FROM ledger_tree")
    head = conn.execute("SELECT position FROM ledger_head WHERE id = 1").fetchone()[0]
    frontier = Frontier()
    cursor = conn.execute("SELECT hash FROM events WHERE position <= ? ORDER BY position", (head,))
    while page := cursor.fetchmany(20_000):
        nodes = frontier.append((row[0] for row in page), threshold=TREE_THRESHOLD)
        conn.executemany(
            "INSERT INTO ledger_tree VALUES (?, ?, ?)",
            [(node.level, node.index, digest) for node, digest in nodes],
        )
    conn.execute("UPDATE ledger_head SET frontier = ? WHERE id = 1", (frontier.to_bytes(),))


def _number_streams(conn: sqlite3.Connection) -> None:
    """Schema 3 -> 4: number the streams and rebuild the events table around the numbers."""
    if "stream_no" in _columns(conn, "events"):
        return
    conn.execute(STREAMS_TABLE)
    conn.execute(
        "INSERT INTO streams (name) SELECT stream FROM events "
        "WHERE stream NOT IN (SELECT name FROM streams) "
        "GROUP BY stream ORDER BY min(position)"
    )
    conn.execute(EVENTS_TABLE.replace("events (", "events_v4 (", 1))
    conn.execute(
        f"INSERT INTO events_v4 ({_COLUMNS}, stream_no) "
        f"SELECT {', '.join('e.' + c for c in _COLUMNS.split(', '))}, s.id "
        "FROM events e CROSS JOIN streams s ON s.name = e.stream ORDER BY e.position"
    )
    conn.execute("DROP TABLE events")  # its indexes and triggers with it
    conn.execute("ALTER TABLE events_v4 RENAME TO events")
    for statement in (*EVENTS_INDEXES, *IMMUTABLE_TRIGGERS):
        conn.execute(statement)


def migrate(conn: sqlite3.Connection) -> None:
    """Bring the store to :data:`SCHEMA_VERSION` (see the module docstring)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version < SCHEMA_VERSION:
            if version < 2:
                _sum_amounts(conn)
            if version < 3:
                _grow_tree(conn)
            _number_streams(conn)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
