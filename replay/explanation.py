"""The incident explanation's shape (CONTRACT section 5) and the what-if's.

Plain frozen Structs: ``msgspec.json.encode(explanation)`` is ``explain --json``. The keys of
section 5 come first; ``account_id``, ``merchant``, ``scenario``, ``amount_minor``,
``currency`` and each attempt's ``failed_at`` and ``moment`` are this project's additions.
"""

from __future__ import annotations

from datetime import datetime

import msgspec

from causes import Category, Cause, Check

__all__ = [
    "AccountView",
    "AttemptCause",
    "AttemptExplanation",
    "Category",
    "Cause",
    "ChannelView",
    "Check",
    "CreditView",
    "Explanation",
    "PolicyView",
    "RootCause",
    "StateAtFailure",
    "WhatIf",
]


class RootCause(msgspec.Struct, frozen=True, kw_only=True):
    """The cause of the failed payment's highest-numbered declined attempt, with the other
    blocking conditions that also held, in the order a payment passes them."""

    category: Category
    summary: str
    evidence: tuple[int, ...]
    remedy: str
    contributing: tuple[Cause, ...] = ()


class AttemptCause(msgspec.Struct, frozen=True, kw_only=True):
    """Why one attempt failed."""

    category: Category
    evidence: tuple[int, ...]
    summary: str


class AttemptExplanation(msgspec.Struct, frozen=True, kw_only=True):
    """One attempt: how it ended and, if it failed, why."""

    attempt: int
    channel: str
    outcome: str
    """``declined``, ``authorized``, ``settled``, ``pending``, or ``abandoned`` (unfinished when
    the payment was abandoned)."""
    code: str | None
    cause: AttemptCause | None
    failed_at: int | None = None
    """The position of the event that ended the failed attempt (decline or abandonment)."""
    moment: int | None = None
    """The position the attempt was judged at (its ``PaymentAttempted``, CONTRACT rule 7.1):
    the world it met is the fold of every event below it."""


class CreditView(msgspec.Struct, frozen=True, kw_only=True):
    """A credit line as it was at the failure."""

    status: str
    limit_minor: int
    used_minor: int
    held_minor: int
    available_minor: int
    overdue_minor: int
    status_position: int | None
    limit_position: int


class AccountView(msgspec.Struct, frozen=True, kw_only=True):
    """The account as it was at the failure."""

    account_id: str
    score: int | None
    credit: dict[str, CreditView]


class ChannelView(msgspec.Struct, frozen=True, kw_only=True):
    """The channel's health as it was at the failure."""

    channel: str
    status: str
    reason: str
    expected_until: datetime | None
    status_position: int | None


class PolicyView(msgspec.Struct, frozen=True, kw_only=True):
    """The merchant's rule for the payment's scenario at the failure (``allowed_channels``
    null: no rule, every channel accepted)."""

    merchant: str
    scenario: str
    allowed_channels: tuple[str, ...] | None
    rule_position: int | None


class StateAtFailure(msgspec.Struct, frozen=True, kw_only=True):
    """The world the attempt that ``root_cause`` explains met: the fold of every event up to
    ``position`` (the position just before the attempt's ``PaymentAttempted``)."""

    account: AccountView | None
    channel: ChannelView
    policy: PolicyView
    position: int


class Explanation(msgspec.Struct, frozen=True, kw_only=True):
    """The incident explanation of one payment: its outcome, the root cause of its failure
    with the events that prove it, each attempt, and the state the failing attempt met."""

    payment_id: str
    outcome: str
    root_cause: RootCause | None
    attempts: tuple[AttemptExplanation, ...]
    state_at_failure: StateAtFailure | None
    account_id: str
    merchant: str
    scenario: str
    amount_minor: int
    currency: str
    requested_at: datetime
    """When the payment was requested (its ``PaymentRequested``'s ``occurred_at``)."""
    failure_at: datetime | None = None
    """When a failed payment failed: the ``occurred_at`` of the decline (or abandonment) that
    ended the attempt ``root_cause`` explains, or of the abandonment."""


class WhatIf(msgspec.Struct, frozen=True, kw_only=True):
    """An attempt replayed against the same historical state with another channel."""

    payment_id: str
    attempt: int
    original_channel: str
    channel: str
    position: int
    """The state is as of this position (just before the original attempt's moment)."""
    would_pass: bool
    checks: tuple[Check, ...]
    original_cause: AttemptCause | None
