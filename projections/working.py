"""Every projection at once, changed in place: what rebuilds and catch-ups fold the log into.

:class:`projections.World` applies the pure reducers, each event making new immutable states
(a copy of the account, of its credit line, of the payment and its attempts): the
specification, and what time travel and the router use. :class:`Working` reaches the same
persisted rows with mutable working state: an account, a payment (only what its row needs:
:mod:`projections._working.payment`), a ledger account's balance and a currency's totals are
changed in place, and turned into the states of :mod:`projections.state` and
:mod:`projections.balances` only when :meth:`Working.rows` writes them. Channels and policies
are few and rarely change: they keep the pure reducers' states.

It reads stored rows through :mod:`projections.slim`, so a pass decodes only the fields the
rows depend on. ``tests/test_working.py`` folds random logs both ways and compares the rows,
byte for byte, with :func:`projections.rows.rows_of` of the pure fold.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from itertools import count
from operator import itemgetter, ne
from typing import Any, Final

import msgspec

from ledger.errors import UnknownEventTypeError
from ledger.events import CATALOGUE, ChannelPolicySet, ChannelStatusChanged, UnknownEvent
from ledger.states import StateRow
from ledger.store import PayloadRow, Record

from . import channel, policy, slim
from ._working import payment as working_payment
from ._working.account import HANDLERS as _ACCOUNT_HANDLERS
from ._working.account import Account as Account
from ._working.payment import Payment
from .account import AccountFold
from .balances import Balance, LedgerTotals, Leg, receivable_of, repayment_legs, settlement_legs
from .fold import Changes
from .rows import (
    account_row,
    balance_key,
    balance_row,
    channel_row,
    payment_row_of,
    policy_row,
    total_row,
)
from .state import ChannelState, PolicyState

__all__ = ["ACCOUNT_HANDLERS", "Account", "Working"]

_FOLD: Final = msgspec.msgpack.Decoder(AccountFold)
_CHANNEL: Final = msgspec.msgpack.Decoder(ChannelState)
_POLICY: Final = msgspec.msgpack.Decoder(PolicyState)
_BALANCE: Final = msgspec.msgpack.Decoder(Balance)
_TOTALS: Final = msgspec.msgpack.Decoder(LedgerTotals)


class _Balance:
    """One ledger account in one currency (:class:`projections.balances.Balance`), mutable."""

    __slots__ = (
        "account_id",
        "credit_minor",
        "currency",
        "debit_minor",
        "ledger_account",
        "position",
    )

    def __init__(self, b: Balance) -> None:
        self.ledger_account = b.ledger_account
        self.currency = b.currency
        self.account_id = b.account_id
        self.debit_minor = b.debit_minor
        self.credit_minor = b.credit_minor
        self.position = b.position

    def frozen(self) -> Balance:
        return Balance(
            ledger_account=self.ledger_account,
            currency=self.currency,
            account_id=self.account_id,
            debit_minor=self.debit_minor,
            credit_minor=self.credit_minor,
            position=self.position,
        )


class _Totals:
    """Every posting of one currency (:class:`projections.balances.LedgerTotals`), mutable."""

    __slots__ = ("credit_minor", "currency", "debit_minor", "position")

    def __init__(self, t: LedgerTotals) -> None:
        self.currency = t.currency
        self.debit_minor = t.debit_minor
        self.credit_minor = t.credit_minor
        self.position = t.position

    def frozen(self) -> LedgerTotals:
        return LedgerTotals(
            currency=self.currency,
            debit_minor=self.debit_minor,
            credit_minor=self.credit_minor,
            position=self.position,
        )


def _payment_row(payment_id: str, p: Payment) -> StateRow:
    return payment_row_of(
        payment_id,
        account_id=p.account_id,
        merchant=p.merchant,
        scenario=p.scenario,
        channel=p.channel,
        outcome=p.outcome,
        amount_minor=p.amount_minor,
        currency=p.currency,
        requested_position=p.requested_position,
        position=p.position,
    )


class Working(Changes):
    """The working state of every projection after the events applied so far (see the module
    docstring). Like :class:`projections.World` it remembers which states changed (the
    ``dirty_*`` sets of :class:`projections.fold.Changes`) so that a commit writes only
    those."""

    __slots__ = (
        "accounts",
        "balances",
        "channels",
        "payments",
        "policies",
        "position",
        "totals",
        "track",
    )

    def __init__(self, *, track: bool = True) -> None:
        """``track=False``: do not remember which states changed (a rebuild writes every
        state: the sets would only take memory and time); they stay empty."""
        super().__init__()
        self.track = track
        self.position = 0
        """The last position applied."""
        self.accounts: dict[str, Account] = {}
        self.payments: dict[str, Payment] = {}
        self.channels: dict[str, ChannelState] = {}
        self.policies: dict[str, PolicyState] = {}
        self.balances: dict[tuple[str, str], _Balance] = {}
        self.totals: dict[str, _Totals] = {}

    # --- applying --------------------------------------------------------------------------

    def apply_rows(self, rows: Iterable[PayloadRow]) -> None:
        """Apply stored rows ``(position, type, schema, data, ...)`` in order
        (:func:`projections.slim.slim_of_row`, its common case inline). Raises
        :class:`UnknownEventTypeError` at an event of an unknown type, the rows before it
        applied and ``position`` just before it."""
        routes, current, decode = _ROUTES, _CURRENT, slim.SLIM.decode
        last = self.position
        try:
            for row in rows:
                position: int = row[0]
                event: Any = None
                if current.get(row[1]) == row[2]:
                    try:
                        event = decode(row[3])
                    except (msgspec.ValidationError, msgspec.DecodeError):
                        event = None  # decoded again below, which says why
                route = routes.get(type(event))
                if route is None:  # an older shape, a row that does not decode, or unknown
                    event = slim.slim_of_row(row[1], row[2], row[3], position)
                    route = routes.get(type(event))
                    if route is None:
                        assert isinstance(event, UnknownEvent)
                        raise UnknownEventTypeError(event.type_name, position)
                route(self, event, position)
                last = position
        finally:
            self.position = last
            if not self.track:
                self.clear_dirty()

    def apply_page(self, page: str, first: int) -> bool:
        """Apply a page of the log as :meth:`ledger.store.EventStore.read_json_page` gives it,
        its positions ``first``, ``first + 1``, ... in one decode (the hot loop of a rebuild).
        Returns False, having applied nothing, when the page does not decode or its positions
        do not follow each other from ``first``: the caller applies its rows instead
        (:meth:`apply_rows` says which row is wrong, and why)."""
        try:
            pairs = slim.PAGE.decode(page)
        except (msgspec.ValidationError, msgspec.DecodeError):
            return False
        if any(map(ne, map(itemgetter(0), pairs), count(first))):
            return False
        routes = _ROUTES
        for position, event in pairs:
            routes[type(event)](self, event, position)
        if pairs:
            self.position = pairs[-1][0]
        if not self.track:
            self.clear_dirty()
        return True

    def apply_event(self, event: slim.AnySlim | slim.Whole, position: int) -> None:
        """Apply one event (as :func:`projections.slim.slim_of_row` gives it) at
        ``position``. Raises :class:`UnknownEventTypeError` (and changes nothing) for an event
        of an unknown type."""
        route = _ROUTES.get(type(event))
        if route is None:
            assert isinstance(event, UnknownEvent)
            raise UnknownEventTypeError(event.type_name, position)
        route(self, event, position)
        self.position = position

    def apply(self, record: Record) -> None:
        """Apply one record (:meth:`projections.World.apply`, in place)."""
        self.apply_event(slim.slim_of(record.event), record.position)

    def apply_all(self, records: Iterable[Record]) -> Working:
        """Apply every record in order; returns ``self``."""
        for record in records:
            self.apply(record)
        return self

    # --- the routes (see _ROUTES) -----------------------------------------------------------

    def _account(self, account_id: str) -> Account:
        found = self.accounts.get(account_id)
        if found is None:
            found = self.accounts[account_id] = Account.new(account_id)
        return found

    def _post(self, legs: tuple[Leg, ...], pos: int) -> None:
        all_balances, totals = self.balances, self.totals
        for leg in legs:
            key = (leg.ledger_account, leg.currency)
            b = all_balances.get(key)
            if b is None:
                b = all_balances[key] = _Balance(Balance(ledger_account=key[0], currency=key[1]))
            t = totals.get(leg.currency)
            if t is None:
                t = totals[leg.currency] = _Totals(LedgerTotals(currency=leg.currency))
            if leg.debit:
                b.debit_minor += leg.amount_minor
                t.debit_minor += leg.amount_minor
            else:
                b.credit_minor += leg.amount_minor
                t.credit_minor += leg.amount_minor
            if leg.account_id:
                b.account_id = leg.account_id
            b.position = pos
            t.position = pos
            if self.track:
                self.dirty_balances.add(key)
                self.dirty_totals.add(leg.currency)

    # --- loading and writing -----------------------------------------------------------------

    def load_row(self, row: StateRow) -> None:
        """Put the state a persisted row holds back (not payments': they have none, see
        :meth:`load_payments`)."""
        kind = row.kind
        if kind == "account":
            self.accounts[row.key] = Account.of(_FOLD.decode(row.state))
        elif kind == "channel":
            self.channels[row.key] = _CHANNEL.decode(row.state)
        elif kind == "policy":
            self.policies[row.key] = _POLICY.decode(row.state)
        elif kind == "balance":
            b = _BALANCE.decode(row.state)
            self.balances[(b.ledger_account, b.currency)] = _Balance(b)
        elif kind == "total":
            self.totals[row.key] = _Totals(_TOTALS.decode(row.state))

    def load_payments(self, records: Iterable[Record]) -> None:
        """Fold the records of payment streams (in position order) into their payments, as
        already written (nothing is marked as changed, no account is touched)."""
        payments = self.payments
        for rec in records:
            e: Any = slim.slim_of(rec.event)
            if isinstance(e, UnknownEvent):
                raise UnknownEventTypeError(e.type_name, rec.position)
            if type(e) is slim.PaymentRequested and e.payment_id not in payments:
                payments[e.payment_id] = Payment(e, rec.position)
                continue
            found = payments.get(rec.stream.removeprefix("payment-"))
            if found is None:
                continue
            handler = working_payment.HANDLERS.get(type(e))
            if handler is None:
                found.position = rec.position
            else:
                handler(found, e, rec.position)

    def iter_rows(self, *, dirty_only: bool = True) -> Iterator[StateRow]:
        """The rows of the states (only those changed since the last write, by default), in
        ``(kind, key)`` order, made one at a time."""
        for kind in ("account", "balance", "channel", "payment", "policy", "total"):
            yield from self._rows_of(kind, dirty_only)

    def rows(self, *, dirty_only: bool = True) -> list[StateRow]:
        """:meth:`iter_rows` as a list: the rows :func:`projections.rows.rows_of` gives for
        the pure fold of the same events."""
        return list(self.iter_rows(dirty_only=dirty_only))

    def _rows_of(self, kind: str, dirty_only: bool) -> Iterator[StateRow]:
        if kind == "account":
            accounts = self.accounts
            for key in sorted(self.dirty_accounts if dirty_only else accounts):
                yield account_row(accounts[key].fold())
        elif kind == "balance":
            balances = self.balances
            keys = self.dirty_balances if dirty_only else balances
            for pair in sorted(keys, key=lambda k: balance_key(*k)):  # (the rows' key order)
                yield balance_row(balances[pair].frozen())
        elif kind == "channel":
            for key in sorted(self.dirty_channels if dirty_only else self.channels):
                yield channel_row(self.channels[key])
        elif kind == "payment":
            payments = self.payments
            for key in sorted(self.dirty_payments if dirty_only else payments):
                yield _payment_row(key, payments[key])
        elif kind == "policy":
            for key in sorted(self.dirty_policies if dirty_only else self.policies):
                yield policy_row(self.policies[key])
        else:
            for key in sorted(self.dirty_totals if dirty_only else self.totals):
                yield total_row(self.totals[key].frozen())


ACCOUNT_HANDLERS: Final[dict[type[Any], Callable[[Account, Any, int], None]]] = {
    **_ACCOUNT_HANDLERS,
    **{CATALOGUE[cls.__name__]: handler for cls, handler in _ACCOUNT_HANDLERS.items()},
}
"""How an event changes a working :class:`Account`, by type: the slim types and the
catalogue's own (a handler reads only the fields both have)."""

