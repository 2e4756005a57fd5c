"""Human output of the replay commands (rich panels and tables) and the small pieces of input
they share: timestamps given on the command line, a progress bar for long passes, one-line
descriptions of events, JSON documents of records.

Colour and the progress bar appear only on a terminal (rich decides from the console).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, Final

import msgspec
from rich import box
from rich.console import Console, Group
from rich.panel import Panel
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from ledger.errors import LedgerError
from ledger.events import Event
from ledger.store import Record

from .explanation import Explanation, WhatIf

__all__ = [
    "CATEGORY_STYLE",
    "describe",
    "money",
    "parse_timestamp",
    "progress_bar",
    "record_doc",
    "render_audit",
    "render_explanation",
    "render_failed_table",
    "render_stats",
    "render_timeline",
    "render_whatif",
]

CATEGORY_STYLE: Final[dict[str, str]] = {
    "channel_policy": "magenta",
    "system": "yellow",
    "credit": "red",
    "user_action": "cyan",
    "unknown": "white",
}
_OUTCOME_STYLE: Final[dict[str, str]] = {
    "succeeded": "green",
    "failed": "red",
    "pending": "yellow",
    "declined": "red",
    "abandoned": "red",
    "settled": "green",
    "authorized": "green",
}


# --- input ---------------------------------------------------------------------------------


def parse_timestamp(text: str, option: str) -> datetime:
    """An RFC 3339 timestamp (a date alone means its midnight UTC); naive means UTC.

    Raises :class:`~ledger.errors.LedgerError` (exit 2) naming the option for anything else.
    """
    value = text.strip()
    try:
        if len(value) == 10:
            moment = datetime.fromisoformat(value).replace(tzinfo=UTC)
        else:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError as e:
        shown = text if len(text) <= 60 else text[:57] + "..."
        raise LedgerError(
            f"{option}: {shown!r} is not an RFC 3339 timestamp (e.g. 2026-03-01T09:00:00Z)"
        ) from e
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


@contextmanager
def progress_bar(console: Console, total: int, description: str) -> Iterator[Callable[[int], None]]:
    """A transient progress bar on ``console`` (stderr) when it is a terminal; yields a
    callback taking the position reached. Off a terminal the callback does nothing."""
    if not console.is_terminal or total <= 0:
        yield lambda position: None
        return
    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task(description, total=total)
        yield lambda position: progress.update(task, completed=position)


# --- events --------------------------------------------------------------------------------

_IDS: Final = frozenset({"occurred_at", "payment_id", "account_id"})


def money(minor: int, currency: str = "") -> str:
    """``1234567`` -> ``12,345.67`` (integer arithmetic), with the currency if given."""
    sign = "-" if minor < 0 else ""
    major, cents = divmod(abs(minor), 100)
    text = f"{sign}{major:,}.{cents:02d}"
    return f"{text} {currency}" if currency else text


def describe(event: Event) -> str:
    """One line saying what the event recorded."""
    fields: dict[str, Any] = msgspec.to_builtins(event)
    fields.pop("type", None)
    parts: list[str] = []
    if "old_status" in fields:
        parts.append(f"{fields['product']} {fields['old_status']} -> {fields['new_status']}")
    elif "old_limit_minor" in fields:
        parts.append(
            f"{fields['product']} limit {money(fields['old_limit_minor'])} -> "
            f"{money(fields['new_limit_minor'])}"
        )
    elif "old_score" in fields:
        parts.append(f"score {fields['old_score']} -> {fields['new_score']}")
    elif "allowed_channels" in fields:
        allowed = ", ".join(fields["allowed_channels"]) or "none"
        parts.append(f"{fields['scenario']}: only {allowed}")
    elif "candidates" in fields:
        eligible = [c["channel"] for c in fields["candidates"] if c["eligible"]]
        parts.append(
            f"attempt {fields['attempt']} -> {fields['channel']} ({fields['rule']}; "
            f"eligible: {', '.join(eligible) or 'none'})"
        )
    else:
        for key, value in fields.items():
            if key in _IDS or key == "reason":
                continue
            if key.endswith("_minor") and isinstance(value, int):
                key, value = key.removesuffix("_minor"), money(value)
            parts.append(f"{key}={value}")
    if fields.get("reason"):
        parts.append(f"({fields['reason']})")
    return " ".join(str(p) for p in parts)


def record_doc(record: Record, *, evidence: bool | None = None) -> dict[str, Any]:
    """A record as a JSON document (the export's shape, plus ``evidence`` if given)."""
    data: dict[str, Any] = msgspec.structs.asdict(record.event)
    occurred = data.pop("occurred_at")
    doc: dict[str, Any] = {
        "position": record.position,
        "stream": record.stream,
        "version": record.version,
        "type": record.type,
        "occurred_at": occurred,
        "data": data,
        "event_id": record.event_id,
        "correlation_id": record.correlation_id,
    }
    if evidence is not None:
        doc["evidence"] = evidence
    return doc


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M")


def _category(category: str) -> Text:
    return Text(category, style=f"bold {CATEGORY_STYLE.get(category, 'white')}")


def _outcome(outcome: str) -> Text:
    return Text(outcome, style=_OUTCOME_STYLE.get(outcome, ""))


def _positions(positions: Sequence[int]) -> str:
    return ", ".join(str(p) for p in positions) if positions else "-"


# --- explanation ---------------------------------------------------------------------------


def render_explanation(
    console: Console, exp: Explanation, evidence: dict[int, Record] | None = None
) -> None:
    """A panel: the verdict, its evidence (the events themselves when given), the remedy,
    the contributing causes, each attempt and the state the failure met."""
    parts: list[Any] = []
    head = Text()
    head.append(f"{exp.payment_id}  ", style="bold")
    head.append(
        f"{money(exp.amount_minor, exp.currency)}  {exp.merchant} / {exp.scenario}  "
        f"account {exp.account_id}  "
    )
    head.append_text(_outcome(exp.outcome))
    parts.append(head)
    root = exp.root_cause
    if root is not None:
        verdict = Text("root cause: ")
        verdict.append_text(_category(root.category))
        parts.append(verdict)
        parts.append(Text(root.summary))
        if root.evidence:
            ev = Table(box=None, show_header=False, pad_edge=False)
            ev.add_column(style="bold")
            ev.add_column()
            ev.add_column()
            for p in root.evidence:
                rec = None if evidence is None else evidence.get(p)
                ev.add_row(
                    f"  #{p}",
                    "" if rec is None else rec.type,
                    "" if rec is None else describe(rec.event),
                )
            parts.append(Text("evidence:"))
            parts.append(ev)
        else:
            parts.append(Text("evidence: none in the log", style="dim"))
        remedy = Text("remedy: ", style="bold green")
        remedy.append(root.remedy, style="green")
        parts.append(remedy)
        if root.contributing:
            parts.append(Text("also blocking:"))
            for c in root.contributing:
                line = Text("  ")
                line.append_text(_category(c.category))
                line.append(f"  [{_positions(c.evidence)}]  {c.summary}")
                parts.append(line)
    elif exp.outcome == "succeeded" and any(a.cause for a in exp.attempts):
        parts.append(Text("succeeded after a failed attempt (failover)", style="green"))
    attempts = Table(title=None, expand=False)
    for name in ("#", "channel", "outcome", "code", "cause", "evidence"):
        attempts.add_column(name, overflow="fold")
    for a in exp.attempts:
        attempts.add_row(
            str(a.attempt),
            a.channel,
            _outcome(a.outcome),
            a.code or "",
            _category(a.cause.category) if a.cause else Text(""),
            _positions(a.cause.evidence) if a.cause else "",
        )
    if exp.attempts:
        parts.append(attempts)
    failed = [a for a in exp.attempts if a.cause is not None]
    earlier = failed[:-1] if root is not None else failed
    for a in earlier:
        assert a.cause is not None
        line = Text(f"attempt {a.attempt} ({a.channel}): ")
        line.append_text(_category(a.cause.category))
        line.append(f" - {a.cause.summary}")
        parts.append(line)
    state = exp.state_at_failure
    if state is not None:
        ch = state.channel
        bits = [f"as of position {state.position}: {ch.channel} {ch.status}"]
        pol = state.policy
        bits.append(
            f"{pol.merchant}/{pol.scenario} accepts "
            + ("every channel" if pol.allowed_channels is None else ", ".join(pol.allowed_channels))
        )
        if state.account is not None:
            for product, credit in state.account.credit.items():
                bits.append(
                    f"{product} {credit.status}, {money(credit.available_minor)} available of "
                    f"{money(credit.limit_minor)}"
                )
        parts.append(Text("; ".join(bits), style="dim"))
    style = "red" if exp.outcome == "failed" else "green" if exp.outcome == "succeeded" else ""
    console.print(Panel(Group(*parts), title=f"payment {exp.payment_id}", border_style=style))


def render_failed_table(console: Console, explanations: Iterable[Explanation]) -> int:
    """A compact table of failed payments; returns how many rows it printed."""
    table = Table(title="failed payments", box=box.SIMPLE_HEAD)
    table.add_column("payment", no_wrap=True)
    table.add_column("channel", overflow="fold")
    table.add_column("category", no_wrap=True)
    table.add_column("evidence", overflow="fold", max_width=16)
    table.add_column("scenario, code: summary", overflow="fold", ratio=1, min_width=24)
    rows = 0
    for exp in explanations:
        failed = [a for a in exp.attempts if a.cause is not None]
        last = failed[-1] if failed else None
        root = exp.root_cause
        code = "" if last is None or last.code is None else f", {last.code}"
        table.add_row(
            exp.payment_id,
            "" if last is None else last.channel,
            _category(root.category) if root else Text(""),
            _positions(root.evidence) if root else "",
            f"{exp.scenario}{code}: {root.summary if root else ''}",
        )
        rows += 1
    console.print(table)
    return rows


# --- what if -------------------------------------------------------------------------------


def render_whatif(console: Console, w: WhatIf) -> None:
    table = Table(
        title=f"{w.payment_id} attempt {w.attempt}: {w.original_channel} -> {w.channel} "
        f"(state as of position {w.position})"
    )
    for name in ("check", "result", "detail", "evidence"):
        table.add_column(name)
    styles = {"passed": "green", "failed": "red", "not_applicable": "dim"}
    for c in w.checks:
        table.add_row(
            c.check, Text(c.status, style=styles[c.status]), c.detail, _positions(c.evidence)
        )
    console.print(table)
    if w.original_cause is not None:
        console.print(
            Text.assemble(
                "original failure: ",
                _category(w.original_cause.category),
                f" - {w.original_cause.summary}",
            )
        )
    verdict = (
        Text(f"{w.channel} would have passed every check", style="bold green")
        if w.would_pass
        else Text(f"{w.channel} would also have failed", style="bold red")
    )
    console.print(verdict)


# --- listings ------------------------------------------------------------------------------


def render_timeline(
    console: Console, records: Iterable[Record], evidence: set[int], title: str
) -> int:
    """The records in position order, the evidence marked; returns how many were printed."""
    table = Table(title=title, box=box.SIMPLE_HEAD)
    table.add_column("", no_wrap=True, min_width=1)
    table.add_column("pos", justify="right", no_wrap=True)
    table.add_column("occurred (UTC)", no_wrap=True)
    table.add_column("type", no_wrap=True)
    table.add_column("stream: detail", overflow="fold", ratio=1, min_width=24)
    count = 0
    for rec in records:
        mark = rec.position in evidence
        style = "bold" if mark else ""
        detail = Text(rec.stream + ": ", style="dim")
        detail.append(describe(rec.event))
        table.add_row(
            Text("*" if mark else "", style="bold red"),
            str(rec.position),
            _when(rec.event.occurred_at),
            rec.type,
            detail,
            style=style,
        )
        count += 1
    console.print(table)
    if evidence:
        console.print(Text("* evidence of the explanation", style="dim"))
    return count


def render_audit(console: Console, records: Iterable[Record]) -> int:
    table = Table(title="audit", box=box.SIMPLE_HEAD)
    table.add_column("pos", justify="right", no_wrap=True)
    table.add_column("occurred (UTC)", no_wrap=True)
    table.add_column("type", no_wrap=True)
    table.add_column("stream: detail [correlation]", overflow="fold", ratio=1, min_width=24)
    count = 0
    for rec in records:
        detail = Text(rec.stream + ": ", style="dim")
        detail.append(describe(rec.event))
        if rec.correlation_id:
            detail.append(f" [{rec.correlation_id}]", style="dim")
        table.add_row(str(rec.position), _when(rec.event.occurred_at), rec.type, detail)
        count += 1
    console.print(table)
    console.print(f"{count} event{'s' if count != 1 else ''}")
    return count


def render_stats(console: Console, stats: dict[str, Any]) -> None:
    summary = Table(title="payments")
    for name in ("payments", "succeeded", "failed", "pending"):
        summary.add_column(name, justify="right")
    summary.add_row(*(str(stats[k]) for k in ("payments", "succeeded", "failed", "pending")))
    console.print(summary)
    for key, title in (
        ("by_category", "failed by root cause"),
        ("by_channel", "failed by channel (last failed attempt)"),
        ("by_scenario", "failed by scenario"),
    ):
        table = Table(title=title)
        table.add_column(key.removeprefix("by_"))
        table.add_column("failed", justify="right")
        for name, count in sorted(stats[key].items(), key=lambda kv: (-kv[1], kv[0])):
            table.add_row(_category(name) if key == "by_category" else name, str(count))
        console.print(table)
