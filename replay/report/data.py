"""The numbers a report shows, computed by the code the ``--json`` commands run.

A payment's report holds its explanation (:func:`replay.explain`, as ``explain --json``), the
events of its timeline (:func:`replay.timeline.payment_timeline`, as ``timeline --payment``)
and a what-if for every other channel (:func:`replay.whatif`, as ``whatif --json``). A period's
report holds the statistics (:class:`replay.stats.Tally`, as ``stats --json``), the incidents
(:func:`replay.incidents.group_incidents`, as ``incidents --json``) and the early warnings
(:func:`gateway.warnings.warnings`, as ``warnings --json``), all from one pass over the log;
the failures over time are the period's failed payments counted by root-cause category in
buckets of one width.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal

import msgspec

from gateway.warnings import Warning as EarlyWarning
from gateway.warnings import warnings as early_warnings
from ledger.errors import LedgerError
from ledger.store import EventStore

from ..batch import explain_payments
from ..documents import StatsDocument
from ..engine import explain
from ..explanation import Explanation, WhatIf
from ..incidents import Incident, group_incidents, in_period, period_moment
from ..render import describe
from ..stats import Tally
from ..timeline import payment_timeline
from ..what_if import whatif

__all__ = [
    "BUCKET_WIDTHS",
    "CHANNELS",
    "MAX_BUCKETS",
    "Bucket",
    "FleetReport",
    "PaymentReport",
    "TimelineEvent",
    "bucket_failures",
    "fleet_report",
    "payment_report",
]

CHANNELS: Final = ("huabei", "jiebei", "bank_card", "balance")
"""The channels a payment's report asks the what-if about (less the one the attempt used)."""
MAX_BUCKETS: Final = 36
BUCKET_WIDTHS: Final = (
    *(1, 2, 5, 10, 15, 30),
    *(60, 120, 300, 600, 900, 1800),
    *(3600, 7200, 10800, 21600, 43200),
    *(86400, 172800, 604800, 2592000),
)
"""Bucket widths in seconds, narrowest first: the chart takes the narrowest that covers the
period in at most :data:`MAX_BUCKETS` buckets."""


class TimelineEvent(msgspec.Struct, frozen=True, kw_only=True):
    """One event of a payment's timeline."""

    position: int
    stream: str
    type: str
    occurred_at: datetime
    summary: str
    """What the event recorded, in one line (as ``payledger timeline`` words it)."""
    data: dict[str, Any]
    evidence: bool
    """Whether the explanation cites it."""
    moment_of: tuple[int, ...] = ()
    """The attempts judged at this position (their ``moment``)."""
    ended: tuple[int, ...] = ()
    """The failed attempts this event ended (their ``failed_at``)."""


class PaymentReport(msgspec.Struct, frozen=True, kw_only=True):
    """What ``payledger report --payment ID`` shows."""

    kind: Literal["payment"] = "payment"
    head: int
    """The log's last position when the report was made."""
    explanation: Explanation
    timeline: tuple[TimelineEvent, ...]
    whatif: tuple[WhatIf, ...]
    """The failed attempt the root cause explains (the last failed one), replayed with each
    other channel of :data:`CHANNELS`."""
    whatif_note: str | None = None
    """Why there is no what-if, when there is none."""


class Bucket(msgspec.Struct, frozen=True, kw_only=True):
    """Failed payments whose failure falls in ``[start, end)``, by root-cause category."""

    start: datetime
    end: datetime
    failed: dict[str, int]


class FleetReport(msgspec.Struct, frozen=True, kw_only=True):
    """What ``payledger report`` shows for a period."""

    kind: Literal["fleet"] = "fleet"
    head: int
    since: datetime | None
    until: datetime | None
    stats: StatsDocument
    """The :mod:`replay.stats` document of the period."""
    incidents: tuple[Incident, ...]
    bucket_seconds: int
    failures_over_time: tuple[Bucket, ...]
    warnings: tuple[EarlyWarning, ...]


# --- a payment -----------------------------------------------------------------------------


