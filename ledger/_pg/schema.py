"""The PostgreSQL schema: the events, the head row, the triggers, the locking function, the
read models' derived state and the stored schema version, created in the connection's current
schema (the first of its ``search_path`` that exists).

Opening a database checks, in this order: a ``ledger_meta`` table naming payledger, at a schema
version this code reads (a newer one is refused with :class:`SchemaVersionError`); failing that,
an empty schema, which a writable open turns into a store in one transaction (under an advisory
lock, so processes racing to create it create it once) and a read-only open refuses; anything
else is another application's database (:class:`NotALedgerError`).

Schema versions:

1. the events, the head row, the triggers and ``ledger_lock_head``;
2. adds what the read models and the replay read (:data:`VERSION_2`): the derived-state tables
   (``ledger_states``, ``ledger_state_checkpoints``; see :mod:`ledger._pg.states`) and an index
   of the payment requests by account. A writable open of a version 1 store adds them (``IF NOT
   EXISTS``, in one transaction under the creation lock; the event tables are left as they are).
   A read-only open, or a role that may not create tables, leaves it at version 1: it reads as
   before, its derived state is empty and cannot be written, and an account's payments are
   found by a scan of the requests instead of an index.
"""

from __future__ import annotations

from typing import Final

import asyncpg

from ..errors import NotALedgerError, SchemaVersionError, StoreError
from .connect import Connection

__all__ = ["APPLICATION", "REQUESTED_ACCOUNT", "SCHEMA_VERSION", "VERSION_2", "check_or_create"]

APPLICATION: Final = "payledger"
SCHEMA_VERSION: Final = 2
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

-- Lock the head row, then read (each query with a snapshot taken after the lock was granted,
-- so it sees every append committed before) the head, the current version of each stream and
-- the events already stored under the given ids.
CREATE FUNCTION ledger_lock_head(streams text[], ids uuid[])
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
END
$$;

{VERSION_2}
INSERT INTO ledger_meta VALUES (1, '{APPLICATION}', {SCHEMA_VERSION});
"""

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


async def _upgrade(conn: Connection, where: str) -> int:
    """Bring a version 1 store to version 2 (see the module docstring); returns the version the
    store is at afterwards (still 1 when the role may not create the new tables)."""
    try:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _CREATE_LOCK)
            version = await _check_meta(conn, where)  # again: another process may have done it
            if version >= SCHEMA_VERSION:
                return version
            await conn.execute(VERSION_2)
            await conn.execute(
                "UPDATE ledger_meta SET schema_version = $1 WHERE id = 1", SCHEMA_VERSION
            )
    except asyncpg.exceptions.InsufficientPrivilegeError:
        return 1
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
            version = await _upgrade(conn, where)
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
        version = await _upgrade(conn, where)
    return version
