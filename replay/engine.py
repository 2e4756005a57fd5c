"""The replay engine: why a payment failed, proved from the log (CONTRACT section 5).

For every failed attempt of a payment the engine rebuilds the account, the channel and the
merchant's policy *as they were just before the attempt failed* (the position before its
``PaymentDeclined``, or before the ``PaymentAbandoned`` that ended an unfinished attempt) with
the projections' time travel, then tests the attempt against each blocking condition in the order
a payment meets them:

1. ``channel_policy``: the merchant does not accept the channel for the scenario
   (evidence: the ``ChannelPolicySet``);
2. ``system``: the channel was degraded, down or in maintenance (evidence: the
   ``ChannelStatusChanged``);
3. ``credit`` (``huabei``/``jiebei`` only): the credit line was not active (evidence: the
   ``CreditStatusChanged``), or its available credit was below the amount (evidence: the event
   that set the limit and the settlements and authorizations that use or hold it), or there was
   no credit line at all;
4. ``user_action``: the attempt's verification failed and was never passed (evidence: the
   ``VerificationFailed`` events).

The decline code is a clue, not the verdict: only when none of these conditions holds does a
code speak for itself (``timeout``/``channel_unavailable`` for ``system``, ``invalid_details``
for ``user_action``, the decline being then its own evidence); otherwise the cause is
``unknown`` and the summary says which evidence is missing. The first condition that holds is
the cause, the others are listed as contributing.

:func:`explain` answers for one payment with a handful of indexed reads; :func:`explain_failed`
explains every failed payment of the log in one streaming pass that keeps the state current
with the projections' reducers, and gives the same answers.

The pass is the hot path of ``payledger explain --failed`` (issue 4: at least 20,000 payments/s
over a 1,000,000-event log; ``bench/bench_replay.py`` measures it). On an SQLite store it reads
raw rows and decodes an event only when the state needs it: an account, channel or policy
event at once, a payment's own events only when that payment is folded (most never are), a
``PaymentAuthorized``/``PaymentSettled`` only when it moves a credit line (its channel comes
from SQLite as a column). Explaining failed payments only, it first finds the payments that
have a decline or an abandonment (the only ones that can fail) and leaves the events that
concern nothing but their payment in the database for all the others. Any other store is read
record by record with the same reducers.
"""

from __future__ import annotations

import asyncio
import bisect
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any, Final, Literal, TypeAlias, TypeVar

import msgspec

from ledger.errors import LedgerError, NotFoundError, UnknownEventTypeError
from ledger.events import (
    CATALOGUE,
    AccountOpened,
    ChannelDecided,
    ChannelPolicySet,
    ChannelStatusChanged,
    CreditLimitChanged,
    CreditLineOpened,
    CreditScoreChanged,
    CreditStatusChanged,
    FailoverTriggered,
    PaymentAbandoned,
    PaymentAttempted,
    PaymentAuthorized,
    PaymentDeclined,
    PaymentRequested,
    PaymentSettled,
    RepaymentMade,
    RepaymentOverdue,
    UnknownEvent,
    VerificationFailed,
    VerificationPassed,
    VerificationRequested,
)
from ledger.sqlite import SQLiteEventStore
from ledger.store import ROW_COLUMNS, EventStore, Record, record_from_row
from projections import account as account_projection
from projections import account_at, channel_at, payment_at, policy_at
from projections import channel as channel_projection
from projections import payment as payment_projection
from projections import policy as policy_projection
from projections.state import (
    AccountState,
    AttemptState,
    ChannelState,
    CreditLine,
    PaymentState,
    PolicyState,
    VerificationResult,
)

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
    "explain",
    "explain_failed",
    "explain_payments",
    "whatif",
]

Category: TypeAlias = Literal["channel_policy", "system", "credit", "user_action", "unknown"]
CheckStatus: TypeAlias = Literal["passed", "failed", "not_applicable"]
_T = TypeVar("_T")

CREDIT_CHANNELS: Final = account_projection.CREDIT_PRODUCTS
"""Channels that draw on the account's credit line of the same product."""
_WEAK_SYSTEM_CODES: Final = frozenset({"timeout", "channel_unavailable"})
_PREFERRED_FALLBACKS: Final = ("bank_card", "balance", "huabei", "jiebei")


# --- the explanation's shape (CONTRACT section 5) ------------------------------------------


class Cause(msgspec.Struct, frozen=True, kw_only=True):
    """One blocking condition and the events that prove it."""

    category: Category
    summary: str
    evidence: tuple[int, ...]
    """Global positions, ascending: the events that put the world into the blocking state."""
    remedy: str


class RootCause(msgspec.Struct, frozen=True, kw_only=True):
    """The cause of the last failed attempt, with the other conditions that also held."""

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
    """The state the last failed attempt met, rebuilt as of ``position``."""

    account: AccountView | None
    channel: ChannelView
    policy: PolicyView
    position: int


class Explanation(msgspec.Struct, frozen=True, kw_only=True):
    """The incident explanation of one payment (CONTRACT section 5, plus a few keys)."""

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


class Check(msgspec.Struct, frozen=True, kw_only=True):
    """One check of a what-if replay."""

    check: str
    status: CheckStatus
    detail: str
    evidence: tuple[int, ...] = ()


class WhatIf(msgspec.Struct, frozen=True, kw_only=True):
    """An attempt replayed against the same historical state with another channel."""

    payment_id: str
    attempt: int
    original_channel: str
    channel: str
    position: int
    """The state is as of this position (just before the original attempt failed)."""
    would_pass: bool
    checks: tuple[Check, ...]
    original_cause: AttemptCause | None


