"""The read models' state types: what the projections rebuild from events, and what the replay
engine reads to explain a payment. Plain frozen Structs, no I/O.

Every ``*_position`` field is the global position of the event that put that piece of state
where it is: it is the evidence the replay engine cites. ``None`` means a default the log is
silent about (a channel with no status event is ``up``; a merchant with no policy for a
scenario accepts every channel).
"""

from __future__ import annotations

from datetime import datetime
from typing import Final, Literal, TypeAlias

import msgspec

from ledger.events import Candidate, ChannelStatus, CreditStatus, DeclineCode

__all__ = [
    "BEFORE_OPENING",
    "AccountState",
    "AttemptOutcome",
    "AttemptState",
    "ChannelState",
    "CreditLine",
    "FailoverState",
    "PaymentOutcome",
    "PaymentState",
    "PolicyRule",
    "PolicyState",
    "Step",
    "VerificationResult",
]

PaymentOutcome: TypeAlias = Literal["pending", "succeeded", "failed"]
AttemptOutcome: TypeAlias = Literal["pending", "declined", "authorized", "settled"]


class Step(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """One step of a credit line's availability history (see :attr:`CreditLine.steps`)."""

    available_minor: int
    """limit - used - held after some event (not clamped at zero)."""
    until: int
    """The position of the event that moved availability away from this value; 0 while it
    still holds."""


BEFORE_OPENING: Final = 2**63
"""The availability of a credit line before it opened, above any amount: the step it starts
from, so that a line opened with too little credit cites its opening."""


class CreditLine(msgspec.Struct, frozen=True, kw_only=True):
    """One credit product (``huabei``, ``jiebei``) of an account."""

    product: str
    currency: str
    status: CreditStatus = "active"
    status_reason: str = ""
    status_position: int | None = None
    """The ``CreditStatusChanged`` that set ``status`` (None: active since it was opened)."""
    limit_minor: int
    limit_position: int
    """The ``CreditLineOpened`` or ``CreditLimitChanged`` that set the limit."""
    used_minor: int = 0
    held_minor: int = 0
    overdue_minor: int = 0
    days_overdue: int = 0
    overdue_position: int | None = None
    """The ``RepaymentOverdue`` behind the current overdue amount (None when nothing is due)."""
    opened_position: int
    steps: tuple[Step, ...] = ()
    """The availability history, reduced to what a shortfall can cite: the values that were
    higher than every value after them (each with the event that moved it away), the current
    value last. A hold that has since settled is cited by its ``PaymentSettled``."""

    @property
    def available_minor(self) -> int:
        """limit - used - held, never below zero."""
        return max(0, self.limit_minor - self.used_minor - self.held_minor)

    def shortfall_position(self, amount_minor: int) -> int | None:
        """The position of the event that took available credit below ``amount_minor`` (it has
        stayed below since); ``None`` when ``amount_minor`` is available now."""
        if self.limit_minor - self.used_minor - self.held_minor >= amount_minor:
            return None
        steps = self.steps
        for i in range(len(steps) - 2, -1, -1):  # the latest value that was high enough
            if steps[i].available_minor >= amount_minor:
                return steps[i].until
        return self.opened_position  # (a line built without steps: never by the reducers)


class AccountState(msgspec.Struct, frozen=True, kw_only=True):
    """An account as of ``position``: its credit lines and score."""

    account_id: str
    position: int = 0
    """The last global position this state includes."""
    holder_ref: str | None = None
    opened_position: int | None = None
    score: int | None = None
    previous_score: int | None = None
    score_position: int | None = None
    credit: dict[str, CreditLine] = msgspec.field(default_factory=dict)
    """Credit lines by product."""


class ChannelState(msgspec.Struct, frozen=True, kw_only=True):
    """A payment channel's health as of ``position``."""

    channel: str
    status: ChannelStatus = "up"
    reason: str = ""
    expected_until: datetime | None = None
    status_position: int | None = None
    """The ``ChannelStatusChanged`` that set ``status`` (None: up by default)."""
    position: int = 0


class PolicyRule(msgspec.Struct, frozen=True, kw_only=True):
    """Which channels a merchant accepts for one scenario, and the event that said so."""

    scenario: str
    allowed_channels: tuple[str, ...]
    reason: str
    position: int


class PolicyState(msgspec.Struct, frozen=True, kw_only=True):
    """A merchant's channel policy per scenario as of ``position``."""

    merchant: str
    rules: dict[str, PolicyRule] = msgspec.field(default_factory=dict)
    position: int = 0

    def allows(self, scenario: str, channel: str) -> bool:
        """Whether ``channel`` is accepted for ``scenario`` (no rule: every channel is)."""
        rule = self.rules.get(scenario)
        return rule is None or channel in rule.allowed_channels


class VerificationResult(msgspec.Struct, frozen=True, kw_only=True):
    method: str
    passed: bool
    reason: str | None = None
    remaining_tries: int | None = None
    position: int


class AttemptState(msgspec.Struct, frozen=True, kw_only=True):
    """One attempt of a payment on one channel."""

    attempt: int
    channel: str
    first_position: int | None = None
    """The attempt's first own event (any type)."""
    decided_position: int | None = None
    candidates: tuple[Candidate, ...] = ()
    rule: str | None = None
    attempted_position: int | None = None
    verifications: tuple[VerificationResult, ...] = ()
    outcome: AttemptOutcome = "pending"
    code: DeclineCode | None = None
    message: str | None = None
    outcome_position: int | None = None
    """The ``PaymentDeclined``, ``PaymentAuthorized`` or ``PaymentSettled`` that ended it."""
    outcome_at: datetime | None = None
    """That event's ``occurred_at``."""
    auth_ref: str | None = None


class FailoverState(msgspec.Struct, frozen=True, kw_only=True):
    from_channel: str
    to_channel: str
    reason: str
    position: int


class PaymentState(msgspec.Struct, frozen=True, kw_only=True):
    """A payment as of ``position``: its request, attempts, failovers and outcome."""

    payment_id: str
    account_id: str
    merchant: str
    scenario: str
    amount_minor: int
    currency: str
    preferred_channel: str
    requested_at: datetime
    requested_position: int
    position: int = 0
    attempts: tuple[AttemptState, ...] = ()
    failovers: tuple[FailoverState, ...] = ()
    outcome: PaymentOutcome = "pending"
    """CONTRACT rule 7.6 (:func:`projections.payment.outcome_of`)."""
    settled_position: int | None = None
    """The payment's first ``PaymentSettled``: it succeeded there, whatever follows."""
    abandoned_reason: str | None = None
    abandoned_position: int | None = None
    abandoned_at: datetime | None = None
