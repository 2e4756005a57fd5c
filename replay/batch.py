"""Every payment of a log explained in one pass, with the answers :func:`replay.explain` gives.

The pass folds accounts, channels and policies as it reads the log in position order: accounts
in place (the working accounts of :mod:`projections.working`, proved equal to the account
reducer's fold), channels and policies with their reducers. At each attempt's moment (its
``PaymentAttempted``, or its first own event, CONTRACT rule 7.1) it keeps the world the attempt
met: a copy of the account's state, the merchant's (immutable) policy state and a copy of the
(few) channel states. A payment is explained when the pass reaches its last event (the store
says where each payment stream ends, so an event appended to a payment after it settled or was
abandoned is never missed, rule 7.2), from its folded state and those worlds, by
:func:`replay.assemble.assemble`.

Explaining failed payments only, the pass keeps only the payments that can fail (those with a
``PaymentDeclined`` or a ``PaymentAbandoned``) and asks the store for the events that concern
nothing but their payment (decisions, attempts, verifications, failovers: more than a third of a
log) only for those, page by page. Everything else is read for every payment: the events that
move an account (authorizations, settlements) and the account, channel and policy streams. It
reads each event's type, schema, data and stream only (:meth:`EventStore.read_payloads`), and
decodes the events of the payments it keeps whole, the others only as far as the accounts need
(:mod:`projections.slim`).
"""

from __future__ import annotations

import asyncio
import bisect
import heapq
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from typing import Any, Final, TypeVar

import msgspec

from causes import World
from ledger.errors import UnknownEventTypeError
from ledger.events import (
    CATALOGUE,
    DECODER,
    ChannelPolicySet,
    ChannelStatusChanged,
    Event,
    PaymentAttempted,
    UnknownEvent,
)
from ledger.store import EventStore, PayloadRow, decode_event
from projections import channel as channel_projection
from projections import payment as payment_projection
from projections import policy as policy_projection
from projections.account import ACCOUNT_EVENT_TYPES, CREDIT_PRODUCTS
from projections.payment import PAYMENT_EVENT_TYPES
from projections.slim import slim_of_row
from projections.state import AccountState, ChannelState, PaymentState, PolicyState
from projections.working import ACCOUNT_HANDLERS, Account

from .assemble import assemble
from .explanation import Explanation

__all__ = ["explain_failed", "explain_payments"]

_T = TypeVar("_T")
_PAGE: Final = 8192
_ENDINGS: Final = ("PaymentDeclined", "PaymentAbandoned")
"""The events without which a payment never fails (rule 7.6)."""
_MOVES_ACCOUNT: Final = frozenset(
    {"PaymentAuthorized", "PaymentSettled", "PaymentDeclined", "PaymentAbandoned"}
)
_QUIET: Final = frozenset(PAYMENT_EVENT_TYPES - _MOVES_ACCOUNT - {"PaymentRequested"})
"""Payment events that touch nothing but their payment."""
_SKIPPED: Final = sorted(_QUIET)
"""Read for the payments kept only."""
_PLAIN: Final = frozenset({"PaymentRequested", "PaymentAuthorized", "PaymentSettled"})
"""The events a payment without a decline or an abandonment is folded from for ``plain``: with
neither it can only be settled (``succeeded``) or not yet (``pending``), rule 7.6, and the pass
reads these for every payment anyway."""


class _RequestedOf(msgspec.Struct):
    """What the pass needs of every ``PaymentRequested``."""

    account_id: str
    merchant: str


_REQUESTED_OF: Final = msgspec.json.Decoder(_RequestedOf)
_SCHEMAS: Final = {name: cls.schema_version for name, cls in CATALOGUE.items()}

_Capture = tuple[int, AccountState | None, dict[str, ChannelState], PolicyState | None]
"""What an attempt met: its moment, the account, every channel, the merchant's policy."""


def _whole(row: PayloadRow) -> Event:
    """The event of a row decoded whole (:func:`ledger.store.record_from_row`'s decoding)."""
    if _SCHEMAS.get(row[1]) == row[2]:
        try:
            event: Event = DECODER.decode(row[3])
            return event
        except (msgspec.ValidationError, msgspec.DecodeError):
            pass  # decode_event says why (it raises)
    return decode_event(row[1], row[2], row[3], 0, row[0])


