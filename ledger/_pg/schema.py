"""The PostgreSQL schema: the events, the head row, the triggers, the locking function, the
read models' derived state, the log's Merkle tree and the stored schema version, created in the
connection's current schema (the first of its ``search_path`` that exists).

Opening a database checks, in this order: a ``ledger_meta`` table naming payledger, at a schema
version this code reads (a newer one is refused with :class:`SchemaVersionError`); failing that,
an empty schema, which a writable open turns into a store in one transaction (under an advisory
lock, so processes racing to create it create it once) and a read-only open refuses; anything
else is another application's database (:class:`NotALedgerError`).

Schema versions:

1. the events, the head row, the triggers and ``ledger_lock_head``;
2. adds what the read models and the replay read (:data:`VERSION_2`): the derived-state tables
   (``ledger_states``, ``ledger_state_checkpoints``; see :mod:`ledger._pg.states`) and an index
   of the payment requests by account;
3. keeps in the head what the append path carries from one transaction to the next
   (:data:`VERSION_3`): ``summed_minor``, the running total of the amounts the projections add
   up (``ledger.store.SUMMED_TYPES``, rule 8 of :mod:`ledger.store`), and ``frontier``, the
   right edge of the log's Merkle tree (``Frontier.to_bytes()``); ``ledger_tree`` holds the
   tree's perfect subtrees at ``level >=`` :data:`TREE_THRESHOLD` (:mod:`ledger.tree`). Both
   are written by the append and import transactions with the events. ``ledger_lock_head``
   also returns them (a row of kind 3), and a check on the head row
   (``ledger_head_frontier_at_head``) refuses a head moved without its frontier: a writer that
   does not keep the tree (an older payledger still running, or one that planned before the
   upgrade) fails instead of leaving the tree behind the log.

A writable open brings an older store up to version 3 in one transaction, under the creation
lock (:func:`_upgrade`): version 2's tables (``IF NOT EXISTS``), then the running total summed
over the log and the tree folded from every chain hash up to the head, with writers held off
(the head table locked ``EXCLUSIVE``: readers go on until the short ``ALTER TABLE`` at the end).
The roles that may read or insert events are given the same on ``ledger_tree``, so a deployment's
writer and auditor roles keep working. A read-only open, or a role that does not own the store's
tables, leaves it at its version: it reads as before (the tree folded from the leaves when
asked, no derived state before version 2) and appends as before, the ceiling on summed amounts
holding within each transaction only.
"""

from __future__ import annotations

from typing import Final

import asyncpg

from .._merkle.frontier import Frontier
from .._merkle.plan import DEFAULT_THRESHOLD
from ..errors import NotALedgerError, SchemaVersionError, StoreError
from ..store import MAX_SUMMED_MINOR, SUMMED_TYPES
from .connect import Connection

__all__ = [
    "APPLICATION",
    "FRONTIER_AT_HEAD",
    "REQUESTED_ACCOUNT",
    "SCHEMA_VERSION",
    "TREE_THRESHOLD",
    "VERSION_2",
    "VERSION_3",
    "check_or_create",
]

APPLICATION: Final = "payledger"
SCHEMA_VERSION: Final = 3
TREE_THRESHOLD: Final = DEFAULT_THRESHOLD
"""The lowest level of the Merkle tree's perfect subtrees ``ledger_tree`` keeps."""
FRONTIER_AT_HEAD: Final = "ledger_head_frontier_at_head"
"""The check that the head's frontier holds as many leaves as the head has events."""
_FOLD_PAGE: Final = 20_000
_CREATE_LOCK: Final = 0x50594C47  # "PYLG": the advisory lock key that serialises creation

REQUESTED_ACCOUNT: Final = "(replace(data, '\\u0000', '\\ufffd')::jsonb ->> 'account_id')"
"""The account id of a ``PaymentRequested`` row, as the index ``events_requested_account`` holds
it (a query must spell it the same way to use the index). ``jsonb`` cannot hold U+0000, so the
JSON escape ``\\u0000`` is read as U+FFFD first: the cast never fails on the store's JSON (the
replacement keeps it valid JSON), and an id holding U+0000 (or the text ``\\u0000``) finds the
ids that differ from it only there, which the caller checks against the event itself."""