async def payment_report(store: EventStore, payment_id: str) -> PaymentReport:
    """The report of one payment. Raises :class:`~ledger.errors.NotFoundError` when the store
    has no such payment."""
    head = await store.head()
    exp = await explain(store, payment_id)
    records, evidence = await payment_timeline(store, payment_id, explanation=exp)
    moments: dict[int, list[int]] = {}
    ends: dict[int, list[int]] = {}
    for a in exp.attempts:
        if a.moment is not None:
            moments.setdefault(a.moment, []).append(a.attempt)
        if a.failed_at is not None:
            ends.setdefault(a.failed_at, []).append(a.attempt)
    timeline = []
    for rec in records:
        data: dict[str, Any] = msgspec.to_builtins(rec.event)
        data.pop("type", None)
        data.pop("occurred_at", None)
        timeline.append(
            TimelineEvent(
                position=rec.position,
                stream=rec.stream,
                type=rec.type,
                occurred_at=rec.event.occurred_at,
                summary=describe(rec.event),
                data=data,
                evidence=rec.position in evidence,
                moment_of=tuple(moments.get(rec.position, ())),
                ended=tuple(ends.get(rec.position, ())),
            )
        )
    failed = [a for a in exp.attempts if a.cause is not None]
    asked: list[WhatIf] = []
    note = None
    if not failed:
        note = f"the payment has no failed attempt to replay (it is {exp.outcome})"
    else:
        try:
            for channel in CHANNELS:
                if channel != failed[-1].channel:
                    asked.append(await whatif(store, payment_id, channel))
        except LedgerError as e:
            asked, note = [], str(e)
    return PaymentReport(
        head=head,
        explanation=exp,
        timeline=tuple(timeline),
        whatif=tuple(asked),
        whatif_note=note,
    )


# --- a period ------------------------------------------------------------------------------


def _floor(moment: datetime, seconds: int) -> datetime:
    stamp = int(moment.timestamp())
    return datetime.fromtimestamp(stamp - stamp % seconds, UTC)


def bucket_failures(
    failed: Sequence[Explanation], *, since: datetime | None, until: datetime | None
) -> tuple[int, tuple[Bucket, ...]]:
    """The failed payments of the period counted by root-cause category in buckets of one
    width (the narrowest of :data:`BUCKET_WIDTHS` giving at most :data:`MAX_BUCKETS`), from
    ``since`` (or the first failure) to ``until`` (or the last); returns (width, buckets)."""
    if not failed:
        return BUCKET_WIDTHS[0], ()
    moments = [period_moment(e) for e in failed]
    low = since or min(moments)
    high = until or max(moments)
    span = max(1.0, (high - low).total_seconds())
    width = next(
        (w for w in BUCKET_WIDTHS if span / w < MAX_BUCKETS), math.ceil(span / (MAX_BUCKETS - 1))
    )
    start = _floor(low, width)
    count = int((high - start).total_seconds() // width) + 1
    counts: list[dict[str, int]] = [{} for _ in range(count)]
    for exp, at in zip(failed, moments, strict=True):
        index = min(count - 1, max(0, int((at - start).total_seconds() // width)))
        category = exp.root_cause.category if exp.root_cause is not None else "unknown"
        counts[index][category] = counts[index].get(category, 0) + 1
    step = timedelta(seconds=width)
    return width, tuple(
        Bucket(start=start + i * step, end=start + (i + 1) * step, failed=dict(sorted(c.items())))
        for i, c in enumerate(counts)
    )


async def fleet_report(
    store: EventStore,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    progress: Callable[[int], None] | None = None,
) -> FleetReport:
    """The report of the period ``[since, until]`` (both inclusive, ``None`` open): one pass
    over the log explains every payment with a decline or an abandonment and counts the others
    from their state (:meth:`Tally.add_plain`); the statistics and the incidents are taken from
    it by the code ``stats`` and ``incidents`` run; then the early warnings are read."""
    head = await store.head()
    tally = Tally(since=since, until=until)
    kept: list[Explanation] = []
    async for exp in explain_payments(
        store, with_failures=True, plain=tally.add_plain, progress=progress
    ):
        tally.add(exp)
        if exp.outcome == "failed" or any(a.cause is not None for a in exp.attempts):
            kept.append(exp)
    found = group_incidents(kept, since=since, until=until)
    failed = [e for e in kept if e.outcome == "failed" and in_period(e, since, until)]
    width, buckets = bucket_failures(failed, since=since, until=until)
    raised = [
        w
        async for w in early_warnings(store, since=since)
        if until is None or w.occurred_at <= until
    ]
    return FleetReport(
        head=head,
        since=since,
        until=until,
        stats=tally.document(),
        incidents=tuple(found),
        bucket_seconds=width,
        failures_over_time=buckets,
        warnings=tuple(raised),
    )
