"""The page of ``payledger report --payment ID``: the verdict (root cause, evidence, remedy,
contributing causes), each attempt, the state the explained attempt met, the what-if of every
other channel, and the timeline (drawn, then listed) with the evidence highlighted; every
position cited links to its row of the timeline."""

from __future__ import annotations

from collections.abc import Set as AbstractSet

from causes.wording import money

from ..explanation import Explanation, StateAtFailure, WhatIf
from .data import PaymentReport, TimelineEvent
from .page import (
    category_pill,
    document,
    esc,
    moment,
    position_link,
    position_links,
    table,
    text,
)
from .svg import timeline_svg

__all__ = ["render_payment"]

_CHECK_CLASS = {"passed": "pass", "failed": "fail", "not_applicable": "na"}


def _plain(minor: int) -> str:
    """An amount of a credit line, in major units (the line's currency is not in the view)."""
    return esc(money(minor, "").strip())


def _fact(label: str, value: str, field: str) -> str:
    return (
        f'<div class="fact" data-field="{esc(field)}"><div class="label">{esc(label)}</div>'
        f'<div class="value">{value}</div></div>'
    )


def _facts(exp: Explanation, head: int) -> str:
    return (
        '<div class="facts">'
        + "".join(
            (
                _fact("outcome", esc(exp.outcome), "outcome"),
                _fact("amount", esc(money(exp.amount_minor, exp.currency)), "amount"),
                _fact("merchant", text(exp.merchant, 200), "merchant"),
                _fact("scenario", text(exp.scenario, 200), "scenario"),
                _fact("account", text(exp.account_id, 200), "account"),
                _fact("requested", esc(moment(exp.requested_at)), "requested_at"),
                _fact("failed", esc(moment(exp.failure_at)), "failure_at"),
                _fact("ledger head", f"#{head}", "head"),
            )
        )
        + "</div>"
    )


def _verdict(exp: Explanation, anchors: AbstractSet[int]) -> str:
    root = exp.root_cause
    if root is None:
        failed = sum(1 for a in exp.attempts if a.cause is not None)
        if exp.outcome == "succeeded" and failed:
            words = (
                f"Succeeded after {failed} failed attempt{'s' if failed != 1 else ''}: failover "
                "saved it. Each failed attempt is explained below."
            )
        else:
            words = f"The payment is {exp.outcome}: there is no failure to explain."
        klass = "ok" if exp.outcome == "succeeded" else "pending"
        return (
            f'<section id="verdict"><h2>Verdict</h2><div class="verdict {klass}" '
            f'data-outcome="{esc(exp.outcome)}"><p>{esc(words)}</p></div></section>'
        )
    parts = [
        '<section id="verdict"><h2>Root cause</h2>',
        f'<div class="verdict root-cause" data-outcome="{esc(exp.outcome)}" '
        f'data-category="{esc(root.category)}" '
        f'data-evidence="{" ".join(str(p) for p in root.evidence)}">',
        f'<p>{category_pill(root.category)} <span class="summary">{text(root.summary)}</span></p>',
        f'<p>Evidence: <span class="evidence-list">'
        f"{position_links(root.evidence, anchors)}</span></p>",
        f'<p class="remedy">Remedy: <span class="remedy-text">{text(root.remedy)}</span></p>',
        "</div>",
    ]
    if root.contributing:
        rows = [
            f'<tr class="contributing" data-category="{esc(c.category)}" '
            f'data-evidence="{" ".join(str(p) for p in c.evidence)}">'
            f"<td>{category_pill(c.category)}</td><td>{text(c.summary)}</td>"
            f"<td>{position_links(c.evidence, anchors)}</td><td>{text(c.remedy)}</td></tr>"
            for c in root.contributing
        ]
        parts.append("<h3>Also blocking at that moment (contributing causes)</h3>")
        parts.append(table(("category", "summary", "evidence", "remedy"), rows))
    parts.append("</section>")
    return "".join(parts)


