"""Time travel: the state of an account, a channel, a policy or a payment as of any position or
any ``occurred_at`` moment, read from the streams involved only (never the whole log).

``position`` is inclusive; ``as_of`` bounds by ``occurred_at`` (the last position whose event
occurred at or before it, :meth:`EventStore.position_at`); with both, the earlier one holds.
The state returned has ``position`` set to that bound (clamped to the head): the last global
position it includes.

Everything here is folded from the events themselves (hash-chained, checked by ``verify``), never
read from the persisted projection tables: a table edited behind the store's back cannot change
what time travel answers. An account's state needs the events of its payments too; the store
finds them by an index of the payment requests (:meth:`EventStore.payments_of`). A channel's
state is its last status event (:meth:`EventStore.last_event`: one index seek).
"""

from __future__ import annotations

from datetime import datetime

from msgspec.structs import replace

from ledger.store import EventStore, Record

from . import account, payment, policy
from . import channel as channel_projection
from .account import AccountFold
from .state import AccountState, ChannelState, PaymentState, PolicyState

__all__ = ["account_at", "account_fold_at", "bound_of", "channel_at", "payment_at", "policy_at"]


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


async def account_fold_at(store: EventStore, account_id: str, bound: int) -> AccountFold:
    """The account reducer's fold of every event up to ``bound`` that concerns the account:
    its own stream and its payments' streams."""
    fold = account.new_fold(account_id)
    if bound <= 0:
        return fold
    payments = await store.payments_of(account_id, to_position=bound)
    streams = [f"account-{account_id}", *(f"payment-{p}" for p in payments)]
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
    fold = await account_fold_at(store, account_id, bound)
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
    """The channel as of ``position`` or ``as_of``: ``up`` when no status event came before.
    Its state is set by its last status event alone."""
    bound = await bound_of(store, position, as_of)
    state = channel_projection.new_state(channel)
    last = None if bound == 0 else await store.last_event(f"channel-{channel}", to_position=bound)
    if last is not None:
        state = channel_projection.apply(state, last)
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
