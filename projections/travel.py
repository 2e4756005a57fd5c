"""Time travel: the state of an account, a channel, a policy or a payment as of any position or
any ``occurred_at`` moment, read from the streams involved only (never the whole log).

``position`` is inclusive; ``as_of`` bounds by ``occurred_at`` (the last position whose event
occurred at or before it, :meth:`EventStore.position_at`); with both, the earlier one holds.
The state returned has ``position`` set to that bound (clamped to the head): the last global
position it includes.

An account's state needs the events of its payments too. On an SQLite store whose projection
tables exist, its payments come from the persisted ``proj_payments`` index (plus a look at the
``PaymentRequested`` events after the projections' checkpoint), and the persisted state at the
checkpoint is the starting point when the bound is past it; on any other store, a scan of the
``PaymentRequested`` events finds them.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

import msgspec
from msgspec.structs import replace

from ledger.sqlite import SQLiteEventStore
from ledger.store import EventStore, Record, record_from_row

from . import account, payment, policy
from . import channel as channel_projection
from .account import AccountFold
from .state import AccountState, ChannelState, PaymentState, PolicyState
from .tables import EVENT_COLUMNS, PROJECTION_VERSION

__all__ = ["account_at", "bound_of", "channel_at", "payment_at", "policy_at"]

_Fetch = Callable[[str, Sequence[Any]], Awaitable[Iterable[Any]]]
_FOLD_DECODER = msgspec.msgpack.Decoder(AccountFold)


async def bound_of(
    store: EventStore, position: int | None = None, as_of: datetime | None = None
) -> int:
    """The last position a state ``position``/``as_of`` includes (0: none)."""
    bound = await store.head()
    if position is not None:
        bound = min(bound, position)
    if as_of is not None:
        bound = min(bound, await store.position_at(as_of))
    return max(0, bound)


def _sql(store: EventStore) -> _Fetch | None:
    """The SQLite store's read connection, for queries on the projection tables."""
    if isinstance(store, SQLiteEventStore):
        return store.fetch
    return None


async def _persisted(fetch: _Fetch, account_id: str) -> tuple[int | None, AccountFold | None]:
    """The account projection's checkpoint and the account's persisted fold at it, read in one
    statement (one snapshot); ``(None, None)`` when the tables do not exist, are of another
    version or hold a state this code cannot read."""
    rows = list(
        await fetch(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'proj_meta'", ()
        )
    )
    if not rows[0][0]:
        return None, None
    rows = list(
        await fetch(
            "SELECT (SELECT value FROM proj_meta WHERE key = 'version'), "
            "(SELECT position FROM proj_checkpoint WHERE name = 'account'), "
            "(SELECT fold FROM proj_accounts WHERE account_id = ?)",
            (account_id,),
        )
    )
    version, position, blob = rows[0]
    if version != PROJECTION_VERSION:
        return None, None
    try:
        stored = None if blob is None else _FOLD_DECODER.decode(blob)
    except (msgspec.DecodeError, msgspec.ValidationError, TypeError):
        return None, None
    return int(position or 0), stored


