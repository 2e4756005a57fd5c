"""The balances projection: double-entry postings for every settlement and repayment.

Ledger accounts (each kept per currency; a balance is debits minus credits):

- ``receivable:<account>:<product>``: what the customer owes on a credit line;
- ``payable:<merchant>``: what is owed to the merchant;
- ``clearing:<channel>``: money received through a non-credit channel (``bank_card``,
  ``balance``), or through a credit channel for an account with no such credit line;
- ``cash:repayments``: repayments received;
- ``overpaid:<account>:<product>``: the part of a repayment above what was owed.

A settlement debits the receivable (credit products with a credit line) or the channel's
clearing account and credits the merchant's payable. A repayment debits ``cash:repayments`` and
credits the receivable up to its balance, the rest to ``overpaid``. Every entry balances, so total
debits equal total credits per currency at every position; the receivable of an account and
product equals the account projection's ``used_minor``.

Everything here is pure: :func:`entries_for` derives the legs of an event from what the caller
knows (the payment, the credit line, the receivable), :func:`post` and :func:`add_totals` apply
them to one ledger account's balance and to the per-currency totals.
"""

from __future__ import annotations

import msgspec

from ledger.events import PaymentSettled, RepaymentMade
from ledger.store import Record

from .account import CREDIT_PRODUCTS
from .state import PaymentState

__all__ = [
    "Balance",
    "LedgerTotals",
    "Leg",
    "add_totals",
    "entries_for",
    "post",
    "receivable_of",
    "repayment_legs",
    "settlement_legs",
]

REPAYMENT_CASH = "cash:repayments"


class Leg(msgspec.Struct, frozen=True, gc=False):
    """One side of a posting: ``amount_minor`` debited (``debit=True``) or credited."""

    ledger_account: str
    currency: str
    debit: bool
    amount_minor: int
    account_id: str | None = None
    """The customer account a receivable or overpayment belongs to."""


class Balance(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One ledger account in one currency."""

    ledger_account: str
    currency: str
    account_id: str | None = None
    debit_minor: int = 0
    credit_minor: int = 0
    position: int = 0
    """The last posting's position."""

    @property
    def balance_minor(self) -> int:
        """Debits minus credits."""
        return self.debit_minor - self.credit_minor


class LedgerTotals(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """Every posting of one currency, summed."""

    currency: str
    debit_minor: int = 0
    credit_minor: int = 0
    position: int = 0


def receivable_of(account_id: str, product: str) -> str:
    """The name of the receivable of an account's credit line."""
    return f"receivable:{account_id}:{product}"


def entries_for(
    record: Record,
    *,
    payment: PaymentState | None = None,
    line_currency: str | None = None,
    receivable_minor: int = 0,
) -> tuple[Leg, ...]:
    """The legs ``record`` posts (none for most events).

    ``payment``: for a ``PaymentSettled``, the payment's state (its account, merchant and
    currency). ``line_currency``: the currency of the account's credit line of the event's
    product, ``None`` when the account has no such line. ``receivable_minor``: for a
    ``RepaymentMade``, the receivable's balance before it.
    """
    event = record.event
    if isinstance(event, PaymentSettled):
        if payment is None:
            return ()
        return settlement_legs(
            payment.account_id,
            payment.merchant,
            payment.currency,
            event.channel,
            event.amount_minor,
            has_line=line_currency is not None,
        )
    if isinstance(event, RepaymentMade):
        if line_currency is None:
            return ()
        return repayment_legs(
            event.account_id, event.product, event.amount_minor, line_currency, receivable_minor
        )
    return ()


def settlement_legs(
    account_id: str, merchant: str, currency: str, channel: str, amount: int, *, has_line: bool
) -> tuple[Leg, Leg]:
    """The legs of a ``PaymentSettled`` of ``amount`` on ``channel`` (a payment of
    ``account_id`` to ``merchant`` in ``currency``; ``has_line``: the account has a credit line
    of the channel's product)."""
    if channel in CREDIT_PRODUCTS and has_line:
        debit = Leg(receivable_of(account_id, channel), currency, True, amount, account_id)
    else:
        debit = Leg(f"clearing:{channel}", currency, True, amount)
    return (debit, Leg(f"payable:{merchant}", currency, False, amount))


def repayment_legs(
    account_id: str, product: str, amount: int, line_currency: str, receivable_minor: int
) -> tuple[Leg, ...]:
    """The legs of a ``RepaymentMade`` of ``amount`` on a credit line in ``line_currency``
    whose receivable stood at ``receivable_minor``."""
    applied = min(amount, max(0, receivable_minor))
    legs = [Leg(REPAYMENT_CASH, line_currency, True, amount)]
    if applied:
        legs.append(
            Leg(receivable_of(account_id, product), line_currency, False, applied, account_id)
        )
    if amount > applied:
        legs.append(
            Leg(
                f"overpaid:{account_id}:{product}",
                line_currency,
                False,
                amount - applied,
                account_id,
            )
        )
    return tuple(legs)


def post(balance: Balance | None, leg: Leg, position: int) -> Balance:
    """The ledger account's balance after ``leg``."""
    if balance is None:
        balance = Balance(ledger_account=leg.ledger_account, currency=leg.currency)
    if leg.debit:
        return Balance(
            ledger_account=balance.ledger_account,
            currency=balance.currency,
            account_id=leg.account_id or balance.account_id,
            debit_minor=balance.debit_minor + leg.amount_minor,
            credit_minor=balance.credit_minor,
            position=position,
        )
    return Balance(
        ledger_account=balance.ledger_account,
        currency=balance.currency,
        account_id=leg.account_id or balance.account_id,
        debit_minor=balance.debit_minor,
        credit_minor=balance.credit_minor + leg.amount_minor,
        position=position,
    )


def add_totals(totals: LedgerTotals | None, leg: Leg, position: int) -> LedgerTotals:
    """The currency's totals after ``leg``."""
    if totals is None:
        totals = LedgerTotals(currency=leg.currency)
    return LedgerTotals(
        currency=totals.currency,
        debit_minor=totals.debit_minor + (leg.amount_minor if leg.debit else 0),
        credit_minor=totals.credit_minor + (0 if leg.debit else leg.amount_minor),
        position=position,
    )
