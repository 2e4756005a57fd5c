"""Failed payments grouped into incidents (CONTRACT section 4, ``payledger incidents``).

Incident reviewers think in incidents, not payments: "the huabei maintenance at 02:00 failed 312
down payments; failover saved 40; 9.6M CNY did not go through". Failed payments whose root
causes share the same category and the same evidence positions form one incident (the same
maintenance event, the same policy, the same suspension); ``unknown`` failures, which have no
evidence, are grouped by the channel and the decline code of the attempt the root cause
explains. Every failed payment of the period is in exactly one incident.

``saved_by_failover`` counts the payments that succeeded after an attempt failed for the same
cause (same category and evidence, or for ``unknown`` the same channel and code). The period
bounds each failed payment by the moment it failed (:attr:`Explanation.failure_at`) and each
saved payment by the moment it was requested; both bounds are inclusive.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

import msgspec

from causes import Category
from ledger.store import EventStore
from projections.state import PaymentState

from .batch import explain_payments
from .explanation import AttemptExplanation, Explanation

__all__ = [
    "Incident",
    "IncidentKey",
    "group_incidents",
    "in_period",
    "incidents",
    "key_of_attempt",
    "period_moment",
    "plain_in_period",
]

IncidentKey = tuple[str, tuple[int, ...], str | None, str | None]
"""(category, evidence, channel, code): channel and code only for ``unknown``."""


class Incident(msgspec.Struct, frozen=True, kw_only=True):
    """Failed payments that share one root cause (see the module docstring)."""

    category: Category
    evidence: tuple[int, ...]
    """The positions of the events that prove the shared cause (empty for ``unknown``)."""
    summary: str
    """The shared cause, in the words of the first failed payment's root cause."""
    remedy: str
    first_failure_at: datetime
    last_failure_at: datetime
    payments_failed: int
    payment_ids: tuple[str, ...]
    """In the order they failed."""
    amount_failed_minor: dict[str, int]
    """What did not go through, by currency."""
    saved_by_failover: int
    saved_payment_ids: tuple[str, ...] = ()
    channel: str | None = None
    """For ``unknown``: the channel of the failed attempts; else the channel most failed on."""
    code: str | None = None
    """For ``unknown``: the decline code the failures share."""
    channels: dict[str, int] = msgspec.field(default_factory=dict)
    merchants: dict[str, int] = msgspec.field(default_factory=dict)
    scenarios: dict[str, int] = msgspec.field(default_factory=dict)


def key_of_attempt(a: AttemptExplanation) -> IncidentKey | None:
    """The incident an attempt's failure belongs to (``None``: it did not fail)."""
    if a.cause is None:
        return None
    if a.cause.category == "unknown":
        return ("unknown", (), a.channel, a.code)
    return (a.cause.category, tuple(a.cause.evidence), None, None)


def _root_key(exp: Explanation) -> IncidentKey:
    root = exp.root_cause
    assert root is not None
    failed = [a for a in exp.attempts if a.cause is not None]
    last = failed[-1] if failed else None
    for a in reversed(failed):  # the attempt the root cause explains
        if a.cause is not None and (a.cause.category, a.cause.evidence) == (
            root.category,
            root.evidence,
        ):
            last = a
            break
    if root.category == "unknown":
        if last is None:
            return ("unknown", (), None, None)
        return ("unknown", (), last.channel, last.code)
    return (root.category, tuple(root.evidence), None, None)


def _within(at: datetime | None, since: datetime | None, until: datetime | None) -> bool:
    if at is None:
        return since is None and until is None
    return (since is None or at >= since) and (until is None or at <= until)


def period_moment(exp: Explanation) -> datetime:
    """The moment that places a payment in a period: when it failed, for a failed payment
    (:attr:`Explanation.failure_at`, else its request); when it was requested, otherwise."""
    if exp.outcome == "failed":
        return exp.failure_at or exp.requested_at
    return exp.requested_at