async def _sql_account_at(fetch: _Fetch, account_id: str, bound: int) -> AccountFold:
    checkpoint, stored = await _persisted(fetch, account_id)
    fold = account.new_fold(account_id)
    after = 0  # the events read are those in (after, bound]
    payment_ids: set[str] = set()
    if checkpoint is not None:
        # proj_payments may be read at a later snapshot than the checkpoint: a superset of
        # the account's payments, which is harmless (events are bounded by position)
        if checkpoint >= bound:
            if stored is None:
                return fold  # nothing of it up to the checkpoint, so nothing up to bound
            if stored.state.position <= bound:
                return stored  # nothing touched it in (bound, checkpoint]
            rows = list(
                await fetch(
                    "SELECT payment_id FROM proj_payments "
                    "WHERE account_id = ? AND requested_position <= ?",
                    (account_id, bound),
                )
            )
            payment_ids.update(r[0] for r in rows)
            scan_from = bound  # no PaymentRequested to look for beyond the index
        else:
            if stored is not None:
                fold, after = stored, checkpoint
            rows = list(
                await fetch(
                    "SELECT payment_id FROM proj_payments WHERE account_id = ?", (account_id,)
                )
            )
            payment_ids.update(r[0] for r in rows)
            scan_from = checkpoint
    else:
        scan_from = 0
    if scan_from < bound:
        rows = list(
            await fetch(
                "SELECT stream FROM events WHERE type = 'PaymentRequested' "
                "AND position > ? AND position <= ? AND json_extract(data, '$.account_id') = ?",
                (scan_from, bound, account_id),
            )
        )
        payment_ids.update(r[0].removeprefix("payment-") for r in rows)
    streams = [f"account-{account_id}", *(f"payment-{p}" for p in sorted(payment_ids))]
    rows = list(
        await fetch(
            f"SELECT {EVENT_COLUMNS} FROM events "
            "WHERE stream IN (SELECT value FROM json_each(?)) AND position > ? AND position <= ?",
            (json.dumps(streams), after, bound),
        )
    )
    rows.sort(key=lambda r: int(r[0]))
    for row in rows:
        fold = account.apply(fold, record_from_row(row))
    return fold


async def _generic_account_at(store: EventStore, account_id: str, bound: int) -> AccountFold:
    streams = [f"account-{account_id}"]
    async for rec in store.query(types=["PaymentRequested"], to_position=bound):
        if getattr(rec.event, "account_id", None) == account_id:
            streams.append(rec.stream)
    fold = account.new_fold(account_id)
    async for rec in store.read_streams(streams, to_position=bound):
        fold = account.apply(fold, rec)
    return fold


async def account_at(
    store: EventStore,
    account_id: str,
    *,
    position: int | None = None,
    as_of: datetime | None = None,
) -> AccountState | None:
    """The account as of ``position`` (inclusive) or ``as_of`` (by ``occurred_at``); ``None``
    when its stream has no event by then.

    Raises :class:`ledger.errors.UnknownEventTypeError` when an event it needs is of a type
    this version does not know.
    """
    bound = await bound_of(store, position, as_of)
    if bound == 0:
        return None
    fetch = _sql(store)
    if fetch is not None:
        fold = await _sql_account_at(fetch, account_id, bound)
    else:
        fold = await _generic_account_at(store, account_id, bound)
    if not fold.known:
        return None
    return replace(fold.state, position=bound)


async def _stream(store: EventStore, stream: str, bound: int) -> list[Record]:
    if bound == 0:
        return []
    return [rec async for rec in store.read_stream(stream, to_position=bound)]


async def channel_at(
    store: EventStore,
    channel: str,
    *,
    position: int | None = None,
    as_of: datetime | None = None,
) -> ChannelState:
    """The channel as of ``position`` or ``as_of``: ``up`` when no status event came before."""
    bound = await bound_of(store, position, as_of)
    state = channel_projection.new_state(channel)
    for rec in await _stream(store, f"channel-{channel}", bound):
        state = channel_projection.apply(state, rec)
    return replace(state, position=bound)


async def policy_at(
    store: EventStore,
    merchant: str,
    *,
    position: int | None = None,
    as_of: datetime | None = None,
) -> PolicyState:
    """The merchant's channel policy as of ``position`` or ``as_of`` (no rule for a scenario:
    every channel accepted)."""
    bound = await bound_of(store, position, as_of)
    state = policy.new_state(merchant)
    for rec in await _stream(store, f"policy-{merchant}", bound):
        state = policy.apply(state, rec)
    return replace(state, position=bound)


async def payment_at(
    store: EventStore,
    payment_id: str,
    *,
    position: int | None = None,
    as_of: datetime | None = None,
) -> PaymentState | None:
    """The payment as of ``position`` or ``as_of``; ``None`` when it was not requested by
    then."""
    bound = await bound_of(store, position, as_of)
    state: PaymentState | None = None
    for rec in await _stream(store, f"payment-{payment_id}", bound):
        state = payment.apply(state, rec)
    return None if state is None else replace(state, position=bound)