VERSION_2: Final = f"""
CREATE INDEX IF NOT EXISTS events_requested_account ON events ({REQUESTED_ACCOUNT}, position)
    WHERE type = 'PaymentRequested';
CREATE TABLE IF NOT EXISTS ledger_states (
    name         text    COLLATE "C" NOT NULL,
    kind         text    COLLATE "C" NOT NULL,
    key          text    COLLATE "C" NOT NULL,
    grp          text    COLLATE "C" NOT NULL,
    position     bigint  NOT NULL,
    summary_text text    NOT NULL,
    summary      jsonb   GENERATED ALWAYS AS
                     (replace(summary_text, '\\u0000', '\\ufffd')::jsonb) STORED,
    state        bytea   NOT NULL,
    PRIMARY KEY (name, kind, key)
);
COMMENT ON TABLE ledger_states IS
    'payledger: the read models'' rows, derived from the events (a rebuild writes them again); '
    'summary is summary_text (byte for byte what the read model wrote) as jsonb, to query';
CREATE INDEX IF NOT EXISTS ledger_states_by_group ON ledger_states (name, kind, grp, key);
CREATE TABLE IF NOT EXISTS ledger_state_checkpoints (
    name     text    COLLATE "C" PRIMARY KEY,
    position bigint  NOT NULL,
    version  integer NOT NULL
);
COMMENT ON TABLE ledger_state_checkpoints IS
    'payledger: the last position each read model''s rows include, and its version';
"""
"""What version 2 adds to version 1; every statement may run again."""

_LOCK_HEAD: Final = """
-- Lock the head row, then read (each query with a snapshot taken after the lock was granted,
-- so it sees every append committed before) the head, the current version of each stream, the
-- events already stored under the given ids and (version 3) the head's running total of summed
-- amounts and its Merkle frontier.
CREATE OR REPLACE FUNCTION ledger_lock_head(streams text[], ids uuid[])
RETURNS TABLE (kind integer, key text, number bigint, stream text, version integer,
               data text, hash bytea)
LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY SELECT 0, NULL::text, h.position, NULL::text, NULL::integer, NULL::text, h.hash
        FROM ledger_head h WHERE h.id = 1 FOR UPDATE;
    RETURN QUERY SELECT 1, s.name,
            (SELECT e.version FROM events e WHERE e.stream = s.name
             ORDER BY e.version DESC LIMIT 1)::bigint,
            NULL::text, NULL::integer, NULL::text, NULL::bytea
        FROM unnest(streams) AS s(name);
    RETURN QUERY SELECT 2, e.event_id::text, e.position, e.stream, e.version, e.data, NULL::bytea
        FROM events e WHERE e.event_id = ANY (ids);
    RETURN QUERY SELECT 3, NULL::text, h.summed_minor, NULL::text, NULL::integer, NULL::text,
            h.frontier
        FROM ledger_head h WHERE h.id = 1;
END
$$;
"""

_TREE: Final = f"""
CREATE TABLE IF NOT EXISTS ledger_tree (
    level integer NOT NULL,
    idx   bigint  NOT NULL,
    hash  bytea   NOT NULL,
    PRIMARY KEY (level, idx)
);
COMMENT ON TABLE ledger_tree IS
    'payledger: the log''s Merkle tree (RFC 9162 over the events'' chain hashes): the hash of '
    'every perfect subtree at level >= {TREE_THRESHOLD}, leaves [idx * 2^level, (idx + 1) * '
    '2^level), inserted by the append that completes it; derived from the events';
"""
_HEAD_COLUMNS: Final = """
ALTER TABLE ledger_head
    ADD COLUMN IF NOT EXISTS summed_minor bigint NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS frontier     bytea  NOT NULL DEFAULT decode(repeat('00', 8), 'hex');
"""
VERSION_3: Final = _TREE + _HEAD_COLUMNS + _LOCK_HEAD
"""What version 3 adds to version 2; every statement may run again (the head's new columns hold
an empty log's values until the upgrade fills them; then :data:`_FRONTIER_CHECK` is added)."""

_FRONTIER_CHECK: Final = f"""
ALTER TABLE ledger_head DROP CONSTRAINT IF EXISTS {FRONTIER_AT_HEAD};
ALTER TABLE ledger_head ADD CONSTRAINT {FRONTIER_AT_HEAD}
    CHECK (substring(frontier FROM 1 FOR 8) = int8send(position));
COMMENT ON COLUMN ledger_head.summed_minor IS
    'payledger: the sum of amount_minor over the events that the projections add up';
COMMENT ON COLUMN ledger_head.frontier IS
    'payledger: the Merkle tree''s right edge: 8 bytes of size (big-endian), then one hash '
    'per set bit of it, largest subtree first';
"""

_SUMMED_IN: Final = ", ".join(f"'{name}'" for name in sorted(SUMMED_TYPES))
_SUM: Final = f"""
SELECT least(coalesce(sum((replace(data, '\\u0000', '\\ufffd')::jsonb ->> 'amount_minor')::numeric),
                      0), {MAX_SUMMED_MINOR})::bigint
  FROM events WHERE type IN ({_SUMMED_IN}) AND position <= $1
"""
"""The running total of a log up to a head (past the ceiling, a store written before there was
one: the ceiling, so that no further summed amount is accepted)."""