class _Open:
    """A payment the pass will explain, read so far."""

    __slots__ = ("account_id", "attempted", "captures", "events", "last", "merchant")

    def __init__(self, last: int) -> None:
        self.last = last
        """The position of the payment stream's last event: where it is explained."""
        self.account_id: str | None = None
        self.merchant: str | None = None
        self.events: list[tuple[int, Event]] = []
        """The payment's own events, whole, with their positions."""
        self.captures: dict[int, _Capture] = {}
        self.attempted: set[int] = set()
        """Attempts captured at their ``PaymentAttempted`` (no later own event moves them)."""


class _Pass:
    """Accounts, channels and policies as of the row being read, and the payments open."""

    def __init__(
        self,
        bounds: dict[str, tuple[int, int]],
        wanted: Callable[[PaymentState], bool] | None = None,
    ) -> None:
        self.wanted = wanted
        """Which payments to explain, judged from their state (None: every one)."""
        self.accounts: dict[str, Account] = {}
        self.channels: dict[str, ChannelState] = {}
        self.policies: dict[str, PolicyState] = {}
        self.account_of: dict[str, str] = {}
        """The account of every payment requested so far (its first request stands)."""
        self.bounds = bounds
        self.open: dict[str, _Open] = {}
        self.every: dict[str, tuple[int, int]] | None = None
        """Every payment stream's bounds when the payments not kept are folded too (``plain``)."""
        self.plain: dict[str, PaymentState | None] = {}
        """Those payments, folded from their :data:`_PLAIN` events so far."""
        self.plain_due: list[tuple[int, str]] = []
        """A heap of (last position, stream) of the payments in :attr:`plain`."""

    # --- the world ----------------------------------------------------------------------

    def _to_account(self, account_id: str, event: Any, position: int) -> None:
        account = self.accounts.get(account_id)
        if account is None:
            account = self.accounts[account_id] = Account.new(account_id)
        ACCOUNT_HANDLERS[type(event)](account, event, position)

    def _capture(self, entry: _Open, position: int) -> _Capture:
        found = None if entry.account_id is None else self.accounts.get(entry.account_id)
        policy = None if entry.merchant is None else self.policies.get(entry.merchant)
        account = found.state() if found is not None and found.known else None
        return (position, account, dict(self.channels), policy)

    # --- a row --------------------------------------------------------------------------

    def apply(self, row: PayloadRow) -> Explanation | bool | None:
        """Fold one row ``(position, type, schema, data, stream)``; returns the explanation of
        the payment it ends (``False``: it ends a payment that has none to give), else
        ``None``."""
        type_name: str = row[1]
        if type_name in PAYMENT_EVENT_TYPES:
            return self._payment_row(row, type_name, row[4])
        event: Any = slim_of_row(type_name, row[2], row[3], row[0])
        if type_name in ACCOUNT_EVENT_TYPES and type(event) in ACCOUNT_HANDLERS:
            self._to_account(event.account_id, event, row[0])
        elif isinstance(event, ChannelStatusChanged):
            name = event.channel
            state = self.channels.get(name) or channel_projection.new_state(name)
            self.channels[name] = channel_projection.apply_event(state, event, row[0])
        elif isinstance(event, ChannelPolicySet):
            merchant = event.merchant
            state_p = self.policies.get(merchant) or policy_projection.new_state(merchant)
            self.policies[merchant] = policy_projection.apply_event(state_p, event, row[0])
        elif isinstance(event, UnknownEvent):
            raise UnknownEventTypeError(event.type_name, row[0])
        return None

    def _payment_row(
        self, row: PayloadRow, type_name: str, stream: str
    ) -> Explanation | bool | None:
        position: int = row[0]
        payment_id = stream[8:]  # "payment-<id>"
        entry = self.open.get(stream)
        if entry is None:
            bounds = self.bounds.get(stream)
            if bounds is not None:
                entry = self.open[stream] = _Open(bounds[1])
        if type_name == "PaymentRequested" and payment_id not in self.account_of:
            if _SCHEMAS[type_name] == row[2]:
                try:
                    head = _REQUESTED_OF.decode(row[3])
                except (msgspec.ValidationError, msgspec.DecodeError):
                    head = None
            else:
                head = None
            if head is None:  # upcast, or not decodable: decoding it whole says why
                event: Any = _whole(row)
                head = _RequestedOf(event.account_id, event.merchant)
            self.account_of[payment_id] = head.account_id
            if entry is not None:
                entry.account_id, entry.merchant = head.account_id, head.merchant
        if entry is None:
            if self.every is not None and type_name in _PLAIN:
                self._plain_row(row, stream)
            if type_name in _MOVES_ACCOUNT:
                moved = slim_of_row(type_name, row[2], row[3], position)
                if isinstance(moved, UnknownEvent):  # (a type column that lies about its data)
                    raise UnknownEventTypeError(moved.type_name, position)
                self._move_account(payment_id, moved, position)
            return None
        whole = _whole(row)
        if isinstance(whole, UnknownEvent):
            raise UnknownEventTypeError(whole.type_name, position)
        attempt: int | None = getattr(whole, "attempt", None)
        if attempt is not None and entry.account_id is not None:
            if type(whole) is PaymentAttempted:
                entry.captures[attempt] = self._capture(entry, position)
                entry.attempted.add(attempt)
            elif attempt not in entry.captures:
                entry.captures[attempt] = self._capture(entry, position)
        if type_name in _MOVES_ACCOUNT:
            self._move_account(payment_id, whole, position)
        entry.events.append((position, whole))
        if position < entry.last:
            return None
        del self.open[stream]
        return self._explain(entry)

    def _plain_row(self, row: PayloadRow, stream: str) -> None:
        """Fold a row of a payment not kept into its state (``plain``)."""
        assert self.every is not None
        event = _whole(row)
        if isinstance(event, UnknownEvent):
            raise UnknownEventTypeError(event.type_name, row[0])
        if stream not in self.plain:
            heapq.heappush(self.plain_due, (self.every[stream][1], stream))
        self.plain[stream] = payment_projection.apply_event(self.plain.get(stream), event, row[0])

    def plain_done(self, upto: int) -> list[PaymentState]:
        """The states of the payments not kept whose streams end at or before ``upto``
        (each once; a stream without a request gives none)."""
        done: list[PaymentState] = []
        due = self.plain_due
        while due and due[0][0] <= upto:
            state = self.plain.pop(heapq.heappop(due)[1])
            if state is not None:
                done.append(state)
        return done

    def _move_account(self, payment_id: str, event: Any, position: int) -> None:
        """Route a payment event to its account, unless it cannot move a credit line (a card
        or wallet payment that holds nothing)."""
        account_id = self.account_of.get(payment_id)
        if account_id is None:
            return  # no request yet: the payment does not exist for the account either
        if type(event) not in ACCOUNT_HANDLERS:
            return  # (not an event that moves an account, whatever its type column said)
        account = self.accounts.get(account_id)
        if account is not None and getattr(event, "channel", None) not in CREDIT_PRODUCTS:
            holds = account.holds
            prefix = payment_id + "#"
            if not holds or not any(key.startswith(prefix) for key in holds):
                return
        self._to_account(account_id, event, position)

    def _explain(self, entry: _Open) -> Explanation | bool:
        state: PaymentState | None = None
        for position, event in entry.events:
            state = payment_projection.apply_event(state, event, position)
        if state is None:
            return False  # never requested: nothing to explain
        if self.wanted is not None and not self.wanted(state):
            return False  # not asked for: not judged either
        worlds: dict[int, World] = {}
        for a in state.attempts:
            captured = entry.captures.get(a.attempt)
            if captured is None:
                continue
            position, account, channels, policy = captured
            worlds[a.attempt] = World(
                position=position,
                account=account,
                channel=channels.get(a.channel) or channel_projection.new_state(a.channel),
                policy=policy or policy_projection.new_state(state.merchant),
            )
        return assemble(state, worlds)


