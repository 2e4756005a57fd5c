"""The statements of the append and read paths, and the escaping of the free-text columns.

PostgreSQL ``text`` cannot hold U+0000, which a stream name, a correlation id or a causation id
may contain (the catalogue allows any Unicode text). Those three columns are stored escaped:
U+FFFF is the escape character, U+0000 becomes U+FFFF ``0`` and U+FFFF itself is doubled. Every
other name is stored as it is, so SQL written by hand finds ``account-A1`` as ``account-A1``. The
hash chain is computed over the real, unescaped values, on both backends alike. ``data`` is the
planner's JSON text, byte for byte (JSON escapes U+0000 itself).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Final

from .._merkle.tree import NodeId
from ..store import Record, record_from_row

__all__ = [
    "BACKWARDS",
    "BY_TIME",
    "COLUMNS",
    "HEAD_BOUND",
    "LOCK_HEAD",
    "MAX_POSITION",
    "POSITION_ENDS",
    "SELECT",
    "WRITE",
    "WRITE_TREE",
    "escape",
    "escape_optional",
    "record",
    "unescape",
    "unescape_optional",
    "write_args",
    "write_tree_args",
]

ESC: Final = "\uffff"
_ESCAPED: Final = re.compile("\uffff(.)", re.DOTALL)
MAX_POSITION: Final = (1 << 63) - 1

COLUMNS: Final = (
    "position, stream, version, type, schema, occurred_at, recorded_at, "
    "event_id, correlation_id, causation_id, data"
)
SELECT: Final = f"SELECT {COLUMNS} FROM events"
"""A stored row without its hash, in the order :func:`ledger.store.record_from_row` reads."""

HEAD_BOUND: Final = "position <= (SELECT h.position FROM ledger_head h WHERE h.id = 1)"
"""Reads stop at the committed head, read in the same statement (one snapshot)."""

POSITION_ENDS: Final = (
    "SELECT h.position, (SELECT occurred_at FROM events WHERE position = 1), "
    "(SELECT occurred_at FROM events WHERE position = h.position) "
    "FROM ledger_head h WHERE h.id = 1"
)
"""The committed head and the first and last events' times (``position_at``)."""
BACKWARDS: Final = "SELECT max(position) FROM events WHERE occurred_at <= $1 AND position <= $2"
"""The last event at or before a moment, read backwards from the head ``$2`` (the primary
key's order: the server stops at the first row that qualifies)."""
BY_TIME: Final = (
    "SELECT max(position) FROM (SELECT position FROM events WHERE occurred_at <= $1 "
    "AND position <= $2 ORDER BY occurred_at OFFSET 0) s"
)
"""The same through the index by time: asking for the rows in time order (``OFFSET 0`` keeps
the subquery whole) makes the server read that index up to the moment, whatever its estimate
of how many rows qualify."""

LOCK_HEAD: Final = (
    "SELECT kind, key, number, stream, version, data, hash FROM ledger_lock_head($1, $2)"
)
"""Lock the head row and read what planning a group needs (see ``schema``): one round trip."""

WRITE: Final = """
WITH written AS (
    INSERT INTO events (position, stream, version, type, schema, occurred_at, recorded_at,
                        event_id, correlation_id, causation_id, data, hash)
    SELECT * FROM unnest($1::bigint[], $2::text[], $3::integer[], $4::text[], $5::integer[],
                         $6::bigint[], $7::bigint[], $8::uuid[], $9::text[], $10::text[],
                         $11::text[], $12::bytea[])
), head AS (
    UPDATE ledger_head SET position = $13, hash = $14 WHERE id = 1
)
SELECT pg_notify('payledger', $13::text)
"""
"""Insert a group's rows, move the head past them and queue the wake-up notification (sent
by PostgreSQL at commit, never before): one statement, one round trip."""


WRITE_TREE: Final = """
WITH written AS (
    INSERT INTO events (position, stream, version, type, schema, occurred_at, recorded_at,
                        event_id, correlation_id, causation_id, data, hash)
    SELECT * FROM unnest($1::bigint[], $2::text[], $3::integer[], $4::text[], $5::integer[],
                         $6::bigint[], $7::bigint[], $8::uuid[], $9::text[], $10::text[],
                         $11::text[], $12::bytea[])
), nodes AS (
    INSERT INTO ledger_tree (level, idx, hash)
    SELECT * FROM unnest($15::integer[], $16::bigint[], $17::bytea[])
), head AS (
    UPDATE ledger_head SET position = $13, hash = $14, summed_minor = $18, frontier = $19
    WHERE id = 1
)
SELECT pg_notify('payledger', $13::text)
"""
""":data:`WRITE` for a store of schema version 3: also the Merkle tree's completed nodes, and the
head's running total of summed amounts and frontier, in the same statement."""


def escape(value: str) -> str:
    """``value`` as stored in a text column (see the module docstring)."""
    if ESC in value:
        value = value.replace(ESC, ESC + ESC)
    if "\x00" in value:
        value = value.replace("\x00", ESC + "0")
    return value


def escape_optional(value: str | None) -> str | None:
    return None if value is None else escape(value)


def _unescape_match(m: re.Match[str]) -> str:
    return ESC if m.group(1) == ESC else "\x00"


def unescape(value: str) -> str:
    """The inverse of :func:`escape`."""
    return _ESCAPED.sub(_unescape_match, value) if ESC in value else value


def unescape_optional(value: str | None) -> str | None:
    return value if value is None or ESC not in value else unescape(value)


def record(row: Any) -> Record:
    """A :class:`Record` from a row selected as :data:`SELECT`."""
    stream, corr, caus = row[1], row[8], row[9]
    if ESC in stream or (corr is not None and ESC in corr) or (caus is not None and ESC in caus):
        row = list(row)
        row[1] = unescape(stream)
        row[8] = unescape_optional(corr)
        row[9] = unescape_optional(caus)
    return record_from_row(row)


def write_args(rows: Sequence[tuple[Any, ...]], position: int, head_hash: bytes) -> list[Any]:
    """The parameters of :data:`WRITE` for a planner's rows (``ledger.store.ROW_COLUMNS``)."""
    columns: list[Any] = [list(column) for column in zip(*rows, strict=True)]
    columns[1] = [escape(s) for s in columns[1]]
    columns[8] = [escape_optional(s) for s in columns[8]]
    columns[9] = [escape_optional(s) for s in columns[9]]
    return [*columns, position, head_hash]


def write_tree_args(
    rows: Sequence[tuple[Any, ...]],
    position: int,
    head_hash: bytes,
    nodes: Sequence[tuple[NodeId, bytes]],
    summed_minor: int,
    frontier: bytes,
) -> list[Any]:
    """The parameters of :data:`WRITE_TREE`."""
    return [
        *write_args(rows, position, head_hash),
        [node.level for node, _ in nodes],
        [node.index for node, _ in nodes],
        [digest for _, digest in nodes],
        summed_minor,
        frontier,
    ]
