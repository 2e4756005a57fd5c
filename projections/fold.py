"""Every projection at once: :class:`World` routes each record to the pure reducers of the
account, channel, policy, payment and balances projections; :func:`fold` builds it from any
iterable of records.

A ``World`` is a mutable container of immutable states (one per account, channel, merchant,
payment, ledger account and currency): applying a record replaces the states it touches with
what the reducers return, and remembers their keys as *dirty* so that a persistence layer can
write only those. The payment events that can change an account (authorizations, settlements,
declines, abandonments) reach the account projection through the payment's ``account_id``
(payment events after ``PaymentRequested`` carry only ``payment_id``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Final

from ledger.errors import UnknownEventTypeError
from ledger.events import (
    CATALOGUE,
    ChannelPolicySet,
    ChannelStatusChanged,
    Event,
    PaymentSettled,
    RepaymentMade,
    UnknownEvent,
)
from ledger.store import Record

from . import account, balances, channel, payment, policy
from .account import ACCOUNT_EVENT_TYPES, CREDIT_PAYMENT_EVENTS, AccountFold
from .balances import Balance, LedgerTotals
from .payment import PAYMENT_EVENT_TYPES
from .state import AccountState, ChannelState, PaymentState, PolicyState

__all__ = ["Changes", "World", "fold"]


class Changes:
    """Which states changed since they were last written (the ``dirty_*`` sets), so that a
    commit writes only those: shared by the pure :class:`World` and the mutable working state
    (:class:`projections.working.Working`)."""

    __slots__ = (
        "dirty_accounts",
        "dirty_balances",
        "dirty_channels",
        "dirty_payments",
        "dirty_policies",
        "dirty_totals",
    )

    def __init__(self) -> None:
        self.dirty_accounts: set[str] = set()
        self.dirty_channels: set[str] = set()
        self.dirty_policies: set[str] = set()
        self.dirty_payments: set[str] = set()
        self.dirty_balances: set[tuple[str, str]] = set()
        self.dirty_totals: set[str] = set()

    def clear_dirty(self) -> None:
        """Forget which states changed (after they were written)."""
        for dirty in (
            self.dirty_accounts,
            self.dirty_channels,
            self.dirty_policies,
            self.dirty_payments,
            self.dirty_balances,
            self.dirty_totals,
        ):
            dirty.clear()


class World(Changes):
    """The state of every projection after the records applied so far."""

    __slots__ = (
        "accounts",
        "balances",
        "channels",
        "payments",
        "policies",
        "position",
        "totals",
    )

    def __init__(self) -> None:
        super().__init__()
        self.position = 0
        """The last position applied."""
        self.accounts: dict[str, AccountFold] = {}
        self.channels: dict[str, ChannelState] = {}
        self.policies: dict[str, PolicyState] = {}
        self.payments: dict[str, PaymentState] = {}
        self.balances: dict[tuple[str, str], Balance] = {}
        """By (ledger account, currency)."""
        self.totals: dict[str, LedgerTotals] = {}
        """By currency."""

    # --- reading ---------------------------------------------------------------------------

    def account(self, account_id: str) -> AccountState | None:
        """The account's state (``None``: its stream has no event yet)."""
        fold = self.accounts.get(account_id)
        return fold.state if fold is not None and fold.known else None

    def channel(self, name: str) -> ChannelState:
        """The channel's state (``up`` by default)."""
        return self.channels.get(name) or channel.new_state(name)

    def policy(self, merchant: str) -> PolicyState:
        """The merchant's policy (every channel accepted by default)."""
        return self.policies.get(merchant) or policy.new_state(merchant)

    def payment(self, payment_id: str) -> PaymentState | None:
        """The payment's state (``None``: not requested yet)."""
        return self.payments.get(payment_id)

    def receivable(self, account_id: str, product: str, currency: str) -> int:
        """The balance of an account's credit receivable."""
        found = self.balances.get((balances.receivable_of(account_id, product), currency))
        return 0 if found is None else found.balance_minor

    # --- applying --------------------------------------------------------------------------

    def _post(self, legs: tuple[balances.Leg, ...], position: int) -> None:
        all_balances, totals = self.balances, self.totals
        dirty_balances, dirty_totals = self.dirty_balances, self.dirty_totals
        for leg in legs:
            key = (leg.ledger_account, leg.currency)
            all_balances[key] = balances.post(all_balances.get(key), leg, position)
            dirty_balances.add(key)
            currency = leg.currency
            totals[currency] = balances.add_totals(totals.get(currency), leg, position)
            dirty_totals.add(currency)

    def _account(self, account_id: str) -> AccountFold:
        fold = self.accounts.get(account_id)
        return account.new_fold(account_id) if fold is None else fold

    def apply(self, record: Record) -> None:
        """Apply one record to every projection it concerns.

        Raises :class:`UnknownEventTypeError` (and changes nothing) for an event of an
        unknown type.
        """
        route = _ROUTES.get(type(record.event))
        if route is not None:
            route(self, record)
        elif isinstance(record.event, UnknownEvent):
            raise UnknownEventTypeError(record.event.type_name, record.position)
        self.position = record.position

    # --- the routes: which reducers see an event of each type ------------------------------

    def _payment(self, record: Record) -> None:
        """A payment event that concerns the payment only."""
        payment_id: str = record.event.payment_id  # type: ignore[attr-defined]
        after = payment.apply(self.payments.get(payment_id), record)
        if after is not None:
            self.payments[payment_id] = after
            self.dirty_payments.add(payment_id)

    def _credit_payment(self, record: Record) -> None:
        """A payment event that can change the payment's account (and post, if settled)."""
        event: Any = record.event
        payment_id: str = event.payment_id
        after = payment.apply(self.payments.get(payment_id), record)
        if after is None:
            return
        self.payments[payment_id] = after
        self.dirty_payments.add(payment_id)
        account_id = after.account_id
        fold = self._account(account_id)
        if isinstance(event, PaymentSettled):
            line = fold.state.credit.get(event.channel)
            legs = balances.entries_for(
                record,
                payment=after,
                line_currency=None if line is None else line.currency,
            )
            self._post(legs, record.position)
        self.accounts[account_id] = account.apply(fold, record)
        self.dirty_accounts.add(account_id)

    def _account_event(self, record: Record) -> None:
        """An event of an account's own stream (a repayment posts too)."""
        event: Any = record.event
        account_id: str = event.account_id
        fold = self._account(account_id)
        legs: tuple[balances.Leg, ...] = ()
        if isinstance(event, RepaymentMade):
            line = fold.state.credit.get(event.product)
            if line is not None:
                legs = balances.entries_for(
                    record,
                    line_currency=line.currency,
                    receivable_minor=self.receivable(account_id, event.product, line.currency),
                )
        self.accounts[account_id] = account.apply(fold, record)
        self.dirty_accounts.add(account_id)
        if legs:
            self._post(legs, record.position)

    def _channel(self, record: Record) -> None:
        name: str = record.event.channel  # type: ignore[attr-defined]
        self.channels[name] = channel.apply(self.channel(name), record)
        self.dirty_channels.add(name)

    def _policy(self, record: Record) -> None:
        merchant: str = record.event.merchant  # type: ignore[attr-defined]
        self.policies[merchant] = policy.apply(self.policy(merchant), record)
        self.dirty_policies.add(merchant)

    def apply_all(self, records: Iterable[Record]) -> World:
        """Apply every record in order; returns ``self``."""
        for record in records:
            self.apply(record)
        return self


def _route(cls: type[Event]) -> Callable[[World, Record], None] | None:
    name = cls.__name__
    if name in CREDIT_PAYMENT_EVENTS:
        return World._credit_payment
    if name in PAYMENT_EVENT_TYPES:
        return World._payment
    if name in ACCOUNT_EVENT_TYPES:
        return World._account_event
    if cls is ChannelStatusChanged:
        return World._channel
    if cls is ChannelPolicySet:
        return World._policy
    return None


_ROUTES: Final[dict[type[Event], Callable[[World, Record], None]]] = {
    cls: route for cls in CATALOGUE.values() if (route := _route(cls)) is not None
}
"""How :meth:`World.apply` routes each catalogue type (other types change no state)."""


def fold(records: Iterable[Record]) -> World:
    """Every projection built from ``records`` (in position order) from scratch."""
    return World().apply_all(records)
