"""The projection tables in the store's SQLite file (prefix ``proj_``) and the SQL that reads
them. :mod:`projections.projector` writes them; :mod:`projections.travel` reads them to find an
account's payments without a scan and to start from a persisted state.

The ``fold`` and ``state`` columns hold the whole state, msgpack-encoded (msgspec), so that a
projector can resume from it; the other columns are there to be queried. A payment is stored as
a summary row only (its outcome, last channel, amount, positions): its whole state is the fold
of its own stream, which a projector or :func:`projections.payment_at` reads when it needs it
(a payment has a handful of events; storing each payment's state would make a rebuild write
several times more than it reads).

Every projection has a row in ``proj_checkpoint``: the last position its rows include. All of
them are written in the same transaction as the rows.
"""

from __future__ import annotations

from typing import Final

__all__ = ["CHECKPOINT_NAMES", "DROP", "EVENT_COLUMNS", "PROJECTION_VERSION", "SCHEMA", "TABLES"]

PROJECTION_VERSION: Final = 3
"""The shape of the projection tables and of the states they hold (``proj_meta.version``).
Tables of another version are dropped and rebuilt from the events by the next projector, and
ignored by time travel until then: they are derived data."""

CHECKPOINT_NAMES: Final = ("account", "balances", "channel", "payment", "policy")

TABLES: Final = (
    "proj_meta",
    "proj_checkpoint",
    "proj_accounts",
    "proj_credit_lines",
    "proj_channels",
    "proj_policies",
    "proj_policy_rules",
    "proj_payments",
    "proj_balances",
    "proj_totals",
)

SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS proj_meta (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS proj_checkpoint (
    name     TEXT PRIMARY KEY,
    position INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS proj_accounts (
    account_id TEXT PRIMARY KEY,
    known      INTEGER NOT NULL,
    holder_ref TEXT,
    score      INTEGER,
    position   INTEGER NOT NULL,
    fold       BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS proj_credit_lines (
    account_id      TEXT NOT NULL,
    product         TEXT NOT NULL,
    currency        TEXT NOT NULL,
    status          TEXT NOT NULL,
    limit_minor     INTEGER NOT NULL,
    used_minor      INTEGER NOT NULL,
    held_minor      INTEGER NOT NULL,
    available_minor INTEGER NOT NULL,
    overdue_minor   INTEGER NOT NULL,
    score           INTEGER,
    position        INTEGER NOT NULL,
    PRIMARY KEY (account_id, product)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS proj_channels (
    channel         TEXT PRIMARY KEY,
    status          TEXT NOT NULL,
    reason          TEXT NOT NULL,
    status_position INTEGER,
    position        INTEGER NOT NULL,
    state           BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS proj_policies (
    merchant TEXT PRIMARY KEY,
    position INTEGER NOT NULL,
    state    BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS proj_policy_rules (
    merchant         TEXT NOT NULL,
    scenario         TEXT NOT NULL,
    allowed_channels TEXT NOT NULL,
    reason           TEXT NOT NULL,
    position         INTEGER NOT NULL,
    PRIMARY KEY (merchant, scenario)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS proj_payments (
    payment_id         TEXT NOT NULL PRIMARY KEY,
    account_id         TEXT NOT NULL,
    merchant           TEXT NOT NULL,
    scenario           TEXT NOT NULL,
    channel            TEXT NOT NULL,
    outcome            TEXT NOT NULL,
    amount_minor       INTEGER NOT NULL,
    currency           TEXT NOT NULL,
    requested_position INTEGER NOT NULL,
    position           INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS proj_payments_by_account
    ON proj_payments (account_id, requested_position);
CREATE TABLE IF NOT EXISTS proj_balances (
    ledger_account TEXT NOT NULL,
    currency       TEXT NOT NULL,
    account_id     TEXT,
    debit_minor    INTEGER NOT NULL,
    credit_minor   INTEGER NOT NULL,
    balance_minor  INTEGER NOT NULL,
    position       INTEGER NOT NULL,
    PRIMARY KEY (ledger_account, currency)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS proj_balances_by_account
    ON proj_balances (account_id) WHERE account_id IS NOT NULL;
CREATE TABLE IF NOT EXISTS proj_totals (
    currency     TEXT PRIMARY KEY,
    debit_minor  INTEGER NOT NULL,
    credit_minor INTEGER NOT NULL,
    position     INTEGER NOT NULL
);
"""
"""Idempotent: every statement is ``IF NOT EXISTS``."""

DROP: Final = tuple(f"DELETE FROM {t}" for t in TABLES if t != "proj_meta")
"""Empty every projection table (a rebuild, in the same transaction as the new rows)."""

EVENT_COLUMNS: Final = (
    "position, stream, version, type, schema, occurred_at, recorded_at, "
    "event_id, correlation_id, causation_id, data"
)
"""The event columns :func:`ledger.store.record_from_row` decodes."""
