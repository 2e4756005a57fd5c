"""How the read models are persisted: each state of a :class:`projections.World` as a
:class:`ledger.states.StateRow`, and back.

Kinds, with what their ``summary`` (the JSON a user queries) holds:

- ``account`` (by account id): holder, score and, per credit product, status, limit, used, held,
  available and overdue; the ``state`` is the account reducer's whole fold, to resume from;
- ``channel`` (by channel): status, reason and the event that set it;
- ``policy`` (by merchant): the allowed channels per scenario and the events that set them;
- ``payment`` (by payment id, grouped by account): account, merchant, scenario, the last channel,
  outcome, amount, currency and the request's position. No ``state``: a payment is the fold of
  its own stream (a handful of events), read back when it is needed;
- ``balance`` (by ``<ledger account> <currency>``, grouped by customer account, or in the empty
  group for the shared ones: merchants' payables, clearing, cash): debits, credits and the
  balance of one double-entry ledger account;
- ``total`` (by currency): the debits and credits of every ledger account.

The bytes are deterministic (msgspec encodes Struct fields in declaration order and the
summaries' keys in the order written here), so the rows of two folds of the same log are equal
byte for byte: ``verify`` relies on it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

import msgspec

from ledger.states import StateRow

from .account import AccountFold
from .balances import Balance, LedgerTotals
from .fold import World
from .state import ChannelState, PaymentState, PolicyState

__all__ = [
    "KINDS",
    "NAME",
    "PROJECTION_VERSION",
    "account_row",
    "balance_key",
    "balance_row",
    "channel_row",
    "load_row",
    "payment_row",
    "payment_row_of",
    "policy_row",
    "rows_of",
    "total_row",
]

NAME: Final = "projections"
"""The read model's name in the store's derived state."""
PROJECTION_VERSION: Final = 4
"""The shape of the rows and of the states they hold. Rows of another version are dropped and
rebuilt from the events by the next projector, and ignored until then: they are derived data."""
KINDS: Final = ("account", "balance", "channel", "payment", "policy", "total")

_JSON: Final = msgspec.json.Encoder()
_PACK: Final = msgspec.msgpack.Encoder()
_FOLD: Final = msgspec.msgpack.Decoder(AccountFold)
_CHANNEL: Final = msgspec.msgpack.Decoder(ChannelState)
_POLICY: Final = msgspec.msgpack.Decoder(PolicyState)
_BALANCE: Final = msgspec.msgpack.Decoder(Balance)
_TOTALS: Final = msgspec.msgpack.Decoder(LedgerTotals)


class _LineSummary(msgspec.Struct, gc=False):
    """A credit line in an account's summary (encoded like the dictionary of these keys, in
    this order: a struct is cheaper to make and encode)."""

    status: str
    limit_minor: int
    used_minor: int
    held_minor: int
    available_minor: int
    overdue_minor: int
    currency: str


class _AccountSummary(msgspec.Struct, gc=False):
    holder_ref: str | None
    score: int | None
    credit: dict[str, _LineSummary]


class _PaymentSummary(msgspec.Struct, gc=False):
    account_id: str
    merchant: str
    scenario: str
    channel: str
    outcome: str
    amount_minor: int
    currency: str
    requested_position: int


class _BalanceSummary(msgspec.Struct, gc=False):
    ledger_account: str
    currency: str
    account_id: str | None
    debit_minor: int
    credit_minor: int
    balance_minor: int


def balance_key(ledger_account: str, currency: str) -> str:
    return f"{ledger_account} {currency}"


def _summary(doc: dict[str, Any] | msgspec.Struct) -> str:
    return _JSON.encode(doc).decode()


def account_row(fold: AccountFold) -> StateRow:
    state = fold.state
    credit = {
        product: _LineSummary(
            line.status,
            line.limit_minor,
            line.used_minor,
            line.held_minor,
            line.available_minor,
            line.overdue_minor,
            line.currency,
        )
        for product, line in sorted(state.credit.items())
    }
    summary = _AccountSummary(state.holder_ref, state.score, credit)
    return StateRow(
        "account", state.account_id, "", state.position, _summary(summary), _PACK.encode(fold)
    )


def channel_row(state: ChannelState) -> StateRow:
    summary = {
        "status": state.status,
        "reason": state.reason,
        "status_position": state.status_position,
    }
    return StateRow(
        "channel", state.channel, "", state.position, _summary(summary), _PACK.encode(state)
    )


def policy_row(state: PolicyState) -> StateRow:
    rules = {
        scenario: {
            "allowed_channels": list(rule.allowed_channels),
            "reason": rule.reason,
            "position": rule.position,
        }
        for scenario, rule in sorted(state.rules.items())
    }
    return StateRow(
        "policy",
        state.merchant,
        "",
        state.position,
        _summary({"rules": rules}),
        _PACK.encode(state),
    )


def payment_row(p: PaymentState) -> StateRow:
    return payment_row_of(
        p.payment_id,
        account_id=p.account_id,
        merchant=p.merchant,
        scenario=p.scenario,
        channel=p.attempts[-1].channel if p.attempts else p.preferred_channel,
        outcome=p.outcome,
        amount_minor=p.amount_minor,
        currency=p.currency,
        requested_position=p.requested_position,
        position=p.position,
    )


def payment_row_of(
    payment_id: str,
    *,
    account_id: str,
    merchant: str,
    scenario: str,
    channel: str,
    outcome: str,
    amount_minor: int,
    currency: str,
    requested_position: int,
    position: int,
) -> StateRow:
    """A payment's row from what it holds (``channel``: its highest-numbered attempt's, else
    the preferred one)."""
    summary = _PaymentSummary(
        account_id, merchant, scenario, channel, outcome, amount_minor, currency, requested_position
    )
    return StateRow("payment", payment_id, account_id, position, _summary(summary), b"")


def balance_row(b: Balance) -> StateRow:
    summary = _BalanceSummary(
        b.ledger_account,
        b.currency,
        b.account_id,
        b.debit_minor,
        b.credit_minor,
        b.balance_minor,
    )
    key = balance_key(b.ledger_account, b.currency)
    group = b.account_id or ""
    return StateRow("balance", key, group, b.position, _summary(summary), _PACK.encode(b))


def total_row(t: LedgerTotals) -> StateRow:
    summary = {"debit_minor": t.debit_minor, "credit_minor": t.credit_minor}
    return StateRow("total", t.currency, "", t.position, _summary(summary), _PACK.encode(t))


def rows_of(world: World, *, dirty_only: bool = True) -> list[StateRow]:
    """The rows of ``world``'s states (only those changed since the last write, by default),
    in ``(kind, key)`` order."""
    accounts: Iterable[str] = world.dirty_accounts if dirty_only else world.accounts
    channels: Iterable[str] = world.dirty_channels if dirty_only else world.channels
    policies: Iterable[str] = world.dirty_policies if dirty_only else world.policies
    payments: Iterable[str] = world.dirty_payments if dirty_only else world.payments
    balances: Iterable[tuple[str, str]] = world.dirty_balances if dirty_only else world.balances
    totals: Iterable[str] = world.dirty_totals if dirty_only else world.totals
    rows = [account_row(world.accounts[a]) for a in accounts]
    rows += [balance_row(world.balances[b]) for b in balances]
    rows += [channel_row(world.channels[c]) for c in channels]
    rows += [payment_row(world.payments[p]) for p in payments]
    rows += [policy_row(world.policies[m]) for m in policies]
    rows += [total_row(world.totals[t]) for t in totals]
    rows.sort(key=lambda r: (r.kind, r.key))
    return rows


def load_row(world: World, row: StateRow) -> None:
    """Put the state a row holds back into ``world`` (not payments: they have none)."""
    kind = row.kind
    if kind == "account":
        world.accounts[row.key] = _FOLD.decode(row.state)
    elif kind == "channel":
        world.channels[row.key] = _CHANNEL.decode(row.state)
    elif kind == "policy":
        world.policies[row.key] = _POLICY.decode(row.state)
    elif kind == "balance":
        b = _BALANCE.decode(row.state)
        world.balances[(b.ledger_account, b.currency)] = b
    elif kind == "total":
        world.totals[row.key] = _TOTALS.decode(row.state)