_GRANT_TREE: Final = """
DO $$
DECLARE r record;
BEGIN
    FOR r IN SELECT DISTINCT a.privilege_type AS what,
                    CASE WHEN a.grantee = 0 THEN 'PUBLIC'
                         ELSE quote_ident(pg_get_userbyid(a.grantee)) END AS who
               FROM pg_class c, aclexplode(c.relacl) a
              WHERE c.oid = 'events'::regclass AND a.grantee <> c.relowner
                AND a.privilege_type IN ('SELECT', 'INSERT')
    LOOP
        EXECUTE format('GRANT %s ON ledger_tree TO %s', r.what, r.who);
    END LOOP;
END
$$;
"""
"""Whoever may read or insert events may read or insert the tree's nodes."""

_MAY_UPGRADE: Final = """
SELECT pg_has_role(c.relowner, 'USAGE') AND has_schema_privilege(current_schema(), 'CREATE')
  FROM pg_class c WHERE c.oid = 'ledger_head'::regclass
"""
"""Whether this role may alter the store's tables and create new ones."""

_DDL: Final = f"""
CREATE TABLE ledger_meta (
    id             integer PRIMARY KEY CHECK (id = 1),
    application    text    NOT NULL,
    schema_version integer NOT NULL
);
CREATE TABLE events (
    position       bigint  PRIMARY KEY,
    stream         text    NOT NULL,
    version        integer NOT NULL,
    type           text    NOT NULL,
    schema         integer NOT NULL,
    occurred_at    bigint  NOT NULL,
    recorded_at    bigint  NOT NULL,
    event_id       uuid    NOT NULL UNIQUE,
    correlation_id text,
    causation_id   text,
    data           text    NOT NULL,
    hash           bytea   NOT NULL,
    UNIQUE (stream, version)
);
COMMENT ON TABLE events IS
    'payledger: append-only; positions 1, 2, 3, ... in commit order; times in microseconds '
    'since the epoch; stream, correlation_id, causation_id escape U+0000 as U+FFFF 0';
CREATE INDEX events_by_type ON events (type, position);
CREATE INDEX events_by_time ON events (occurred_at);
CREATE INDEX events_by_correlation ON events (correlation_id)
    WHERE correlation_id IS NOT NULL;
CREATE TABLE ledger_head (
    id       integer PRIMARY KEY CHECK (id = 1),
    position bigint  NOT NULL,
    hash     bytea   NOT NULL
);
COMMENT ON TABLE ledger_head IS
    'payledger: the committed head; every append locks this row, so commits follow positions';
INSERT INTO ledger_head VALUES (1, 0, decode(repeat('00', 32), 'hex'));

CREATE FUNCTION ledger_events_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'payledger events are immutable (% refused)', TG_OP;
END
$$;
CREATE TRIGGER events_immutable BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION ledger_events_immutable();
CREATE TRIGGER events_not_truncated BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_events_immutable();

{VERSION_2}
{VERSION_3}
{_FRONTIER_CHECK}
INSERT INTO ledger_meta VALUES (1, '{APPLICATION}', {SCHEMA_VERSION});
"""
"""A new store: version 1's tables, then what each later version adds (so a store created
now and one upgraded are the same)."""

_INSPECT: Final = """
SELECT current_schema() AS schema,
       CASE WHEN current_schema() IS NULL THEN false
            ELSE to_regclass(format('%I.ledger_meta', current_schema())) IS NOT NULL
       END AS has_meta,
       (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = current_schema()
           AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')) AS objects
"""


async def _check_meta(conn: Connection, where: str) -> int:
    """The schema version of the store in ``conn``'s schema (raises when it is none or newer)."""
    try:
        row = await conn.fetchrow(
            "SELECT application, schema_version FROM ledger_meta WHERE id = 1"
        )
    except asyncpg.PostgresError as e:
        if isinstance(e, asyncpg.exceptions.InsufficientPrivilegeError):
            raise
        raise NotALedgerError(f"{where}: a PostgreSQL database, but not a payledger store") from e
    if row is None or row["application"] != APPLICATION:
        raise NotALedgerError(f"{where}: a PostgreSQL database, but not a payledger store")
    version = int(row["schema_version"])
    if version > SCHEMA_VERSION:
        raise SchemaVersionError(
            f"{where}: written by a newer payledger (schema {version}; this one reads up to "
            f"{SCHEMA_VERSION}): upgrade payledger to open it"
        )
    return version