# --- reading the log ----------------------------------------------------------------------


async def _read_ahead(
    head: int, page: Callable[[int, int], Awaitable[list[_T]]]
) -> AsyncIterator[list[_T]]:
    """``page(low, high)`` for every page of positions up to ``head``. On asyncio the next
    page's query runs in the store's thread while the caller works on the current one."""
    if head == 0:
        return
    try:
        asyncio.get_running_loop()
    except RuntimeError:  # another event loop (trio): no read-ahead
        for low in range(1, head + 1, _PAGE):
            yield await page(low, min(head, low + _PAGE - 1))
        return
    ahead: asyncio.Future[list[_T]] | None = asyncio.ensure_future(page(1, min(head, _PAGE)))
    low = 1
    try:
        while ahead is not None:
            items = await ahead
            low += _PAGE
            ahead = (
                asyncio.ensure_future(page(low, min(head, low + _PAGE - 1)))
                if low <= head
                else None
            )
            await asyncio.sleep(0)  # let the next query start before the caller works
            yield items
    finally:
        if ahead is not None:
            ahead.cancel()


class _Window:
    """The payment streams kept whose events may lie in a page of positions (pages asked for
    in position order)."""

    def __init__(self, bounds: dict[str, tuple[int, int]]) -> None:
        ordered = sorted(bounds.items(), key=lambda kv: kv[1][0])
        self.firsts = [b[0] for _, b in ordered]
        self.items = ordered
        self.started = 0
        """How many streams (in order of their first position) have been taken in."""
        self.live: dict[str, int] = {}
        """Streams taken in and not yet ended before the last page asked for, by last
        position."""

    def streams(self, low: int, high: int) -> list[str]:
        end = bisect.bisect_right(self.firsts, high)
        for stream, (_, last) in self.items[self.started : end]:
            self.live[stream] = last
        self.started = max(self.started, end)
        # a stream starting before ``low`` may still be open: those ending at or after ``low``
        self.live = {s: last for s, last in self.live.items() if last >= low}
        return list(self.live)