def _attempts(exp: Explanation, anchors: AbstractSet[int]) -> str:
    if not exp.attempts:
        return (
            '<section id="attempts"><h2>Attempts</h2>'
            '<p class="muted">no attempt was made</p></section>'
        )
    rows = []
    for a in exp.attempts:
        cause = a.cause
        rows.append(
            f'<tr class="attempt" data-attempt="{a.attempt}" data-channel="{esc(a.channel)}" '
            f'data-outcome="{esc(a.outcome)}">'
            f'<td class="num">{a.attempt}</td><td>{text(a.channel, 200)}</td>'
            f"<td>{esc(a.outcome)}</td><td>{esc(a.code or '')}</td>"
            f"<td>{category_pill(cause.category) if cause else ''}</td>"
            f"<td>{text(cause.summary) if cause else ''}</td>"
            f"<td>{position_links(cause.evidence, anchors) if cause else ''}</td>"
            f"<td>{position_link(a.moment, anchors) if a.moment is not None else '-'}</td>"
            f"<td>{position_link(a.failed_at, anchors) if a.failed_at is not None else '-'}</td>"
            "</tr>"
        )
    headers = ("#", "channel", "outcome", "code", "cause", "summary", "evidence", "moment", "ended")
    return (
        '<section id="attempts"><h2>Attempts</h2>'
        '<p class="muted">An attempt is judged at its moment: the world it met is the fold of '
        "every event below its <code>PaymentAttempted</code>.</p>"
        f"{table(headers, rows, numeric=(0,))}</section>"
    )


def _state(exp: Explanation, state: StateAtFailure | None, anchors: AbstractSet[int]) -> str:
    if state is None:
        return (
            '<section id="state"><h2>State at the attempt</h2>'
            '<p class="muted">no failed attempt: no state to show</p></section>'
        )
    judged = [a.attempt for a in exp.attempts if a.moment == state.position + 1]
    which = f"attempt {judged[0]}" if judged else "the attempt"
    parts = [
        '<section id="state"><h2>State at the attempt</h2>',
        f"<p>What {esc(which)} met: the fold of every event up to "
        f"{position_link(state.position, anchors)} (its moment is "
        f"{position_link(state.position + 1, anchors)}).</p>",
    ]
    ch = state.channel
    until = f", expected until {moment(ch.expected_until)}" if ch.expected_until else ""
    since = (
        f" since {position_link(ch.status_position, anchors)}"
        if ch.status_position is not None
        else " (no status event: up by default)"
    )
    parts.append(
        f'<p class="state-channel" data-status="{esc(ch.status)}"><b>Channel</b> '
        f"{text(ch.channel, 200)}: <b>{esc(ch.status)}</b>"
        f"{' (' + text(ch.reason) + ')' if ch.reason else ''}{esc(until)}{since}</p>"
    )
    pol = state.policy
    accepts = (
        "every channel (no rule for this scenario)"
        if pol.allowed_channels is None
        else ", ".join(pol.allowed_channels) or "no channel"
    )
    rule = (
        f" (rule set at {position_link(pol.rule_position, anchors)})"
        if pol.rule_position is not None
        else ""
    )
    parts.append(
        f'<p class="state-policy"><b>Policy</b> {text(pol.merchant, 200)} / '
        f"{text(pol.scenario, 200)} accepts {text(accepts, 500)}{rule}</p>"
    )
    account = state.account
    if account is None:
        parts.append('<p class="muted">the account had no event yet</p>')
    else:
        score = "no score recorded" if account.score is None else f"score {account.score}"
        parts.append(f"<p><b>Account</b> {text(account.account_id, 200)}: {esc(score)}</p>")
        rows = [
            f'<tr class="credit-line" data-product="{esc(product)}" '
            f'data-status="{esc(c.status)}"><td>{text(product, 200)}</td>'
            f"<td>{esc(c.status)}"
            + (
                f" since {position_link(c.status_position, anchors)}"
                if c.status_position is not None
                else ""
            )
            + f'</td><td class="num">{_plain(c.limit_minor)} '
            f"(set at {position_link(c.limit_position, anchors)})</td>"
            f'<td class="num">{_plain(c.used_minor)}</td>'
            f'<td class="num">{_plain(c.held_minor)}</td>'
            f'<td class="num">{_plain(c.available_minor)}</td>'
            f'<td class="num">{_plain(c.overdue_minor)}</td></tr>'
            for product, c in account.credit.items()
        ]
        if rows:
            headers = ("credit line", "status", "limit", "used", "held", "available", "overdue")
            parts.append(table(headers, rows, numeric=(2, 3, 4, 5, 6)))
        else:
            parts.append('<p class="muted">no credit line</p>')
    parts.append("</section>")
    return "".join(parts)