async def _fold_tree(conn: Connection, head: int) -> Frontier:
    """Fold every chain hash up to ``head`` into the tree, inserting the perfect subtrees at
    ``level >=`` :data:`TREE_THRESHOLD` into ``ledger_tree`` page by page."""
    frontier = Frontier()
    low = 1
    while low <= head:
        high = min(head, low + _FOLD_PAGE - 1)
        rows = await conn.fetch(
            "SELECT position, hash FROM events WHERE position BETWEEN $1 AND $2 ORDER BY position",
            low,
            high,
        )
        if len(rows) != high - low + 1 or (rows and rows[-1][0] != high):
            raise StoreError(
                f"positions {low}-{high} are not all in the log: the Merkle tree cannot be "
                "built (run `payledger verify`)"
            )
        nodes = frontier.append([bytes(r[1]) for r in rows], threshold=TREE_THRESHOLD)
        if nodes:
            await conn.execute(
                "INSERT INTO ledger_tree (level, idx, hash) "
                "SELECT * FROM unnest($1::integer[], $2::bigint[], $3::bytea[])",
                [node.level for node, _ in nodes],
                [node.index for node, _ in nodes],
                [digest for _, digest in nodes],
            )
        low = high + 1
    return frontier


async def _upgrade(conn: Connection, where: str, version: int) -> int:
    """Bring a store of ``version`` up to :data:`SCHEMA_VERSION` in one transaction (see the
    module docstring); returns the version the store is at afterwards (its own when the role may
    not alter the store's tables)."""
    if not await conn.fetchval(_MAY_UPGRADE):
        return version
    try:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _CREATE_LOCK)
            version = await _check_meta(conn, where)  # again: another process may have done it
            if version >= SCHEMA_VERSION:
                return version
            # Writers wait from here (readers go on): the head cannot move under the fold.
            await conn.execute("LOCK TABLE ledger_head IN EXCLUSIVE MODE")
            if version < 2:
                await conn.execute(VERSION_2)
            head = await conn.fetchval("SELECT position FROM ledger_head WHERE id = 1")
            if head is None:
                raise StoreError(f"{where}: the store's head row is missing (see verify)")
            summed = await conn.fetchval(_SUM, head)
            await conn.execute(_TREE)
            await conn.execute("DELETE FROM ledger_tree")  # (what a hand-made downgrade left)
            frontier = await _fold_tree(conn, head)
            await conn.execute(_HEAD_COLUMNS + _LOCK_HEAD)  # readers wait from here, briefly
            await conn.execute(
                "UPDATE ledger_head SET summed_minor = $1, frontier = $2 WHERE id = 1",
                summed,
                frontier.to_bytes(),
            )
            await conn.execute(_FRONTIER_CHECK)
            await conn.execute(_GRANT_TREE)
            await conn.execute(
                "UPDATE ledger_meta SET schema_version = $1 WHERE id = 1", SCHEMA_VERSION
            )
    except asyncpg.exceptions.InsufficientPrivilegeError:
        return version
    return SCHEMA_VERSION


async def check_or_create(conn: Connection, where: str, *, create: bool) -> int:
    """Check that ``conn``'s schema holds a payledger store this code can read; create one in an
    empty schema when ``create``, and bring an older one up to :data:`SCHEMA_VERSION`. Returns
    the store's schema version. Raises :class:`NotALedgerError`, :class:`SchemaVersionError` or
    :class:`StoreError`; asyncpg errors of the creation itself are left to the caller."""
    row = await conn.fetchrow(_INSPECT)
    assert row is not None
    if row["has_meta"]:
        version = await _check_meta(conn, where)
        if version < SCHEMA_VERSION and create:
            version = await _upgrade(conn, where, version)
        return version
    if row["schema"] is None:
        raise StoreError(f"{where}: no schema of the search_path exists to hold the store")
    if row["objects"]:
        raise NotALedgerError(f"{where}: a PostgreSQL database, but not a payledger store")
    if not create:
        raise NotALedgerError(f"{where}: an empty database, not a payledger store")
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _CREATE_LOCK)
        row = await conn.fetchrow(_INSPECT)  # again, now that no one else is creating it
        assert row is not None
        if row["has_meta"]:
            version = await _check_meta(conn, where)
        elif row["objects"]:
            raise NotALedgerError(f"{where}: a PostgreSQL database, but not a payledger store")
        else:
            await conn.execute(_DDL)
            return SCHEMA_VERSION
    if version < SCHEMA_VERSION:
        version = await _upgrade(conn, where, version)
    return version