_Route = Callable[[Working, Any, int], None]
_CURRENT: Final[dict[str, int]] = {n: c.schema_version for n, c in CATALOGUE.items()}


def _requested(w: Working, e: slim.PaymentRequested, pos: int) -> None:
    found = w.payments.get(e.payment_id)
    if found is None:  # (a second request in one stream: the first one stands)
        w.payments[e.payment_id] = Payment(e, pos)
    else:
        found.position = pos
    if w.track:
        w.dirty_payments.add(e.payment_id)


def _payment(handler: Callable[[Payment, Any, int], None]) -> _Route:
    """The route of a payment event that concerns the payment only."""

    def route(w: Working, e: Any, pos: int) -> None:
        found = w.payments.get(e.payment_id)
        if found is not None:
            handler(found, e, pos)
            if w.track:
                w.dirty_payments.add(e.payment_id)

    return route


def _credit_payment(
    handler: Callable[[Payment, Any, int], None],
    account_handler: Callable[[Account, Any, int], None],
) -> _Route:
    """The route of a payment event that can change the payment's account (and post, if it
    settles the payment)."""
    settles = handler is working_payment.HANDLERS[slim.PaymentSettled]

    def route(w: Working, e: Any, pos: int) -> None:
        p = w.payments.get(e.payment_id)
        if p is None:
            return
        handler(p, e, pos)
        if w.track:
            w.dirty_payments.add(e.payment_id)
        account_id = p.account_id
        a = w.accounts.get(account_id) or w._account(account_id)
        if settles:
            legs = settlement_legs(
                account_id,
                p.merchant,
                p.currency,
                e.channel,
                e.amount_minor,
                has_line=a.line(e.channel) is not None,
            )
            w._post(legs, pos)
        account_handler(a, e, pos)
        if w.track:
            w.dirty_accounts.add(account_id)

    return route