def _whatif(report: PaymentReport, anchors: AbstractSet[int]) -> str:
    parts = ['<section id="whatif"><h2>What if another channel had been used</h2>']
    if not report.whatif:
        parts.append(f'<p class="muted">{esc(report.whatif_note or "no what-if")}</p></section>')
        return "".join(parts)
    first = report.whatif[0]
    parts.append(
        f"<p>Attempt {first.attempt} ({text(first.original_channel, 200)}) replayed against the "
        f"same world (as of {position_link(first.position, anchors)}) with each other channel; "
        "the customer's own actions carry over.</p>"
    )
    summary = [
        f'<tr class="whatif-verdict" data-channel="{esc(w.channel)}" '
        f'data-would-pass="{str(w.would_pass).lower()}"><td>{esc(w.channel)}</td>'
        f"<td>{_verdict_words(w)}</td>"
        f"<td>{esc(', '.join(c.check for c in w.checks if c.status == 'failed') or '-')}</td></tr>"
        for w in report.whatif
    ]
    parts.append(table(("channel", "verdict", "failing checks"), summary))
    for w in report.whatif:
        rows = [
            f'<tr class="check" data-check="{esc(c.check)}" data-status="{esc(c.status)}">'
            f'<td>{esc(c.check)}</td><td class="{_CHECK_CLASS.get(c.status, "")}">'
            f"{esc(c.status.replace('_', ' '))}</td><td>{text(c.detail)}</td>"
            f"<td>{position_links(c.evidence, anchors)}</td></tr>"
            for c in w.checks
        ]
        parts.append(
            f'<div class="whatif" data-channel="{esc(w.channel)}">'
            f"<h3>{esc(w.channel)}: {_verdict_words(w)}</h3>"
            f"{table(('check', 'result', 'detail', 'evidence'), rows)}</div>"
        )
    parts.append("</section>")
    return "".join(parts)


def _verdict_words(w: WhatIf) -> str:
    if w.would_pass:
        return '<span class="pass">would have passed every check</span>'
    return '<span class="fail">would also have failed</span>'


def _marks(e: TimelineEvent) -> str:
    marks = []
    if e.evidence:
        marks.append('<b class="fail">evidence</b>')
    marks.extend(f"moment of attempt {n}" for n in e.moment_of)
    marks.extend(f"ended attempt {n}" for n in e.ended)
    return "; ".join(marks)


def _timeline(report: PaymentReport) -> str:
    exp = report.explanation
    rows = []
    for e in report.timeline:
        klass = " ".join(
            k
            for k, on in (
                ("timeline-row", True),
                ("evidence", e.evidence),
                ("moment", bool(e.moment_of)),
            )
            if on
        )
        rows.append(
            f'<tr id="pos-{e.position}" data-position="{e.position}" class="{klass}">'
            f'<td class="num">{e.position}</td><td class="nowrap">{esc(moment(e.occurred_at))}</td>'
            f"<td>{text(e.stream, 200)}</td><td>{esc(e.type)}</td><td>{text(e.summary)}</td>"
            f"<td>{_marks(e)}</td></tr>"
        )
    legend = (
        '<p class="legend muted"><span><span class="swatch" style="background:#d55e00"></span>'
        'evidence</span><span><span class="swatch" style="background:#2456a6"></span>an '
        'attempt\'s moment</span><span><span class="swatch" style="background:#b42318"></span>'
        'the event that ended a failed attempt</span><span><span class="swatch" '
        'style="background:#8a93a6"></span>other events</span></p>'
    )
    return (
        '<section id="timeline"><h2>Timeline</h2>'
        "<p>The events that bear on the payment (its account, the channels it tried, its "
        "merchant's policy, the payment itself), spaced in position order: the order the ledger "
        "judges by. Click an event to reach its row.</p>"
        f'{legend}<div class="scroll">{timeline_svg(report.timeline, exp.payment_id)}</div>'
        + table(
            ("position", "occurred (UTC)", "stream", "type", "what", "marks"),
            rows,
            numeric=(0,),
            cls="timeline-table",
        )
        + "</section>"
    )


def render_payment(report: PaymentReport) -> str:
    """The whole page."""
    exp = report.explanation
    anchors = frozenset(e.position for e in report.timeline)
    body = "\n".join(
        (
            _facts(exp, report.head),
            _verdict(exp, anchors),
            _timeline(report),
            _attempts(exp, anchors),
            _state(exp, exp.state_at_failure, anchors),
            _whatif(report, anchors),
        )
    )
    return document(
        title=f"Payment {exp.payment_id}: {exp.outcome}",
        subtitle=(
            f"{money(exp.amount_minor, exp.currency)} · {exp.merchant} / {exp.scenario} · "
            f"account {exp.account_id} · ledger up to position {report.head}"
        ),
        nav=(
            ("verdict", "Verdict"),
            ("timeline", "Timeline"),
            ("attempts", "Attempts"),
            ("state", "State"),
            ("whatif", "What if"),
        ),
        body=body,
    )