async def explain_payments(
    store: EventStore,
    *,
    failed_only: bool = False,
    with_failures: bool = False,
    since: datetime | None = None,
    plain: Callable[[PaymentState], object] | None = None,
    progress: Callable[[int], None] | None = None,
) -> AsyncIterator[Explanation]:
    """Explain every payment (every failed one with ``failed_only``; every one with a
    ``PaymentDeclined`` or a ``PaymentAbandoned``, whatever its outcome, with
    ``with_failures``) in one streaming pass over the log, with the answers
    :func:`replay.explain` gives.

    ``since`` keeps the payments requested at or after that moment. Each payment is explained
    when the pass reaches its last event (so in the order of their last events);
    ``progress(position)`` is called after every page.

    ``plain`` (with ``failed_only`` or ``with_failures``) is called with the state of every
    payment the pass does not keep, once it has read the payment's last position, whatever
    ``since``: a payment with neither a ``PaymentDeclined`` nor a ``PaymentAbandoned`` cannot
    have failed or met a failure (rule 7.6), so its request, authorizations and settlements
    give all its explanation would say in numbers (its outcome, ``succeeded`` or ``pending``,
    and its request), without the events it alone holds being read. The statistics count
    every payment this way at the cost of explaining the failures only.
    """
    head = await store.head()
    kept = failed_only or with_failures
    if plain is not None and not kept:
        raise ValueError("plain is for the payments a pass with failed_only or with_failures skips")
    bounds = await store.stream_bounds(
        "payment-", types=_ENDINGS if kept else None, to_position=head
    )

    def wanted(state: PaymentState) -> bool:
        if failed_only and state.outcome != "failed":
            return False
        return since is None or state.requested_at >= since

    fold = _Pass(bounds, wanted if failed_only or since is not None else None)
    if plain is not None:
        fold.every = await store.stream_bounds("payment-", to_position=head)
    window = _Window(bounds) if kept else None

    async def page(low: int, high: int) -> list[PayloadRow]:
        if window is None:
            return await store.read_payloads(low, high, with_stream=True)
        return await store.read_payloads(
            low, high, skip_types=_SKIPPED, keep_streams=window.streams(low, high), with_stream=True
        )

    last = 0
    high = 0
    async for rows in _read_ahead(head, page):
        high = min(head, high + _PAGE)  # (the pages of _read_ahead, in order)
        for row in rows:
            done = fold.apply(row)
            if isinstance(done, Explanation):
                if failed_only and done.outcome != "failed":
                    continue
                if since is not None and done.requested_at < since:
                    continue
                yield done
            last = row[0]
        if plain is not None:
            for state in fold.plain_done(high):
                plain(state)
        if progress is not None and last:
            progress(last)
    if plain is not None:
        for state in fold.plain_done(head):
            plain(state)
    if progress is not None:
        progress(head)


async def explain_failed(
    store: EventStore,
    *,
    since: datetime | None = None,
    progress: Callable[[int], None] | None = None,
) -> AsyncIterator[Explanation]:
    """Explain every failed payment of the log (requested at or after ``since``), in one
    streaming pass; each explanation is the one :func:`replay.explain` gives."""
    async for explanation in explain_payments(
        store, failed_only=True, since=since, progress=progress
    ):
        yield explanation
