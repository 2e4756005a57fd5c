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
state is its last status event (:meth:`EventStore.last_event`: one index seek). The rule of one
scenario in a merchant's policy is that scenario's last ``ChannelPolicySet`` before the bound
(:func:`policy_for`): each store keeps, in memory, the policy streams it has read, indexed by
scenario (the log only grows, so what was read stays true; only events past it are read), and
a lookup is a search in that index however long the policy's history.

The ``*_state_at`` functions take the bound itself (a position at or below the head), for a
caller that judges a moment it knows (the replay engine): no head to read first.
"""

from __future__ import annotations

import bisect
import weakref
from collections.abc import Sequence
from datetime import datetime
from typing import Final

import anyio
from msgspec.structs import replace

from ledger.events import ChannelPolicySet, UnknownEvent
from ledger.store import EventStore, Record, event_of_payload

from . import account, payment, policy
from . import channel as channel_projection
from .account import CREDIT_PAYMENT_EVENTS, AccountFold
from .state import AccountState, ChannelState, PaymentState, PolicyState

__all__ = [
    "account_at",
    "account_fold_at",
    "account_folds_at",
    "account_state_at",
    "account_states_at",
    "bound_of",
    "channel_at",
    "channel_state_at",
    "payment_at",
    "policy_at",
    "policy_for",
    "policy_rule_at",
]


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
    its own stream and its payments' streams (of these, the events that can move an account:
    the reducer leaves it as it is for the others)."""
    return (await account_folds_at(store, account_id, [bound]))[0]


async def account_folds_at(
    store: EventStore, account_id: str, bounds: Sequence[int]
) -> list[AccountFold]:
    """:func:`account_fold_at` at each of ``bounds``, from one read up to the highest."""
    fold = account.new_fold(account_id)
    highest = max(bounds, default=0)
    if highest <= 0:
        return [fold for _ in bounds]
    rows = await store.read_account_events(
        account_id, types=CREDIT_PAYMENT_EVENTS, to_position=highest
    )
    wanted = sorted(set(bounds))
    folds: dict[int, AccountFold] = {}
    i = 0
    for row in rows:
        while i < len(wanted) and row[0] > wanted[i]:
            folds[wanted[i]] = fold
            i += 1
        fold = account.apply_event(fold, event_of_payload(row), row[0])
    for bound in wanted[i:]:
        folds[bound] = fold
    return [folds[b] for b in bounds]


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
    return await account_state_at(store, account_id, await bound_of(store, position, as_of))


async def account_state_at(store: EventStore, account_id: str, bound: int) -> AccountState | None:
    """:func:`account_at` as of ``bound`` itself (a position at or below the head)."""
    return (await account_states_at(store, account_id, [bound]))[0]


async def account_states_at(
    store: EventStore, account_id: str, bounds: Sequence[int]
) -> list[AccountState | None]:
    """:func:`account_state_at` at each of ``bounds`` (an attempt's moments, say), from one
    read up to the highest."""
    folds = await account_folds_at(store, account_id, bounds)
    return [
        replace(fold.state, position=bound) if bound > 0 and fold.known else None
        for fold, bound in zip(folds, bounds, strict=True)
    ]


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
    return await channel_state_at(store, channel, await bound_of(store, position, as_of))


async def channel_state_at(store: EventStore, channel: str, bound: int) -> ChannelState:
    """:func:`channel_at` as of ``bound`` itself (a position at or below the head)."""
    state = channel_projection.new_state(channel)
    last = None if bound <= 0 else await store.last_event(f"channel-{channel}", to_position=bound)
    if last is not None:
        state = channel_projection.apply(state, last)
    return replace(state, position=max(0, bound))


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


async def policy_for(
    store: EventStore,
    merchant: str,
    scenario: str,
    *,
    position: int | None = None,
    as_of: datetime | None = None,
) -> PolicyState:
    """The merchant's channel policy as of ``position`` or ``as_of``, for ``scenario`` only:
    its ``rules`` hold that scenario's rule, if it has one (what the blocking conditions read
    of a policy), found by one read however long the policy's history."""
    bound = await bound_of(store, position, as_of)
    return await policy_rule_at(store, merchant, scenario, bound)


async def policy_rule_at(
    store: EventStore, merchant: str, scenario: str, bound: int
) -> PolicyState:
    """:func:`policy_for` as of ``bound`` itself (a position at or below the head)."""
    state = policy.new_state(merchant)
    if bound > 0:
        histories = _HISTORIES.setdefault(store, {})
        history = histories.get(merchant)
        if history is None:
            history = histories[merchant] = _PolicyHistory(merchant)
        found = await history.at(store, scenario, bound)
        if found is not None:
            state = policy.apply(state, found)
    return replace(state, position=max(0, bound))


class _PolicyHistory:
    """A merchant's policy stream as read so far, by scenario (see the module docstring)."""

    def __init__(self, merchant: str) -> None:
        self.stream = f"policy-{merchant}"
        self.version = 0
        """The stream's last version read."""
        self.upto = 0
        """Every event of the stream at or below this position is read."""
        self.by_scenario: dict[str, tuple[list[int], list[Record]]] = {}
        """Each scenario's ``ChannelPolicySet`` events: their positions, and them."""
        self.unknown: Record | None = None
        """The first event of a type this version does not know, if one was read."""
        self.lock = anyio.Lock()

    async def at(self, store: EventStore, scenario: str, bound: int) -> Record | None:
        """The scenario's last ``ChannelPolicySet`` at or below ``bound``. Raises
        :class:`UnknownEventTypeError` when an event of an unknown type comes first, as a fold
        of the stream does."""
        if bound > self.upto:
            async with self.lock:
                if bound > self.upto:
                    await self._read(store, bound)
        if self.unknown is not None and self.unknown.position <= bound:
            policy.apply(policy.new_state(""), self.unknown)  # raises, naming it
        positions, records = self.by_scenario.get(scenario, ([], []))
        i = bisect.bisect_right(positions, bound)
        return records[i - 1] if i else None

    async def _read(self, store: EventStore, bound: int) -> None:
        async for rec in store.read_stream(self.stream, self.version + 1, to_position=bound):
            self.version = rec.version
            event = rec.event
            if isinstance(event, ChannelPolicySet):
                positions, records = self.by_scenario.setdefault(event.scenario, ([], []))
                positions.append(rec.position)
                records.append(rec)
            elif isinstance(event, UnknownEvent) and self.unknown is None:
                self.unknown = rec
        self.upto = bound


_HISTORIES: Final[weakref.WeakKeyDictionary[EventStore, dict[str, _PolicyHistory]]] = (
    weakref.WeakKeyDictionary()
)
"""The policy streams each store has been asked for, by merchant."""


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
