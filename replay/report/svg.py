"""The report's two drawings, as inline SVG: a payment's timeline (one lane per stream, its
events on one axis, each attempt's moment marked, the evidence highlighted and linked to its row
of the table) and the failures of a period over time, stacked by root-cause category."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from typing import Final

from causes import CATEGORIES

from .data import Bucket, TimelineEvent
from .page import CATEGORY_COLOUR, esc

__all__ = ["failures_chart", "lane_of", "timeline_svg"]

_LABEL: Final = 190
"""Width of the lane labels, left of the axis."""
_LANE: Final = 34
_TOP: Final = 44
_TIP: Final = 300
"""Characters of an event's words kept in its tooltip."""
_LANE_ORDER: Final = ("account", "channel", "policy", "payment")


def lane_of(stream: str, payment_id: str) -> tuple[int, str]:
    """The sort key of a stream's lane: accounts, channels, policies, other payments, then the
    payment itself last (nearest the time axis)."""
    kind = stream.split("-", 1)[0]
    rank = _LANE_ORDER.index(kind) if kind in _LANE_ORDER else len(_LANE_ORDER)
    if stream == f"payment-{payment_id}":
        rank = len(_LANE_ORDER) + 1
    return rank, stream


def _short(value: str, limit: int) -> str:
    return value if len(value) <= limit else value[: limit - 1] + "…"


def timeline_svg(events: Sequence[TimelineEvent], payment_id: str) -> str:
    """The payment's timeline: events spaced evenly in position order (the order the ledger
    judges by; a backdated record sits where it was recorded), one lane per stream."""
    if not events:
        return '<p class="muted">no events</p>'
    lanes = sorted({e.stream for e in events}, key=lambda s: lane_of(s, payment_id))
    row = {s: i for i, s in enumerate(lanes)}
    step = max(24.0, min(70.0, 980.0 / len(events)))
    end = _LABEL + step * len(events) + 10
    width = int(end + 160)  # room for the label of a moment at the end
    axis_y = _TOP + _LANE * len(lanes) + 6
    height = axis_y + 72
    x_of = {e.position: _LABEL + step * (i + 0.5) for i, e in enumerate(events)}
    out: list[str] = [
        f'<svg class="timeline" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="timeline of payment {esc(payment_id)}">'
    ]
    for s, i in row.items():
        y = _TOP + _LANE * i + _LANE / 2
        out.append(
            f'<line x1="{_LABEL - 6}" y1="{y:.1f}" x2="{end:.1f}" y2="{y:.1f}" '
            'stroke="#d8dce4" stroke-width="1"/>'
            f'<text class="lane-label" x="{_LABEL - 12}" y="{y + 4:.1f}" text-anchor="end">'
            f"<title>{esc(_short(s, _TIP))}</title>{esc(_short(s, 24))}</text>"
        )
    # each attempt's moment: a dashed line through every lane, labelled above
    marks = [(e, n) for e in events for n in e.moment_of]
    for k, (e, n) in enumerate(marks):
        x = x_of[e.position]
        label_y = 14 + 14 * (k % 2)
        out.append(
            f'<g class="moment" data-attempt="{n}" data-position="{e.position}">'
            f'<line x1="{x:.1f}" y1="{label_y + 4}" x2="{x:.1f}" y2="{axis_y}" stroke="#2456a6" '
            'stroke-width="1.5" stroke-dasharray="4 3"/>'
            f'<text x="{x + 4:.1f}" y="{label_y}" fill="#2456a6">attempt {n}: moment '
            f"#{e.position}</text></g>"
        )
    out.append(
        f'<line x1="{_LABEL - 6}" y1="{axis_y}" x2="{end:.1f}" y2="{axis_y}" stroke="#5b6475"/>'
    )
    gap = max(1, math.ceil(70 / step))
    for i, e in enumerate(events):
        x = x_of[e.position]
        y = _TOP + _LANE * row[e.stream] + _LANE / 2
        tip = esc(
            _short(f"#{e.position} {e.type} {e.occurred_at:%Y-%m-%dT%H:%M:%SZ}: {e.summary}", _TIP)
        )
        if e.evidence:
            shape = (
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="9" fill="#d55e00" stroke="#7a2a00" '
                'stroke-width="2"/>'
            )
        elif e.ended:
            shape = f'<rect x="{x - 6:.1f}" y="{y - 6:.1f}" width="12" height="12" fill="#b42318"/>'
        elif e.moment_of:
            shape = f'<circle cx="{x:.1f}" cy="{y:.1f}" r="7" fill="#2456a6"/>'
        else:
            shape = f'<circle cx="{x:.1f}" cy="{y:.1f}" r="5" fill="#8a93a6"/>'
        klass = "event evidence" if e.evidence else "event"
        out.append(
            f'<a href="#pos-{e.position}" class="{klass}" data-position="{e.position}">'
            f"<title>{tip}</title>{shape}</a>"
        )
        weight = ' font-weight="700"' if e.evidence or e.moment_of else ""
        out.append(
            f'<text x="{x:.1f}" y="{axis_y + 14}" text-anchor="end"{weight} '
            f'transform="rotate(-60 {x:.1f} {axis_y + 14})">#{e.position}</text>'
        )
        if i % gap == 0:
            out.append(
                f'<text x="{x:.1f}" y="{height - 6}" text-anchor="middle" fill="#5b6475">'
                f"{e.occurred_at:%H:%M:%S}</text>"
            )
    out.append("</svg>")
    return "".join(out)