def plain_in_period(state: PaymentState, since: datetime | None, until: datetime | None) -> bool:
    """:func:`in_period` of a payment that has not failed, from its state (the payments a pass
    counts without explaining them): placed by its request, as :func:`period_moment` places
    every payment that did not fail."""
    assert state.outcome != "failed", "a failed payment is placed by its explanation"
    return _within(state.requested_at, since, until)


def in_period(exp: Explanation, since: datetime | None, until: datetime | None) -> bool:
    """Whether a payment belongs to the period (both bounds inclusive, ``None`` open): by
    :func:`period_moment`, the rule the incidents, the statistics and the report share."""
    return _within(period_moment(exp), since, until)


def _count(counter: dict[str, int], key: str) -> None:
    counter[key] = counter.get(key, 0) + 1


class _Failure(msgspec.Struct, array_like=True, gc=False):
    """What an incident keeps of one failed payment."""

    payment_id: str
    at: datetime
    amount_minor: int
    currency: str
    channel: str
    merchant: str
    scenario: str


def group_incidents(
    explanations: Iterable[Explanation],
    *,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[Incident]:
    """Group explanations (every payment's, or at least every one with a failed attempt) into
    incidents, ranked by payments failed, then by first failure. Streams: it keeps a few
    fields of each failed payment, never the explanations."""
    failed: dict[IncidentKey, list[_Failure]] = {}
    words: dict[IncidentKey, tuple[datetime, str, str]] = {}
    saved: dict[IncidentKey, list[str]] = {}
    for exp in explanations:
        if exp.outcome == "failed" and exp.root_cause is not None:
            if not in_period(exp, since, until):
                continue
            at = period_moment(exp)
            key = _root_key(exp)
            tried = [a.channel for a in exp.attempts if a.cause is not None]
            failed.setdefault(key, []).append(
                _Failure(
                    exp.payment_id,
                    at,
                    exp.amount_minor,
                    exp.currency,
                    tried[-1] if tried else "none",
                    exp.merchant,
                    exp.scenario,
                )
            )
            if key not in words or at < words[key][0]:
                words[key] = (at, exp.root_cause.summary, exp.root_cause.remedy)
        elif exp.outcome == "succeeded" and in_period(exp, since, until):
            for key in {k for a in exp.attempts if (k := key_of_attempt(a)) is not None}:
                saved.setdefault(key, []).append(exp.payment_id)
    out: list[Incident] = []
    for key, group in failed.items():
        category, evidence, channel, code = key
        group.sort(key=lambda f: (f.at, f.payment_id))
        amounts: dict[str, int] = {}
        channels: dict[str, int] = {}
        merchants: dict[str, int] = {}
        scenarios: dict[str, int] = {}
        for f in group:
            amounts[f.currency] = amounts.get(f.currency, 0) + f.amount_minor
            _count(channels, f.channel)
            _count(merchants, f.merchant)
            _count(scenarios, f.scenario)
        rescued = sorted(saved.get(key, []))
        _, summary, remedy = words[key]
        busiest = max(sorted(channels), key=channels.__getitem__)
        out.append(
            Incident(
                category=category,  # type: ignore[arg-type]
                evidence=evidence,
                summary=summary,
                remedy=remedy,
                first_failure_at=group[0].at,
                last_failure_at=group[-1].at,
                payments_failed=len(group),
                payment_ids=tuple(f.payment_id for f in group),
                amount_failed_minor=dict(sorted(amounts.items())),
                saved_by_failover=len(rescued),
                saved_payment_ids=tuple(rescued),
                channel=channel if category == "unknown" else busiest,
                code=code,
                channels=dict(sorted(channels.items())),
                merchants=dict(sorted(merchants.items())),
                scenarios=dict(sorted(scenarios.items())),
            )
        )
    out.sort(key=lambda i: (-i.payments_failed, i.first_failure_at, i.category, i.evidence))
    return out


async def incidents(
    store: EventStore,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[Incident]:
    """The incidents of the period, from one pass over the log (:func:`explain_payments`)."""
    return group_incidents(
        [e async for e in explain_payments(store, with_failures=True, progress=progress)],
        since=since,
        until=until,
    )
