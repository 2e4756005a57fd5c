"""A payment's working state, changed in place: what the payment reducer
(:mod:`projections.payment`, the specification) decides the payment's persisted row from, and
nothing else.

A payment's row (:func:`projections.rows.payment_row`) holds its request, its position, the
channel of its highest-numbered attempt and its outcome. The outcome (CONTRACT rule 7.6, the
reducer's :func:`~projections.payment.outcome_of`) looks at whether the payment was settled or
abandoned, at the highest-numbered attempt's outcome, and, when that attempt was declined,
whether a failover came after the decline. So that is what is kept: the highest-numbered
attempt only (an event of a lower-numbered one changes neither the channel nor the outcome,
except that a settlement settles the payment), whether a failover followed its decline, and
where the last failover went (a new attempt starts there). As in the reducer, the outcome is
worked out again only after an event that can change it (not after a verification).

A rebuild holds every payment of the log at once: a payment keeps the interned copy of each
name it shares with others (:func:`sys.intern`), and flags rather than positions where only
their presence counts.
"""

from __future__ import annotations

from collections.abc import Callable
from sys import intern
from typing import Any, Final

from .. import slim
from ..state import PaymentOutcome

__all__ = ["HANDLERS", "Payment"]


class Payment:
    """A payment as its row needs it (see the module docstring)."""

    __slots__ = (
        "abandoned",
        "account_id",
        "amount_minor",
        "currency",
        "failed_over",
        "failover_to",
        "merchant",
        "outcome",
        "position",
        "preferred_channel",
        "requested_position",
        "scenario",
        "settled",
        "top",
        "top_channel",
        "top_outcome",
    )

    def __init__(self, e: slim.PaymentRequested, pos: int) -> None:
        """The payment its request opens."""
        self.account_id = intern(e.account_id)
        self.merchant = intern(e.merchant)
        self.scenario = intern(e.scenario)
        self.amount_minor = e.amount_minor
        self.currency = intern(e.currency)
        self.preferred_channel = intern(e.preferred_channel)
        self.requested_position = pos
        self.position = pos
        self.top = 0
        """The highest attempt number (0: no attempt yet)."""
        self.top_channel = ""
        self.top_outcome = "pending"
        self.failed_over = False
        """Whether a ``FailoverTriggered`` came after the highest-numbered attempt's decline."""
        self.failover_to: str | None = None
        """Where the last ``FailoverTriggered`` went (None: none yet)."""
        self.settled = False
        self.abandoned = False
        self.outcome: PaymentOutcome = "pending"

    @property
    def channel(self) -> str:
        """The channel of the highest-numbered attempt, else the preferred one."""
        return self.top_channel if self.top else self.preferred_channel

    def new_top(self, number: int, channel: str | None) -> None:
        """An event of attempt ``number``, above every attempt so far: it becomes the
        highest-numbered one, pending, on ``channel``, or where the last failover went, or on
        the preferred channel (the reducer's ``_attempt``)."""
        self.top = number
        if channel is None:
            channel = self.preferred_channel if self.failover_to is None else self.failover_to
        self.top_channel = intern(channel)
        self.top_outcome = "pending"

    def decide(self) -> None:
        """CONTRACT rule 7.6 (:func:`projections.payment.outcome_of`)."""
        if self.settled:
            self.outcome = "succeeded"
        elif self.abandoned:
            self.outcome = "failed"
        elif self.top and self.top_outcome == "declined":
            self.outcome = "pending" if self.failed_over else "failed"
        else:
            self.outcome = "pending"


# Each handler: an event of an attempt below the highest-numbered one changes neither the
# channel nor the outcome's inputs (a settlement still settles the payment).


def _chosen(p: Payment, e: slim.ChannelDecided | slim.PaymentAttempted, pos: int) -> None:
    n = e.attempt
    if n > p.top:
        p.new_top(n, e.channel)
    elif n == p.top:
        p.top_channel = intern(e.channel)
    p.position = pos
    p.decide()


def _verification(
    p: Payment,
    e: slim.VerificationRequested | slim.VerificationFailed | slim.VerificationPassed,
    pos: int,
) -> None:
    if e.attempt > p.top:
        p.new_top(e.attempt, None)
    p.position = pos


def _authorized(p: Payment, e: slim.PaymentAuthorized, pos: int) -> None:
    n = e.attempt
    if n >= p.top:
        if n > p.top:
            p.new_top(n, e.channel)
        p.top_outcome = "authorized"
    p.position = pos
    p.decide()


def _settled(p: Payment, e: slim.PaymentSettled, pos: int) -> None:
    n = e.attempt
    if n >= p.top:
        if n > p.top:
            p.new_top(n, e.channel)
        p.top_outcome = "settled"
    p.settled = True
    p.position = pos
    p.outcome = "succeeded"  # (rule 7.6: settled, whatever else holds)


def _declined(p: Payment, e: slim.PaymentDeclined, pos: int) -> None:
    n = e.attempt
    if n >= p.top:
        if n > p.top:
            p.new_top(n, e.channel)
        p.top_outcome = "declined"
        p.failed_over = False  # (no failover after this decline yet)
    p.position = pos
    p.decide()


def _failover(p: Payment, e: slim.FailoverTriggered, pos: int) -> None:
    p.failover_to = intern(e.to_channel)
    p.failed_over = True
    p.position = pos
    p.decide()


def _abandoned(p: Payment, e: slim.PaymentAbandoned, pos: int) -> None:
    p.abandoned = True
    p.position = pos
    p.decide()


HANDLERS: Final[dict[type[slim.Slim], Callable[[Payment, Any, int], None]]] = {
    slim.ChannelDecided: _chosen,
    slim.PaymentAttempted: _chosen,
    slim.VerificationRequested: _verification,
    slim.VerificationFailed: _verification,
    slim.VerificationPassed: _verification,
    slim.PaymentAuthorized: _authorized,
    slim.PaymentSettled: _settled,
    slim.PaymentDeclined: _declined,
    slim.FailoverTriggered: _failover,
    slim.PaymentAbandoned: _abandoned,
}
"""How each payment event (after the request) changes the working payment."""