def _nice(value: int) -> int:
    """The smallest of 1, 2, 5, 10, 20, 50, ... at or above ``value``."""
    power = 1
    while True:
        for m in (1, 2, 5):
            if m * power >= value:
                return m * power
        power *= 10


def _tick_label(at: datetime, width: int, first: bool) -> str:
    if width >= 86400:
        return f"{at:%Y-%m-%d}"
    if width >= 60:
        return f"{at:%Y-%m-%d %H:%M}" if first else f"{at:%H:%M}"
    return f"{at:%H:%M:%S}"


def failures_chart(buckets: Sequence[Bucket], width_seconds: int) -> str:
    """Failed payments per bucket, stacked by root-cause category (in CONTRACT order)."""
    if not buckets:
        return '<p class="muted">no failed payments in the period</p>'
    width, height = 1200, 320
    left, right, top, bottom = 56, 16, 12, 58
    plot_w, plot_h = width - left - right, height - top - bottom
    totals = [sum(b.failed.values()) for b in buckets]
    tick = _nice(math.ceil(max(totals) / 4))
    y_max = 4 * tick
    bar = plot_w / len(buckets)
    out = [
        f'<svg class="chart" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
        'aria-label="failed payments over time, by root-cause category">'
    ]
    for k in range(5):
        value = tick * k
        y = top + plot_h - plot_h * value / y_max
        out.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" '
            'stroke="#e6e9ef"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{value}</text>'
        )
    gap = max(1, math.ceil(len(buckets) / 12))
    for i, (b, total) in enumerate(zip(buckets, totals, strict=True)):
        x = left + bar * i
        base = float(top + plot_h)
        out.append(
            f'<g class="bucket" data-start="{b.start:%Y-%m-%dT%H:%M:%SZ}" data-total="{total}">'
        )
        for category in CATEGORIES:
            n = b.failed.get(category, 0)
            if not n:
                continue
            h = plot_h * n / y_max
            base -= h
            out.append(
                f'<rect x="{x + 1:.1f}" y="{base:.1f}" width="{max(1.0, bar - 2):.1f}" '
                f'height="{h:.1f}" fill="{CATEGORY_COLOUR[category]}" data-category="{category}" '
                f'data-count="{n}"><title>{b.start:%H:%M:%S}–{b.end:%H:%M:%S} UTC: {n} '
                f"{category}</title></rect>"
            )
        out.append("</g>")
        if i % gap == 0:
            label = esc(_tick_label(b.start, width_seconds, i == 0))
            out.append(
                f'<text x="{x + 2:.1f}" y="{top + plot_h + 16}" fill="#5b6475">{label}</text>'
            )
    out.append(
        f'<line x1="{left}" y1="{top + plot_h}" x2="{width - right}" y2="{top + plot_h}" '
        'stroke="#5b6475"/>'
        f'<text x="{left}" y="{height - 12}" fill="#5b6475">UTC, one bar per '
        f"{esc(_duration(width_seconds))}</text></svg>"
    )
    return "".join(out)


def _duration(seconds: int) -> str:
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            n = seconds // size
            return f"{n} {unit}{'s' if n != 1 else ''}"
    return f"{seconds} second{'s' if seconds != 1 else ''}"
