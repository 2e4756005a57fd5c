"""The page of ``payledger report`` for a period: the headline figures, the failures over time
by root-cause category, the incidents, the merchants, scenarios and channels that failed most,
what failover saved, and the early warnings. Every figure is one of the report's data
(:class:`~replay.report.data.FleetReport`), which the ``--json`` commands compute the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from causes import CATEGORIES

from ..documents import StatsDocument
from ..incidents import Incident
from .data import FleetReport
from .page import (
    CATEGORY_COLOUR,
    amounts,
    category_pill,
    document,
    esc,
    moment,
    table,
    text,
)
from .svg import failures_chart

__all__ = ["SHOWN_WARNINGS", "TOP", "render_fleet"]

TOP: Final = 10
"""Rows of each "failed most" table."""
SHOWN_WARNINGS: Final = 500
"""Warnings listed one by one; the rest are counted (``payledger warnings --json`` lists all)."""
_SHOWN_IDS: Final = 5


def _period(report: FleetReport) -> str:
    if report.since is None and report.until is None:
        return "the whole log"
    low = "the start" if report.since is None else moment(report.since)
    high = "the end" if report.until is None else moment(report.until)
    return f"{low} to {high}"


def _fact(label: str, value: str, field: str) -> str:
    return (
        f'<div class="fact" data-field="{esc(field)}"><div class="label">{esc(label)}</div>'
        f'<div class="value">{value}</div></div>'
    )


def _overview(report: FleetReport) -> str:
    s = report.stats
    facts = (
        ("payments", f"{s.payments:,}", "payments"),
        ("succeeded", f"{s.succeeded:,}", "succeeded"),
        ("failed", f"{s.failed:,}", "failed"),
        ("pending", f"{s.pending:,}", "pending"),
        ("amount failed", amounts(s.failed_amount_minor), "failed_amount"),
        ("saved by failover", f"{s.saved_by_failover:,}", "saved_by_failover"),
        ("amount saved", amounts(s.saved_amount_minor), "saved_amount"),
        ("incidents", f"{len(report.incidents):,}", "incidents"),
        ("early warnings", f"{len(report.warnings):,}", "warnings"),
    )
    cells = "".join(_fact(label, value, field) for label, value, field in facts)
    rows = [
        f'<tr class="by-category" data-category="{c}"><td>{category_pill(c)}</td>'
        f'<td class="num">{s.by_category.get(c, 0):,}</td>'
        f'<td class="num">{s.saved_by_category.get(c, 0):,}</td></tr>'
        for c in CATEGORIES
        if c in s.by_category or c in s.saved_by_category
    ]
    by_category = (
        table(("root cause", "failed", "saved by failover"), rows, numeric=(1, 2))
        if rows
        else '<p class="muted">no failed attempt in the period</p>'
    )
    return (
        f'<section id="overview"><h2>Overview</h2><div class="facts">{cells}</div>'
        f"<h3>Failed payments by root cause</h3>{by_category}</section>"
    )


def _over_time(report: FleetReport) -> str:
    legend = "".join(
        f'<span><span class="swatch" style="background:{CATEGORY_COLOUR[c]}"></span>{c}</span>'
        for c in CATEGORIES
    )
    rows = [
        f'<tr class="bucket" data-start="{moment(b.start)}"><td class="nowrap">'
        f"{moment(b.start)}</td>"
        + "".join(f'<td class="num">{b.failed.get(c, 0)}</td>' for c in CATEGORIES)
        + f'<td class="num">{sum(b.failed.values())}</td></tr>'
        for b in report.failures_over_time
        if b.failed
    ]
    numbers = (
        "<details><summary>The chart's numbers (buckets with a failure)</summary>"
        + table(("from (UTC)", *CATEGORIES, "total"), rows, numeric=(1, 2, 3, 4, 5, 6))
        + "</details>"
        if rows
        else ""
    )
    return (
        '<section id="over-time"><h2>Failures over time</h2>'
        "<p>Failed payments of the period by the moment they failed, stacked by root-cause "
        f'category.</p><p class="legend">{legend}</p>'
        f'<div class="scroll">{failures_chart(report.failures_over_time, report.bucket_seconds)}'
        f"</div>{numbers}</section>"
    )


def _incident_row(rank: int, i: Incident) -> str:
    if i.category == "unknown":
        where = f"{i.channel or 'no attempt'} / {i.code or 'no code'}"
    else:
        where = ", ".join(f"#{p}" for p in i.evidence) or "none in the log"
    shown = ", ".join(i.payment_ids[:_SHOWN_IDS])
    more = len(i.payment_ids) - _SHOWN_IDS
    ids = text(shown + (f" and {more:,} more" if more > 0 else ""), 600)
    return (
        f'<tr class="incident" data-rank="{rank}" data-category="{esc(i.category)}" '
        f'data-evidence="{" ".join(str(p) for p in i.evidence)}" '
        f'data-channel="{esc(i.channel or "")}" data-code="{esc(i.code or "")}">'
        f'<td class="num">{rank}</td><td>{category_pill(i.category)}</td>'
        f'<td class="num" data-field="payments_failed">{i.payments_failed:,}</td>'
        f'<td class="num" data-field="saved_by_failover">{i.saved_by_failover:,}</td>'
        f'<td class="num" data-field="amount_failed">{amounts(i.amount_failed_minor)}</td>'
        f'<td class="nowrap">{moment(i.first_failure_at)}<br>{moment(i.last_failure_at)}</td>'
        f'<td data-field="evidence">{text(where, 300)}</td>'
        f'<td class="words">{text(i.summary)}<br><span class="remedy">{text(i.remedy)}</span></td>'
        f'<td class="mono">{ids}</td></tr>'
    )


def _incidents(report: FleetReport) -> str:
    if not report.incidents:
        return (
            '<section id="incidents"><h2>Incidents</h2>'
            '<p class="muted">no failed payment in the period</p></section>'
        )
    rows = [_incident_row(n, i) for n, i in enumerate(report.incidents, start=1)]
    headers = (
        "#",
        "category",
        "failed",
        "saved",
        "amount failed",
        "first, last failure",
        "evidence",
        "cause and remedy",
        "payments",
    )
    return (
        '<section id="incidents"><h2>Incidents</h2>'
        "<p>Failed payments whose root causes share a category and evidence (unknown ones: a "
        "channel and a decline code), ranked by payments failed; <i>saved</i> counts the "
        "payments that succeeded after an attempt failed for the same cause. "
        "<code>payledger explain ID</code> shows any of them.</p>"
        f"{table(headers, rows, numeric=(0, 2, 3, 4), cls='incidents')}</section>"
    )


def _ranked(title: str, field: str, counts: Mapping[str, int]) -> str:
    top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP]
    if not top:
        return (
            f'<div class="top" data-field="{field}"><h3>{esc(title)}</h3>'
            '<p class="muted">none</p></div>'
        )
    peak = top[0][1] or 1
    rows = [
        f'<tr data-name="{esc(name)}"><td>{text(name, 200)}</td>'
        f'<td class="num">{n:,}</td><td style="width:40%"><div class="bar" '
        f'style="width:{100 * n / peak:.1f}%"></div></td></tr>'
        for name, n in top
    ]
    return (
        f'<div class="top" data-field="{field}"><h3>{esc(title)}</h3>'
        f"{table(('name', 'failed', ''), rows, numeric=(1,))}</div>"
    )


def _top(stats: StatsDocument) -> str:
    return (
        '<section id="top"><h2>Where failures concentrate</h2><div class="tops">'
        + _ranked("Merchants", "by_merchant", stats.by_merchant)
        + _ranked("Scenarios", "by_scenario", stats.by_scenario)
        + _ranked("Channels (of the last failed attempt)", "by_channel", stats.by_channel)
        + "</div></section>"
    )


def _failover(stats: StatsDocument) -> str:
    rows = [
        f'<tr class="saved" data-category="{esc(c)}"><td>{category_pill(c)}</td>'
        f'<td class="num">{n:,}</td></tr>'
        for c, n in sorted(stats.saved_by_category.items(), key=lambda kv: (-kv[1], kv[0]))
    ]
    body = (
        table(("failed attempt's cause", "payments saved"), rows, numeric=(1,))
        if rows
        else '<p class="muted">no payment succeeded after a failed attempt</p>'
    )
    return (
        '<section id="failover"><h2>Failover savings</h2>'
        f"<p>{stats.saved_by_failover:,} payments succeeded after at least one failed "
        f"attempt ({amounts(stats.saved_amount_minor)}), by the cause of their last failed "
        f"attempt:</p>{body}</section>"
    )


def _warnings(report: FleetReport) -> str:
    found = report.warnings
    if not found:
        return (
            '<section id="warnings"><h2>Early warnings</h2>'
            '<p class="muted">no early warning in the period</p></section>'
        )
    kinds: dict[tuple[str, str], int] = {}
    for w in found:
        kinds[(w.kind, w.severity)] = kinds.get((w.kind, w.severity), 0) + 1
    summary = [
        f'<tr class="warning-kind" data-kind="{esc(k)}" data-severity="{esc(sev)}">'
        f'<td>{esc(k)}</td><td>{esc(sev)}</td><td class="num">{n:,}</td></tr>'
        for (k, sev), n in sorted(kinds.items())
    ]
    rows = [
        f'<tr class="warning" data-position="{w.position}" data-kind="{esc(w.kind)}">'
        f'<td class="nowrap">{moment(w.occurred_at)}</td><td>{esc(w.severity)}</td>'
        f"<td>{esc(w.kind)}</td><td>{text(w.subject, 200)}</td><td>{text(w.summary)}</td>"
        f'<td class="num">#{w.position}</td></tr>'
        for w in found[:SHOWN_WARNINGS]
    ]
    more = len(found) - SHOWN_WARNINGS
    tail = (
        f'<p class="muted">and {more:,} more: <code>payledger warnings --json</code> lists '
        "them all</p>"
        if more > 0
        else ""
    )
    return (
        '<section id="warnings"><h2>Early warnings</h2>'
        "<p>Credit deteriorations of accounts with car-loan payments at stake, and channels "
        "turning degraded, down or in maintenance, or failing more often.</p>"
        + table(("kind", "severity", "warnings"), summary, numeric=(2,))
        + table(
            ("occurred (UTC)", "severity", "kind", "subject", "summary", "position"),
            rows,
            numeric=(5,),
            cls="warnings",
        )
        + tail
        + "</section>"
    )


def render_fleet(report: FleetReport) -> str:
    """The whole page."""
    body = "\n".join(
        (
            _overview(report),
            _over_time(report),
            _incidents(report),
            _top(report.stats),
            _failover(report.stats),
            _warnings(report),
        )
    )
    return document(
        title="Payment failures: " + _period(report),
        subtitle=(
            f"{report.stats.payments:,} payments, {report.stats.failed:,} failed, "
            f"{len(report.incidents):,} incidents · ledger up to position {report.head}"
        ),
        nav=(
            ("overview", "Overview"),
            ("over-time", "Over time"),
            ("incidents", "Incidents"),
            ("top", "Where"),
            ("failover", "Failover"),
            ("warnings", "Warnings"),
        ),
        body=body,
    )