def _account_event(handler: Callable[[Account, Any, int], None]) -> _Route:
    """The route of an event of an account's own stream."""

    def route(w: Working, e: Any, pos: int) -> None:
        account_id: str = e.account_id
        a = w.accounts.get(account_id) or w._account(account_id)
        handler(a, e, pos)
        if w.track:
            w.dirty_accounts.add(account_id)

    return route


def _repaid(w: Working, e: slim.RepaymentMade, pos: int) -> None:
    """A repayment posts too, from the receivable before it."""
    account_id = e.account_id
    a = w._account(account_id)
    legs: tuple[Leg, ...] = ()
    line = a.line(e.product)
    if line is not None:
        currency = line.currency
        found = w.balances.get((receivable_of(account_id, e.product), currency))
        receivable = 0 if found is None else found.debit_minor - found.credit_minor
        legs = repayment_legs(account_id, e.product, e.amount_minor, currency, receivable)
    _ACCOUNT_HANDLERS[slim.RepaymentMade](a, e, pos)
    if w.track:
        w.dirty_accounts.add(account_id)
    if legs:
        w._post(legs, pos)


def _channel(w: Working, e: ChannelStatusChanged, pos: int) -> None:
    name = e.channel
    state = w.channels.get(name) or channel.new_state(name)
    w.channels[name] = channel.apply_event(state, e, pos)
    if w.track:
        w.dirty_channels.add(name)


def _policy(w: Working, e: ChannelPolicySet, pos: int) -> None:
    merchant = e.merchant
    state = w.policies.get(merchant) or policy.new_state(merchant)
    w.policies[merchant] = policy.apply_event(state, e, pos)
    if w.track:
        w.dirty_policies.add(merchant)


def _route(cls: type[Any]) -> _Route:
    to_payment = working_payment.HANDLERS.get(cls)
    to_account = _ACCOUNT_HANDLERS.get(cls)
    if cls is slim.PaymentRequested:
        return _requested
    if cls is slim.RepaymentMade:
        return _repaid
    if to_payment is not None and to_account is not None:
        return _credit_payment(to_payment, to_account)
    if to_payment is not None:
        return _payment(to_payment)
    if to_account is not None:
        return _account_event(to_account)
    if cls is ChannelStatusChanged:
        return _channel
    assert cls is ChannelPolicySet
    return _policy


_ROUTED: Final[tuple[type[Any], ...]] = (
    *slim.Slim.__subclasses__(),
    ChannelStatusChanged,
    ChannelPolicySet,
)
_ROUTES: Final[dict[type[Any], _Route]] = {cls: _route(cls) for cls in _ROUTED}
"""Which working states see an event of each type (an unknown type has no route)."""