# --- formatting helpers --------------------------------------------------------------------


def _money(minor: int, currency: str) -> str:
    sign = "-" if minor < 0 else ""
    major, cents = divmod(abs(minor), 100)
    return f"{sign}{major:,}.{cents:02d} {currency}"


def _positions(positions: Sequence[int]) -> str:
    if len(positions) == 1:
        return f"position {positions[0]}"
    return "positions " + ", ".join(str(p) for p in positions)


def _when(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%SZ")


def _alternative(payment: PaymentState, policy: PolicyState, failing: str) -> str:
    """A channel to suggest instead of ``failing``: one the merchant accepts, cards first."""
    rule = policy.rules.get(payment.scenario)
    allowed = rule.allowed_channels if rule is not None else _PREFERRED_FALLBACKS
    ranked = [c for c in _PREFERRED_FALLBACKS if c in allowed] + [
        c for c in allowed if c not in _PREFERRED_FALLBACKS
    ]
    for channel in ranked:
        if channel != failing:
            return channel
    return "another channel"


# --- the blocking conditions ---------------------------------------------------------------


class _Moment(msgspec.Struct, frozen=True, kw_only=True):
    """A failed attempt and the state it met (as of ``failed_at - 1``)."""

    attempt: int
    channel: str
    code: str | None
    failed_at: int
    verifications: tuple[VerificationResult, ...]
    account: AccountState | None
    channel_state: ChannelState
    policy: PolicyState


def _policy_cause(payment: PaymentState, m: _Moment) -> Cause | None:
    rule = m.policy.rules.get(payment.scenario)
    if rule is None or m.channel in rule.allowed_channels:
        return None
    allowed = " or ".join(rule.allowed_channels) if rule.allowed_channels else "no channel"
    alt = _alternative(payment, m.policy, m.channel)
    return Cause(
        category="channel_policy",
        summary=(
            f"{payment.merchant} accepts only {allowed} for {payment.scenario} "
            f"(policy set at position {rule.position}: {rule.reason}); the attempt used "
            f"{m.channel}"
        ),
        evidence=(rule.position,),
        remedy=(
            f"pay by {alt}: {payment.merchant} accepts only {allowed} for {payment.scenario}"
            if rule.allowed_channels
            else f"{payment.merchant} accepts no channel for {payment.scenario}: ask the "
            "merchant to change its policy"
        ),
    )


def _system_cause(payment: PaymentState, m: _Moment) -> Cause | None:
    ch = m.channel_state
    if ch.status == "up" or ch.status_position is None:
        return None
    alt = _alternative(payment, m.policy, m.channel)
    state = "in maintenance" if ch.status == "maintenance" else ch.status
    until = f", expected until {_when(ch.expected_until)}" if ch.expected_until else ""
    if ch.status == "maintenance" and ch.expected_until is not None:
        remedy = (
            f"retry after the maintenance window ends at {_when(ch.expected_until)}, "
            f"or pay by {alt}"
        )
    elif ch.status == "degraded":
        remedy = f"retry when {m.channel} recovers, or pay by {alt}"
    else:
        remedy = f"retry when {m.channel} is back up, or pay by {alt}"
    return Cause(
        category="system",
        summary=(
            f"{m.channel} was {state} ({ch.reason}) since position {ch.status_position}{until}"
        ),
        evidence=(ch.status_position,),
        remedy=remedy,
    )


def _credit_cause(payment: PaymentState, m: _Moment) -> Cause | None:
    if m.channel not in CREDIT_CHANNELS:
        return None
    alt = _alternative(payment, m.policy, m.channel)
    line: CreditLine | None = None if m.account is None else m.account.credit.get(m.channel)
    if line is None:
        return Cause(
            category="credit",
            summary=(
                f"account {payment.account_id} had no {m.channel} credit line before position "
                f"{m.failed_at}: no CreditLineOpened for it in the log"
            ),
            evidence=(),
            remedy=f"pay by {alt}, or open a {m.channel} credit line first",
        )
    if line.status != "active":
        where = line.status_position if line.status_position is not None else line.opened_position
        overdue = ""
        if line.overdue_minor > 0 and line.overdue_position is not None:
            overdue = (
                f"; {_money(line.overdue_minor, line.currency)} overdue "
                f"({line.days_overdue} days, position {line.overdue_position})"
            )
        if line.overdue_minor > 0:
            due = _money(line.overdue_minor, line.currency)
            remedy = f"pay the overdue amount ({due}) or pay by {alt}"
        elif line.status == "frozen":
            remedy = f"have the risk review concluded and the line unfrozen, or pay by {alt}"
        elif line.status == "closed":
            remedy = f"pay by {alt}: the {m.channel} line is closed"
        else:
            remedy = f"have the {m.channel} line reactivated, or pay by {alt}"
        reason = f" ({line.status_reason})" if line.status_reason else ""
        return Cause(
            category="credit",
            summary=(
                f"{m.channel} credit line {line.status}{reason} since position {where}{overdue}"
            ),
            evidence=(where,),
            remedy=remedy,
        )
    available = line.available_minor
    if available < payment.amount_minor:
        evidence = tuple(sorted({line.limit_position, *line.usage_positions}))
        short = payment.amount_minor - available
        cur = line.currency
        return Cause(
            category="credit",
            summary=(
                f"{m.channel} available credit {_money(available, cur)} was below the "
                f"{_money(payment.amount_minor, cur)} amount: limit "
                f"{_money(line.limit_minor, cur)} (position {line.limit_position}), used "
                f"{_money(line.used_minor, cur)}, held {_money(line.held_minor, cur)}"
            ),
            evidence=evidence,
            remedy=f"pay by {alt}, or repay {_money(short, cur)} of the {m.channel} balance first",
        )
    return None


def _unresolved_failures(m: _Moment) -> list[VerificationResult]:
    failures: list[VerificationResult] = []
    for v in m.verifications:
        if v.passed:
            failures = []
        else:
            failures.append(v)
    return failures


def _user_cause(m: _Moment) -> Cause | None:
    failures = _unresolved_failures(m)
    if not failures:
        return None
    methods = sorted({f.method for f in failures})
    reasons = ", ".join(f.reason or "failed" for f in failures)
    last = failures[-1]
    tries = f"; {last.remaining_tries} tries left" if last.remaining_tries is not None else ""
    times = "once" if len(failures) == 1 else f"{len(failures)} times"
    return Cause(
        category="user_action",
        summary=(
            f"{'/'.join(methods)} verification failed {times} ({reasons}{tries}) at "
            f"{_positions([f.position for f in failures])}"
        ),
        evidence=tuple(f.position for f in failures),
        remedy=f"retry and complete the {'/'.join(methods)} verification (request a new code "
        "if it expired)",
    )


def _weak_cause(payment: PaymentState, m: _Moment) -> Cause | None:
    """A cause that only the decline code speaks for (nothing in the state explains it)."""
    alt = _alternative(payment, m.policy, m.channel)
    if m.code in _WEAK_SYSTEM_CODES:
        return Cause(
            category="system",
            summary=(
                f"declined {m.code} while the log shows {m.channel} up: the decline itself "
                f"(position {m.failed_at}) is the only evidence of a system failure"
            ),
            evidence=(m.failed_at,),
            remedy=f"retry, or pay by {alt}",
        )
    if m.code == "invalid_details":
        return Cause(
            category="user_action",
            summary=(
                "declined invalid_details: the customer's details were rejected; the decline "
                f"itself (position {m.failed_at}) is the only evidence"
            ),
            evidence=(m.failed_at,),
            remedy="check the payment details with the customer and retry",
        )
    return None


_MISSING: Final[dict[str, str]] = {
    "credit_suspended": "a CreditStatusChanged that made the {channel} line inactive",
    "insufficient_credit": "a CreditLimitChanged or payments that used up the {channel} line",
    "risk_blocked": "a risk event (a CreditStatusChanged to frozen) for the account",
    "channel_not_permitted": "a ChannelPolicySet excluding {channel} for the scenario",
    "verification_failed": "a VerificationFailed event for the attempt",
    "channel_unavailable": "a ChannelStatusChanged taking {channel} down",
    "timeout": "a ChannelStatusChanged degrading {channel}",
}


def _unknown_cause(payment: PaymentState, m: _Moment) -> Cause:
    seen = [f"{m.channel} up"]
    rule = m.policy.rules.get(payment.scenario)
    seen.append(
        f"no {payment.merchant} policy for {payment.scenario}"
        if rule is None
        else f"{payment.merchant} accepts {m.channel} for {payment.scenario}"
    )
    if m.channel in CREDIT_CHANNELS and m.account is not None:
        line = m.account.credit.get(m.channel)
        if line is not None:
            seen.append(
                f"the {m.channel} line active with "
                f"{_money(line.available_minor, line.currency)} available"
            )
    seen.append("no failed verification")
    what = f"declined {m.code}" if m.code else "abandoned unfinished"
    missing = _MISSING.get(m.code or "", "any event explaining the failure").format(
        channel=m.channel
    )
    return Cause(
        category="unknown",
        summary=(
            f"{what} at position {m.failed_at}, but the log shows no blocking state "
            f"({'; '.join(seen)}); missing evidence: {missing} before position {m.failed_at}"
        ),
        evidence=(),
        remedy=(
            f"ask the processor for the decline reason of attempt {m.attempt}; meanwhile retry "
            f"or pay by {_alternative(payment, m.policy, m.channel)}"
        ),
    )


def _diagnose(payment: PaymentState, m: _Moment) -> list[Cause]:
    """Every blocking condition that held, in the order a payment meets them."""
    causes = [
        c
        for c in (
            _policy_cause(payment, m),
            _system_cause(payment, m),
            _credit_cause(payment, m),
            _user_cause(m),
        )
        if c is not None
    ]
    if causes:
        return causes
    weak = _weak_cause(payment, m)
    return [weak] if weak is not None else [_unknown_cause(payment, m)]


# --- assembling the explanation ------------------------------------------------------------


def _failure_points(payment: PaymentState) -> list[tuple[AttemptState, int]]:
    """The failed attempts and the position of the event that ended each."""
    points: list[tuple[AttemptState, int]] = []
    for a in payment.attempts:
        if a.outcome == "declined" and a.outcome_position is not None:
            points.append((a, a.outcome_position))
    if (
        payment.outcome == "failed"
        and payment.attempts
        and payment.attempts[-1].outcome == "pending"
        and payment.abandoned_position is not None
    ):
        points.append((payment.attempts[-1], payment.abandoned_position))
    return points


def _account_view(account: AccountState | None) -> AccountView | None:
    if account is None or (
        account.opened_position is None and not account.credit and account.score is None
    ):
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


def _state_view(payment: PaymentState, m: _Moment) -> StateAtFailure:
    rule = m.policy.rules.get(payment.scenario)
    ch = m.channel_state
    return StateAtFailure(
        account=_account_view(m.account),
        channel=ChannelView(
            channel=m.channel,
            status=ch.status,
            reason=ch.reason,
            expected_until=ch.expected_until,
            status_position=ch.status_position,
        ),
        policy=PolicyView(
            merchant=payment.merchant,
            scenario=payment.scenario,
            allowed_channels=None if rule is None else rule.allowed_channels,
            rule_position=None if rule is None else rule.position,
        ),
        position=m.failed_at - 1,
    )


class _Diagnosis(msgspec.Struct, frozen=True, kw_only=True):
    """What a failed attempt met: its causes in order and the state, computed when it failed."""

    causes: tuple[Cause, ...]
    state: StateAtFailure


def _diagnosis(payment: PaymentState, m: _Moment) -> _Diagnosis:
    return _Diagnosis(causes=tuple(_diagnose(payment, m)), state=_state_view(payment, m))


def _assemble(payment: PaymentState, diagnoses: dict[int, _Diagnosis]) -> Explanation:
    """The explanation from the payment's final state and the diagnosis of each failed
    attempt, keyed by the position of the event that ended it."""
    failed = {a.attempt: at for a, at in _failure_points(payment)}
    attempts: list[AttemptExplanation] = []
    last: _Diagnosis | None = None
    for a in payment.attempts:
        at = failed.get(a.attempt)
        d = None if at is None else diagnoses.get(at)
        cause: AttemptCause | None = None
        outcome: str = a.outcome
        if d is not None:
            first = d.causes[0]
            cause = AttemptCause(
                category=first.category, evidence=first.evidence, summary=first.summary
            )
            last = d
            if a.outcome != "declined":
                outcome = "abandoned"
        attempts.append(
            AttemptExplanation(
                attempt=a.attempt,
                channel=a.channel,
                outcome=outcome,
                code=a.code,
                cause=cause,
                failed_at=at,
            )
        )
    root: RootCause | None = None
    if payment.outcome == "failed":
        if last is not None:
            first, *rest = last.causes
            root = RootCause(
                category=first.category,
                summary=first.summary,
                evidence=first.evidence,
                remedy=first.remedy,
                contributing=tuple(rest),
            )
        else:
            root = _no_attempt_cause(payment)
    return Explanation(
        payment_id=payment.payment_id,
        outcome=payment.outcome,
        root_cause=root,
        attempts=tuple(attempts),
        state_at_failure=None if last is None else last.state,
        account_id=payment.account_id,
        merchant=payment.merchant,
        scenario=payment.scenario,
        amount_minor=payment.amount_minor,
        currency=payment.currency,
    )


def _no_attempt_cause(payment: PaymentState) -> RootCause:
    """A failed payment with no failed attempt: abandoned before or after its attempt."""
    reason = f" ({payment.abandoned_reason})" if payment.abandoned_reason else ""
    where = payment.abandoned_position
    if payment.attempts and payment.attempts[-1].outcome == "authorized":
        a = payment.attempts[-1]
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


# --- one payment ---------------------------------------------------------------------------


async def _payment(store: EventStore, payment_id: str) -> PaymentState:
    payment = await payment_at(store, payment_id)
    if payment is None:
        raise NotFoundError(f"no payment {payment_id!r} in the store")
    return payment


async def _moment(
    store: EventStore,
    payment: PaymentState,
    attempt: AttemptState,
    failed_at: int,
    channel: str | None = None,
) -> _Moment:
    before = failed_at - 1
    ch = channel or attempt.channel
    return _Moment(
        attempt=attempt.attempt,
        channel=ch,
        code=attempt.code if attempt.outcome == "declined" else None,
        failed_at=failed_at,
        verifications=tuple(v for v in attempt.verifications if v.position < failed_at),
        account=await account_at(store, payment.account_id, position=before),
        channel_state=await channel_at(store, ch, position=before),
        policy=await policy_at(store, payment.merchant, position=before),
    )


async def explain(store: EventStore, payment_id: str) -> Explanation:
    """Explain one payment from the state each of its attempts met.

    Raises :class:`~ledger.errors.NotFoundError` when the store has no such payment.
    """
    payment = await _payment(store, payment_id)
    diagnoses = {
        failed_at: _diagnosis(payment, await _moment(store, payment, a, failed_at))
        for a, failed_at in _failure_points(payment)
    }
    return _assemble(payment, diagnoses)


# --- what if -------------------------------------------------------------------------------


def _whatif_checks(payment: PaymentState, m: _Moment) -> list[Check]:
    checks: list[Check] = []
    rule = m.policy.rules.get(payment.scenario)
    if rule is None:
        checks.append(
            Check(
                check="policy",
                status="passed",
                detail=f"no {payment.merchant} policy for {payment.scenario}: every channel "
                "accepted",
            )
        )
    else:
        ok = m.channel in rule.allowed_channels
        checks.append(
            Check(
                check="policy",
                status="passed" if ok else "failed",
                detail=f"{payment.merchant} accepts {', '.join(rule.allowed_channels) or 'none'} "
                f"for {payment.scenario}",
                evidence=(rule.position,),
            )
        )
    ch = m.channel_state
    checks.append(
        Check(
            check="channel_health",
            status="passed" if ch.status == "up" else "failed",
            detail=f"{m.channel} was {ch.status}"
            + (f" ({ch.reason})" if ch.reason else "")
            + ("" if ch.status_position is not None else " (no status event: up by default)"),
            evidence=() if ch.status_position is None else (ch.status_position,),
        )
    )
    if m.channel in CREDIT_CHANNELS:
        line = None if m.account is None else m.account.credit.get(m.channel)
        if line is None:
            checks.append(
                Check(
                    check="credit_status",
                    status="failed",
                    detail=f"account {payment.account_id} had no {m.channel} credit line",
                )
            )
            checks.append(
                Check(
                    check="available_credit",
                    status="failed",
                    detail=f"no {m.channel} credit line to draw on",
                )
            )
        else:
            where = (
                line.status_position if line.status_position is not None else line.opened_position
            )
            checks.append(
                Check(
                    check="credit_status",
                    status="passed" if line.status == "active" else "failed",
                    detail=f"the {m.channel} line was {line.status}",
                    evidence=(where,),
                )
            )
            enough = line.available_minor >= payment.amount_minor
            checks.append(
                Check(
                    check="available_credit",
                    status="passed" if enough else "failed",
                    detail=f"{_money(line.available_minor, line.currency)} available for "
                    f"{_money(payment.amount_minor, payment.currency)}",
                    evidence=tuple(sorted({line.limit_position, *line.usage_positions})),
                )
            )
    else:
        for name in ("credit_status", "available_credit"):
            checks.append(
                Check(
                    check=name,
                    status="not_applicable",
                    detail=f"{m.channel} does not draw on a credit line",
                )
            )
    failures = _unresolved_failures(m)
    if failures:
        checks.append(
            Check(
                check="verification",
                status="failed",
                detail="the customer's verification failed and carries over to any channel",
                evidence=tuple(f.position for f in failures),
            )
        )
    elif m.verifications:
        checks.append(
            Check(
                check="verification",
                status="passed",
                detail="the customer's verification passed (carried over)",
                evidence=tuple(v.position for v in m.verifications if v.passed),
            )
        )
    else:
        checks.append(
            Check(
                check="verification",
                status="not_applicable",
                detail="no verification recorded for the attempt",
            )
        )
    return checks


async def whatif(
    store: EventStore, payment_id: str, channel: str, *, attempt: int | None = None
) -> WhatIf:
    """Replay a failed attempt (the last by default) with ``channel`` instead, against the
    state the original attempt met; says whether each check would have passed.

    Raises :class:`~ledger.errors.NotFoundError` for an unknown payment or attempt, and
    :class:`~ledger.errors.LedgerError` when the payment has no failed attempt.
    """
    payment = await _payment(store, payment_id)
    points = _failure_points(payment)
    if attempt is not None:
        points = [p for p in points if p[0].attempt == attempt]
        if not points:
            if all(a.attempt != attempt for a in payment.attempts):
                raise NotFoundError(f"payment {payment_id!r} has no attempt {attempt}")
            raise LedgerError(f"attempt {attempt} of payment {payment_id!r} did not fail")
    if not points:
        raise LedgerError(f"payment {payment_id!r} has no failed attempt to replay")
    original, failed_at = points[-1]
    m = await _moment(store, payment, original, failed_at, channel)
    om = await _moment(store, payment, original, failed_at)
    causes = _diagnose(payment, om)
    checks = _whatif_checks(payment, m)
    return WhatIf(
        payment_id=payment.payment_id,
        attempt=original.attempt,
        original_channel=original.channel,
        channel=channel,
        position=failed_at - 1,
        would_pass=all(c.status != "failed" for c in checks),
        checks=tuple(checks),
        original_cause=AttemptCause(
            category=causes[0].category, evidence=causes[0].evidence, summary=causes[0].summary
        ),
    )


# --- every payment, in one pass ------------------------------------------------------------

_ACCOUNT_TYPES: Final[frozenset[type]] = frozenset(
    {
        AccountOpened,
        CreditLineOpened,
        CreditLimitChanged,
        CreditScoreChanged,
        CreditStatusChanged,
        RepaymentOverdue,
        RepaymentMade,
    }
)
_ACCOUNT_ROUTED: Final[frozenset[type]] = frozenset(
    {PaymentAuthorized, PaymentSettled, PaymentDeclined, PaymentAbandoned}
)
"""The payment events that move an account's holds and usage (the account reducer reads
nothing else of a payment)."""
_PAYMENT_QUIET: Final[frozenset[type]] = frozenset(
    {
        ChannelDecided,
        PaymentAttempted,
        VerificationRequested,
        VerificationFailed,
        VerificationPassed,
        FailoverTriggered,
    }
)
"""The payment events that touch nothing but their payment."""


_Row: TypeAlias = tuple[Any, ...]
"""A stored row as :func:`ledger.store.record_from_row` takes it (``_COLUMNS``), with the
channel of a ``PaymentAuthorized``/``PaymentSettled`` as a 12th column (``_CHANNEL_SQL``)."""


class _Open:
    """A payment not closed yet. Its records are folded lazily: most payments settle without
    a failure, and their payment state is then never needed. On an SQLite store they are kept
    as the rows read, and decoded only when the payment is folded."""

    __slots__ = ("account_id", "diagnoses", "merchant", "records", "state")

    def __init__(self, account_id: str, merchant: str) -> None:
        self.account_id = account_id
        self.merchant = merchant
        self.records: list[Record | _Row] = []
        self.state: PaymentState | None = None
        self.diagnoses: dict[int, _Diagnosis] = {}

    def fold(self) -> PaymentState | None:
        """The payment's state as of its last record read (folding what is pending)."""
        state = self.state
        for item in self.records:
            record = item if isinstance(item, Record) else record_from_row(item)
            state = payment_projection.apply(state, record)
        self.records.clear()
        self.state = state
        return state


_SCHEMAS: Final[dict[str, int]] = {name: cls.schema_version for name, cls in CATALOGUE.items()}
"""The current schema of each event type: a row at it decodes straight to its class."""
_QUIET_ROW: Final = 0
_DECODED_ROW: Final = 1
_AUTHORIZED_ROW: Final = 2
_SETTLED_ROW: Final = 3
_REQUESTED_ROW: Final = 4
_ROW_KINDS: Final[dict[str, int]] = {
    **{name: _DECODED_ROW for name in _SCHEMAS},
    **{cls.__name__: _QUIET_ROW for cls in _PAYMENT_QUIET},
    PaymentRequested.__name__: _REQUESTED_ROW,
    PaymentAuthorized.__name__: _AUTHORIZED_ROW,
    PaymentSettled.__name__: _SETTLED_ROW,
}
"""How :meth:`_Pass.apply_row` takes a row of each known type (the ``type`` column is the
event's class name)."""


_QUIET_SCHEMAS: Final[dict[str, int]] = {
    name: _SCHEMAS[name] for name, kind in _ROW_KINDS.items() if kind == _QUIET_ROW
}
"""The types :meth:`_Pass.apply_row` only files under their open payment, at their schema."""


class _RequestedOf(msgspec.Struct):
    """What the pass needs of a ``PaymentRequested`` until its payment is folded."""

    account_id: str
    merchant: str


_REQUESTED_OF: Final = msgspec.json.Decoder(_RequestedOf)


class _Pass:
    """The state of one streaming pass: every account, channel, policy and open payment,
    current as of the record being read, folded with the projections' reducers (routed as
    :class:`projections.World` routes them)."""

    def __init__(self) -> None:
        self.accounts: dict[str, account_projection.AccountFold] = {}
        self.channels: dict[str, ChannelState] = {}
        self.policies: dict[str, PolicyState] = {}
        self.open: dict[str, _Open] = {}
        self.closed: dict[str, str] = {}
        """The account of each closed payment: its later events still move the account."""

    def channel(self, name: str) -> ChannelState:
        state = self.channels.get(name)
        return channel_projection.new_state(name) if state is None else state

    def policy(self, merchant: str) -> PolicyState:
        state = self.policies.get(merchant)
        return policy_projection.new_state(merchant) if state is None else state

    def _diagnose(
        self, payment: PaymentState, attempt: AttemptState, failed_at: int, into: _Open
    ) -> None:
        fold = self.accounts.get(payment.account_id)
        m = _Moment(
            attempt=attempt.attempt,
            channel=attempt.channel,
            code=attempt.code,
            failed_at=failed_at,
            verifications=attempt.verifications,
            account=None if fold is None or not fold.known else fold.state,
            channel_state=self.channel(attempt.channel),
            policy=self.policy(payment.merchant),
        )
        into.diagnoses[failed_at] = _diagnosis(payment, m)

    def _account(self, account_id: str, record: Record) -> None:
        fold = self.accounts.get(account_id)
        if fold is None:
            fold = account_projection.new_fold(account_id)
        self.accounts[account_id] = account_projection.apply(fold, record)

    def _payment_to_account(self, account_id: str, payment_id: str, record: Record) -> None:
        """Route a payment event to its account, unless it cannot move a credit line: the
        reducer then only moves ``position``, which no explanation reads (a decline or an
        abandonment that releases no hold, a card or wallet payment that holds nothing)."""
        fold = self.accounts.get(account_id)
        event = record.event
        if fold is not None:
            kind = type(event)
            moves_credit = (kind is PaymentAuthorized or kind is PaymentSettled) and getattr(
                event, "channel", None
            ) in CREDIT_CHANNELS
            if not moves_credit:
                prefix = payment_id + "#"
                if not any(key.startswith(prefix) for key in fold.holds):
                    return
        self._account(account_id, record)

    def apply(self, record: Record) -> _Open | None:
        """Fold ``record``; returns the payment it closed (settled or abandoned), if any."""
        event = record.event
        kind = type(event)
        if kind in _PAYMENT_QUIET:  # the common case: only the payment itself changes
            entry = self.open.get(event.payment_id)  # type: ignore[attr-defined]
            if entry is not None:
                entry.records.append(record)
            return None
        if kind in _ACCOUNT_TYPES:
            self._account(event.account_id, record)  # type: ignore[attr-defined]
            return None
        if kind is ChannelStatusChanged:
            name: str = event.channel  # type: ignore[attr-defined]
            self.channels[name] = channel_projection.apply(self.channel(name), record)
            return None
        if kind is ChannelPolicySet:
            merchant: str = event.merchant  # type: ignore[attr-defined]
            self.policies[merchant] = policy_projection.apply(self.policy(merchant), record)
            return None
        if kind is UnknownEvent:
            raise UnknownEventTypeError(event.type_name, record.position)  # type: ignore[attr-defined]
        pid: str = event.payment_id  # type: ignore[attr-defined]
        entry = self.open.get(pid)
        if entry is None:
            closed = self.closed.get(pid)
            if closed is not None:  # explained already; its events still move the account
                if kind in _ACCOUNT_ROUTED:
                    self._payment_to_account(closed, pid, record)
                return None
            if kind is not PaymentRequested:
                return None  # no request: nothing to explain
            entry = _Open(event.account_id, event.merchant)  # type: ignore[attr-defined]
            self.open[pid] = entry
        elif kind is PaymentDeclined:
            self._declined(entry, record)
        elif kind is PaymentAbandoned:
            state = entry.fold()
            if state is not None and state.attempts and state.attempts[-1].outcome == "pending":
                self._diagnose(state, state.attempts[-1], record.position, entry)
        if kind in _ACCOUNT_ROUTED:
            self._payment_to_account(entry.account_id, pid, record)
        entry.records.append(record)
        if kind is PaymentSettled or kind is PaymentAbandoned:
            del self.open[pid]
            self.closed[pid] = entry.account_id
            return entry
        return None

    def _row_to_account(self, account_id: str, payment_id: str, name: str, row: _Row) -> None:
        """:meth:`_payment_to_account` for a ``PaymentAuthorized``/``PaymentSettled`` row:
        its ``channel`` (the row's 12th column) tells whether it moves a credit line, and the
        event is decoded only when it is routed."""
        fold = self.accounts.get(account_id)
        if fold is not None:
            channel: str | None = row[11]  # None: no valid JSON, record_from_row says why
            if channel not in CREDIT_CHANNELS and channel is not None:
                prefix = payment_id + "#"
                if not any(key.startswith(prefix) for key in fold.holds):
                    return
        self._account(account_id, record_from_row(row))

    def apply_row(self, row: _Row) -> _Open | None:
        """:meth:`apply` for a stored row, decoding only what the pass needs: the events that
        touch only their payment (more than half of a log) and the settlements of card and
        wallet payments are kept undecoded until their payment is folded, which most
        payments never are. Any type at another schema than the current one (upcast or
        unknown) takes :meth:`apply`."""
        name: str = row[3]
        kind = _ROW_KINDS.get(name)
        if kind is None or _SCHEMAS[name] != row[4]:
            return self.apply(record_from_row(row))
        if kind == _QUIET_ROW:
            entry = self.open.get(row[1][8:])  # "payment-<payment_id>"
            if entry is not None:
                entry.records.append(row)
            return None
        if kind == _DECODED_ROW:
            return self.apply(record_from_row(row))
        pid: str = row[1][8:]
        if kind == _REQUESTED_ROW:
            entry = self.open.get(pid)
            if entry is None:
                if pid in self.closed:
                    return None
                try:
                    head = _REQUESTED_OF.decode(row[10])
                except (msgspec.ValidationError, msgspec.DecodeError):
                    return self.apply(record_from_row(row))  # says what is wrong with it
                entry = _Open(head.account_id, head.merchant)
                self.open[pid] = entry
            entry.records.append(row)
            return None
        # PaymentAuthorized or PaymentSettled
        entry = self.open.get(pid)
        if entry is None:
            closed = self.closed.get(pid)
            if closed is not None:
                self._row_to_account(closed, pid, name, row)
            return None  # no request: nothing to explain
        self._row_to_account(entry.account_id, pid, name, row)
        entry.records.append(row)
        if kind == _SETTLED_ROW:
            del self.open[pid]
            self.closed[pid] = entry.account_id
            return entry
        return None

    def _declined(self, entry: _Open, record: Record) -> None:
        event = record.event
        assert isinstance(event, PaymentDeclined)
        state = entry.fold()
        if state is None:
            return
        attempt = _attempt_of(state, event.attempt, event.channel)
        attempt = msgspec.structs.replace(attempt, channel=event.channel, code=event.code)
        self._diagnose(state, attempt, record.position, entry)


def _attempt_of(payment: PaymentState, number: int, channel: str) -> AttemptState:
    for a in payment.attempts:
        if a.attempt == number:
            return a
    return AttemptState(attempt=number, channel=channel)


_PAGE: Final = 8192
_COLUMNS: Final = ROW_COLUMNS.removesuffix(", hash")
_CHANNEL_SQL: Final = (
    "CASE WHEN type IN ('PaymentAuthorized', 'PaymentSettled') AND json_valid(data) "
    "THEN json_extract(data, '$.channel') END"
)
"""A 12th column: the channel of a ``PaymentAuthorized``/``PaymentSettled``, which the pass
needs of every one of them to route it (extracted in the store's thread, not decoded here)."""
_ROWS_SQL: Final = (
    f"SELECT {_COLUMNS}, {_CHANNEL_SQL} FROM events WHERE position >= ? AND position <= ? "
    "ORDER BY position"
)


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
            if items:
                yield items
    finally:
        if ahead is not None:
            ahead.cancel()


async def _record_pages(store: EventStore, head: int) -> AsyncIterator[list[Record]]:
    """Every record up to ``head``, page by page (any backend)."""

    async def page(low: int, high: int) -> list[Record]:
        return [
            r async for r in store.read_all(from_position=low, to_position=high, page_size=_PAGE)
        ]

    async for records in _read_ahead(head, page):
        yield records


_REQUESTED: Final = PaymentRequested.__name__
_ENDINGS_SQL: Final = (
    "SELECT DISTINCT f.position, f.stream, f.type FROM events AS e "
    "JOIN events AS f ON f.stream = e.stream AND f.version = 1 "
    "WHERE e.type IN ('PaymentDeclined', 'PaymentAbandoned') AND e.position <= ? "
    "ORDER BY f.position"
)
_QUIET_SQL: Final = " OR ".join(
    f"(type = '{name}' AND schema = {schema})" for name, schema in sorted(_QUIET_SCHEMAS.items())
)
_SOME_ROWS_SQL: Final = (
    f"SELECT {_COLUMNS}, {_CHANNEL_SQL} FROM events WHERE position >= ? AND position <= ? "
    f"AND (NOT ({_QUIET_SQL}) OR stream IN (SELECT value FROM json_each(?))) ORDER BY position"
)


class _Failing:
    """The payments that can fail: those with a ``PaymentDeclined`` or a ``PaymentAbandoned``
    up to the head (a payment with neither never has the outcome ``failed``, and the pass
    never folds it when it explains failed payments only). Their rows are the only ones of the
    quiet types (:data:`_QUIET_SCHEMAS`) the pass needs then: a page query leaves the others
    in the database, which spares reading and building more than a third of the rows."""

    def __init__(self, endings: Sequence[tuple[int, str, str]], fold: _Pass) -> None:
        requested = [(first, stream) for first, stream, kind in endings if kind == _REQUESTED]
        self.firsts = [first for first, _ in requested]
        """The position of each stream's first event, a ``PaymentRequested``: where the
        payment opens in the pass, ascending."""
        self.streams = [stream for _, stream in requested]
        self.always = {stream for _, stream, kind in endings if kind != _REQUESTED}
        """Streams that start with another event: where they open is not known, so their
        quiet rows are read in every page."""
        self.ids = frozenset(stream[8:] for _, stream, _ in endings)
        self.fold = fold

    @classmethod
    async def load(cls, store: SQLiteEventStore, head: int, fold: _Pass) -> _Failing | None:
        """``None`` when a stream name holds a NUL character (``json_each`` would cut it)."""
        rows = await store.fetch(_ENDINGS_SQL, (head,))
        endings = [(int(first), str(stream), str(kind)) for first, stream, kind in rows]
        if any("\x00" in stream for _, stream, _ in endings):
            return None
        return cls(endings, fold)

    def streams_for(self, low: int, high: int) -> str:
        """The failing payments whose quiet rows may lie in ``[low, high]``, as a JSON array:
        those open in the pass, and those whose stream starts in this page or the one before
        (read ahead, this page is queried before the previous one is folded). A superset is
        harmless: the pass ignores the rows of payments it does not keep open."""
        start = bisect.bisect_left(self.firsts, low - _PAGE)
        end = bisect.bisect_right(self.firsts, high)
        names = set(self.streams[start:end])
        names.update(self.always)
        ids = self.ids
        names.update("payment-" + pid for pid in self.fold.open if pid in ids)
        return msgspec.json.encode(sorted(names)).decode()


async def _row_pages(
    store: SQLiteEventStore, head: int, failing: _Failing | None = None
) -> AsyncIterator[list[_Row]]:
    """Every stored row up to ``head``, page by page, undecoded (positions are gap-free); with
    ``failing``, the rows of the quiet types only for those payments."""

    async def page(low: int, high: int) -> list[_Row]:
        if failing is None:
            rows: list[_Row] = await store.fetch(_ROWS_SQL, (low, high))  # plain tuples
        else:
            rows = await store.fetch(_SOME_ROWS_SQL, (low, high, failing.streams_for(low, high)))
        return rows

    async for rows in _read_ahead(head, page):
        yield rows


async def explain_payments(
    store: EventStore,
    *,
    failed_only: bool = False,
    since: datetime | None = None,
    progress: Callable[[int], None] | None = None,
) -> AsyncIterator[Explanation]:
    """Explain every payment (every failed one with ``failed_only``) in one streaming pass
    over the log, with the same answers as :func:`explain`.

    ``since`` keeps the payments requested at or after that moment. A payment is explained
    when it closes (settles or is abandoned; later events of its stream are not read), the
    rest at the end of the log in request order. ``progress(position)`` is called every few
    thousand events.
    """
    fold = _Pass()

    def wanted(payment: PaymentState | None) -> bool:
        if payment is None or (failed_only and payment.outcome != "failed"):
            return False
        return since is None or payment.requested_at >= since

    head = await store.head()
    last = 0
    if isinstance(store, SQLiteEventStore):
        failing = await _Failing.load(store, head, fold) if failed_only else None
        apply_row = fold.apply_row
        quiet = _QUIET_SCHEMAS
        open_payment = fold.open.get
        async for rows in _row_pages(store, head, failing):
            for row in rows:
                if quiet.get(row[3]) == row[4]:  # apply_row's common case, inlined
                    entry = open_payment(row[1][8:])
                    if entry is not None:
                        entry.records.append(row)
                    continue
                closed = apply_row(row)
                if closed is not None and (
                    closed.diagnoses or not failed_only or row[3] == "PaymentAbandoned"
                ):
                    payment = closed.fold()
                    if wanted(payment):
                        assert payment is not None
                        yield _assemble(payment, closed.diagnoses)
            last = rows[-1][0]
            if progress is not None:
                progress(last)
        last = head
        if failing is not None:  # the others were not read, so cannot be folded
            fold.open = {pid: e for pid, e in fold.open.items() if pid in failing.ids}
    else:
        async for page in _record_pages(store, head):
            for record in page:
                closed = fold.apply(record)
                if closed is not None and (
                    closed.diagnoses or not failed_only or type(record.event) is PaymentAbandoned
                ):
                    payment = closed.fold()
                    if wanted(payment):
                        assert payment is not None
                        yield _assemble(payment, closed.diagnoses)
            last = page[-1].position
            if progress is not None:
                progress(last)
    remaining = [(entry.fold(), entry) for entry in fold.open.values()]
    for payment, entry in sorted(
        ((p, e) for p, e in remaining if p is not None), key=lambda pe: pe[0].requested_position
    ):
        if wanted(payment):
            yield _assemble(payment, entry.diagnoses)
    if progress is not None:
        progress(last)


async def explain_failed(
    store: EventStore,
    *,
    since: datetime | None = None,
    progress: Callable[[int], None] | None = None,
) -> AsyncIterator[Explanation]:
    """Explain every failed payment of the log (requested at or after ``since``), in one
    streaming pass; each explanation is the one :func:`explain` gives."""
    async for explanation in explain_payments(
        store, failed_only=True, since=since, progress=progress
    ):
        yield explanation
