"""The store's tables (schema 4), the constants of the file, and the layout of older schemas
that :mod:`.migrate` upgrades and :mod:`.layout` still reads."""

from __future__ import annotations

from typing import Final

from .._merkle.plan import DEFAULT_THRESHOLD

__all__ = [
    "APPLICATION_ID",
    "DDL",
    "EVENTS_INDEXES",
    "EVENTS_TABLE",
    "IMMUTABLE_TRIGGERS",
    "INDEX_FILTERS",
    "OLD_INDEX_FILTERS",
    "RARE_TYPES",
    "RARE_TYPES_CONDITION",
    "RARE_TYPES_INDEX",
    "SCHEMA_VERSION",
    "STREAMS_TABLE",
    "TREE_TABLE",
    "TREE_THRESHOLD",
]

APPLICATION_ID: Final = 0x50594C47  # "PYLG"
SCHEMA_VERSION: Final = 4
"""1: the first schema. 2: ``ledger_head.summed_minor``, the running total of the amounts the
projections add up (``ledger.store.SUMMED_TYPES``). 3: the log's Merkle tree
(:mod:`ledger.tree`): ``ledger_tree`` keeps its perfect subtrees at ``level >=``
:data:`TREE_THRESHOLD` and ``ledger_head.frontier`` its right edge. 4: stream numbers: the
``streams`` table numbers each stream in the order it first appeared, and the events' unique
index is on ``(stream_no, version)``, so the streams a group commit touches (mostly recent
ones) share a few index pages instead of one page per random name; the index by type gives way
to :data:`RARE_TYPES_INDEX`. A store of an older schema is migrated when it is first opened
for writing (:mod:`.migrate`; read-only, it is read as it is, see :mod:`.layout`)."""

TREE_THRESHOLD: Final = DEFAULT_THRESHOLD

RARE_TYPES: Final = (
    "AccountOpened",
    "ChannelPolicySet",
    "ChannelStatusChanged",
    "CreditLimitChanged",
    "CreditLineOpened",
    "CreditScoreChanged",
    "CreditStatusChanged",
    "FailoverTriggered",
    "PaymentAbandoned",
    "PaymentDeclined",
    "RepaymentMade",
    "RepaymentOverdue",
    "VerificationFailed",
)
"""The event types indexed by type (schema 4): every type but the seven each payment writes in
bulk (requested, decided, verification requested and passed, attempted, authorized, settled),
for which a read in position order is as short as a read through an index. Part of the schema:
never derived from the catalogue, so the index's condition and the queries' stay the same text."""

RARE_TYPES_CONDITION: Final = " OR ".join(f"type = '{t}'" for t in RARE_TYPES)
"""The partial index's ``WHERE``: a query that names only these types adds this very term, so
SQLite may use the index (see :meth:`.layout.Layout.types_in`). Equalities joined by ``OR``,
not ``type IN (...)``: SQLite evaluates the condition for every row inserted, and a list of
constants costs it an ephemeral table each time (measured: 3 us per event, against 1 us for
the whole index written this way)."""

RARE_TYPES_INDEX: Final = "events_by_rare_type"
"""The events of :data:`RARE_TYPES` in log order with their type, ``(position, type)``: each
group commit appends at the index's right edge (where ``(type, position)`` touched a page per
type), and a read of some rare types from a position walks it in position order, filtering on
the type the index holds, without sorting."""

EVENTS_TABLE: Final = """CREATE TABLE IF NOT EXISTS events (
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
    stream_no      INTEGER NOT NULL,
    UNIQUE (stream_no, version)
)"""
"""The events table (schema 4): ``stream_no`` is the stream's number in ``streams``."""

EVENTS_INDEXES: Final = (
    "CREATE INDEX IF NOT EXISTS events_by_time ON events (occurred_at)",
    "CREATE INDEX IF NOT EXISTS events_by_correlation ON events (correlation_id) "
    "WHERE correlation_id IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS events_requested_account "
    "ON events (json_extract(data, '$.account_id'), position) WHERE type = 'PaymentRequested'",
    f"CREATE INDEX IF NOT EXISTS {RARE_TYPES_INDEX} ON events (position, type) "
    f"WHERE {RARE_TYPES_CONDITION}",
)
"""The events table's indexes besides its unique ones (schema 4)."""

IMMUTABLE_TRIGGERS: Final = tuple(
    f"""CREATE TRIGGER IF NOT EXISTS {table}_no_{verb.lower()} BEFORE {verb} ON {table} BEGIN
    SELECT RAISE(ABORT, 'payledger {table} are immutable');
END"""
    for table in ("events", "streams")
    for verb in ("UPDATE", "DELETE")
)

STREAMS_TABLE: Final = """CREATE TABLE IF NOT EXISTS streams (
    id   INTEGER PRIMARY KEY,
    name TEXT    NOT NULL UNIQUE
)"""
"""Each stream's number, given in the order streams first appear (schema 4)."""

TREE_TABLE: Final = """CREATE TABLE IF NOT EXISTS ledger_tree (
    level INTEGER NOT NULL,
    idx   INTEGER NOT NULL,
    hash  BLOB    NOT NULL,
    PRIMARY KEY (level, idx)
) WITHOUT ROWID"""

DDL: Final = (
    EVENTS_TABLE,
    *EVENTS_INDEXES,
    STREAMS_TABLE,
    """CREATE TABLE IF NOT EXISTS ledger_head (
    id           INTEGER PRIMARY KEY CHECK (id = 1),
    position     INTEGER NOT NULL,
    hash         BLOB    NOT NULL,
    summed_minor INTEGER NOT NULL DEFAULT 0,
    frontier     BLOB
)""",
    "INSERT OR IGNORE INTO ledger_head (id, position, hash, frontier) "
    "VALUES (1, 0, zeroblob(32), zeroblob(8))",
    TREE_TABLE,
    *IMMUTABLE_TRIGGERS,
    f"PRAGMA application_id = {APPLICATION_ID}",
    f"PRAGMA user_version = {SCHEMA_VERSION}",
)
"""The schema, one statement each, run inside one transaction."""

INDEX_FILTERS: Final = {
    "events_by_time": "",
    "events_by_correlation": "WHERE correlation_id IS NOT NULL",
    "events_requested_account": "WHERE type = 'PaymentRequested'",
    RARE_TYPES_INDEX: f"WHERE {RARE_TYPES_CONDITION}",
    "sqlite_autoindex_events_1": "",
    "sqlite_autoindex_events_2": "",
}
"""Each index of the events table (schema 4) and the condition of its rows (partial indexes)."""

OLD_INDEX_FILTERS: Final = {
    "events_by_type": "",
    "events_by_time": "",
    "events_by_correlation": "WHERE correlation_id IS NOT NULL",
    "events_requested_account": "WHERE type = 'PaymentRequested'",
    "sqlite_autoindex_events_1": "",
    "sqlite_autoindex_events_2": "",
}
"""The same for schemas 1 to 3 (read as they are when opened read-only)."""
