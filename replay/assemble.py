"""From a payment and the worlds its failed attempts met to its explanation (CONTRACT sections 5
and 7). The one-payment engine and the batch pass both end here, so they give the same answers.
"""

from __future__ import annotations

from collections.abc import Mapping

from causes import Cause, Moment, World, judge, moment_of
from projections.state import AccountState, AttemptState, PaymentState

from .explanation import (
    AccountView,
    AttemptCause,
    AttemptExplanation,
    ChannelView,
    CreditView,
    Explanation,
    PolicyView,
    RootCause,
    StateAtFailure,
)

__all__ = ["assemble", "failures"]


def failures(payment: PaymentState) -> list[tuple[AttemptState, int]]:
    """The failed attempts of ``payment`` and the event that ended each: every declined attempt,
    and the unfinished last attempt of an abandoned payment."""
    points = [
        (a, a.outcome_position)
        for a in payment.attempts
        if a.outcome == "declined" and a.outcome_position is not None
    ]
    if (
        payment.outcome == "failed"
        and payment.abandoned_position is not None
        and payment.attempts
        and payment.attempts[-1].outcome == "pending"
    ):
        points.append((payment.attempts[-1], payment.abandoned_position))
    return points


def _account_view(account: AccountState | None) -> AccountView | None:
    if account is None:
        return None
    return AccountView(
        account_id=account.account_id,
        score=account.score,
        credit={
            product: CreditView(
                status=line.status,
                limit_minor=line.limit_minor,
                used_minor=line.used_minor,
                held_minor=line.held_minor,
                available_minor=line.available_minor,
                overdue_minor=line.overdue_minor,
                status_position=line.status_position,
                limit_position=line.limit_position,
            )
            for product, line in sorted(account.credit.items())
        },
    )


def _state_view(m: Moment) -> StateAtFailure:
    world = m.world
    rule = world.policy.rules.get(m.scenario)
    ch = world.channel
    return StateAtFailure(
        account=_account_view(world.account),
        channel=ChannelView(
            channel=m.channel,
            status=ch.status,
            reason=ch.reason,
            expected_until=ch.expected_until,
            status_position=ch.status_position,
        ),
        policy=PolicyView(
            merchant=m.merchant,
            scenario=m.scenario,
            allowed_channels=None if rule is None else rule.allowed_channels,
            rule_position=None if rule is None else rule.position,
        ),
        position=world.position - 1,
    )


def _no_attempt_cause(payment: PaymentState) -> RootCause:
    """A failed payment with no failed attempt: abandoned before any attempt, or after an
    attempt that was authorized but never settled."""
    reason = f" ({payment.abandoned_reason})" if payment.abandoned_reason else ""
    where = payment.abandoned_position
    authorized = [a for a in payment.attempts if a.outcome == "authorized"]
    if authorized:
        a = authorized[-1]
        summary = (
            f"abandoned{reason} at position {where} after attempt {a.attempt} on {a.channel} "
            f"was authorized (position {a.outcome_position}) but before it settled: nothing "
            "blocked the attempt; missing evidence: why the payment was abandoned"
        )
    else:
        summary = (
            f"abandoned{reason} at position {where} before any attempt was made; missing "
            "evidence: a ChannelDecided or PaymentAttempted to explain"
        )
    return RootCause(
        category="unknown",
        summary=summary,
        evidence=(),
        remedy=f"retry the payment (preferred channel {payment.preferred_channel})",
    )


def assemble(payment: PaymentState, worlds: Mapping[int, World]) -> Explanation:
    """The explanation of ``payment`` (its state after its last event), given the world each
    failed attempt met, by attempt number (an attempt without one is not judged)."""
    judged: dict[int, tuple[Moment, tuple[Cause, ...]]] = {}
    for a, ended in failures(payment):
        world = worlds.get(a.attempt)
        if world is not None:
            m = moment_of(payment, a, world, ended_at=ended)
            judged[a.attempt] = (m, judge(m))
    attempts: list[AttemptExplanation] = []
    for a in payment.attempts:
        found = judged.get(a.attempt)
        cause: AttemptCause | None = None
        outcome: str = a.outcome
        failed_at: int | None = None
        if found is not None:
            m, causes = found
            first = causes[0]
            cause = AttemptCause(
                category=first.category, evidence=first.evidence, summary=first.summary
            )
            failed_at = m.ended_at
            if a.outcome != "declined":
                outcome = "abandoned"
        attempts.append(
            AttemptExplanation(
                attempt=a.attempt,
                channel=a.channel,
                outcome=outcome,
                code=a.code,
                cause=cause,
                failed_at=failed_at,
                moment=None if found is None else found[0].world.position,
            )
        )
    root: RootCause | None = None
    # Rule 7.7: the highest-numbered declined attempt; an unfinished one only when no attempt
    # was declined. The state shown is what that attempt met (for a payment that did not fail:
    # what its last failed attempt met).
    declined = [n for n, (m, _) in judged.items() if m.declined_at is not None]
    chosen = max(declined) if declined else max(judged, default=None)
    state = None if chosen is None else _state_view(judged[chosen][0])
    failure_at = None
    if payment.outcome == "failed":
        failure_at = payment.abandoned_at
        if chosen is not None:
            root_attempt = next(a for a in payment.attempts if a.attempt == chosen)
            if root_attempt.outcome == "declined" and root_attempt.outcome_at is not None:
                failure_at = root_attempt.outcome_at
        if chosen is None:
            root = _no_attempt_cause(payment)
        else:
            first, *rest = judged[chosen][1]
            root = RootCause(
                category=first.category,
                summary=first.summary,
                evidence=first.evidence,
                remedy=first.remedy,
                contributing=tuple(rest),
            )
    return Explanation(
        payment_id=payment.payment_id,
        outcome=payment.outcome,
        root_cause=root,
        attempts=tuple(attempts),
        state_at_failure=state,
        account_id=payment.account_id,
        merchant=payment.merchant,
        scenario=payment.scenario,
        amount_minor=payment.amount_minor,
        currency=payment.currency,
        requested_at=payment.requested_at,
        failure_at=failure_at,
    )
