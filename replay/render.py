"""Human output of the replay commands (rich panels and tables): one-line descriptions of
events, amounts in their currency, explanations, what-ifs, timelines, audits and statistics.

Colour appears only on a terminal (rich decides from the console). On a terminal, output fits
the terminal: tables and panels wrap their cells (folding a word longer than its column) and
never drop text. Anywhere else (a pipe, a file) there is no width, so no value is ever wrapped,
cut or split over two lines (:class:`~replay.terminal.OutputConsole`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, Final

import msgspec
from rich import box
from rich.cells import cell_len
from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from causes.wording import plural
from ledger.events import CreditLineOpened, Event, PaymentRequested
from ledger.money import format_money
from ledger.store import Record

from .documents import StatsDocument
from .explanation import Explanation, WhatIf
from .terminal import on_terminal

__all__ = [
    "CATEGORY_STYLE",
    "Currencies",
    "describe",
    "money",
    "plural",
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


# --- events --------------------------------------------------------------------------------

_IDS: Final = frozenset({"occurred_at", "payment_id", "account_id"})


def money(minor: int, currency: str = "") -> str:
    """``1234567`` -> ``12,345.67`` (integer arithmetic), with the currency if given."""
    return format_money(minor, currency)


class Currencies:
    """The currency of each payment and credit line, learnt from the records of a listing, so
    that amounts of events without a currency field (``PaymentSettled``, ``RepaymentMade``,
    ``CreditLimitChanged``...) still read ``1,200.00 CNY``."""

    def __init__(self) -> None:
        self.payments: dict[str, str] = {}
        self.lines: dict[tuple[str, str], str] = {}

    def learn(self, event: Event) -> None:
        if isinstance(event, PaymentRequested):
            self.payments[event.payment_id] = event.currency
        elif isinstance(event, CreditLineOpened):
            self.lines[(event.account_id, event.product)] = event.currency

    def of(self, event: Event) -> str:
        """The currency of ``event``'s amounts ("" when unknown)."""
        own = getattr(event, "currency", None)
        if isinstance(own, str):
            return own
        payment = getattr(event, "payment_id", None)
        if isinstance(payment, str):
            return self.payments.get(payment, "")
        account, product = getattr(event, "account_id", None), getattr(event, "product", None)
        if isinstance(account, str) and isinstance(product, str):
            return self.lines.get((account, product), "")
        return ""

    def source(self, event: Event) -> str | None:
        """The stream that would tell ``event``'s currency, when it has amounts and it is not
        known yet: its payment's stream or its account's."""
        if not any(f.endswith("_minor") for f in event.__struct_fields__) or self.of(event):
            return None
        payment = getattr(event, "payment_id", None)
        if isinstance(payment, str):
            return f"payment-{payment}"
        account = getattr(event, "account_id", None)
        return f"account-{account}" if isinstance(account, str) else None


def describe(event: Event, currency: str = "") -> str:
    """One line saying what the event recorded (amounts in ``currency`` when the event has
    none of its own); fields it leaves empty are not shown."""
    fields: dict[str, Any] = msgspec.to_builtins(event)
    fields.pop("type", None)
    currency = fields.pop("currency", None) or currency
    parts: list[str] = []
    if "old_status" in fields:
        parts.append(f"{fields['product']} {fields['old_status']} -> {fields['new_status']}")
    elif "old_limit_minor" in fields:
        parts.append(
            f"{fields['product']} limit {money(fields['old_limit_minor'], currency)} -> "
            f"{money(fields['new_limit_minor'], currency)}"
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
            if key in _IDS or key == "reason" or value is None:
                continue
            if key.endswith("_minor") and isinstance(value, int):
                key, value = key.removesuffix("_minor"), money(value, currency)
            parts.append(f"{key}={value}")
    if fields.get("reason"):
        parts.append(f"({fields['reason']})")
    return " ".join(str(p) for p in parts)


def _when(moment: datetime) -> str:
    """The whole moment (seconds, and microseconds when there are any): never cut."""
    shown = moment.strftime("%Y-%m-%d %H:%M:%S")
    return f"{shown}.{moment.microsecond:06d}" if moment.microsecond else shown


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
            ev.add_column(style="bold", overflow="fold")
            ev.add_column(overflow="fold")
            ev.add_column(overflow="fold")
            for p in root.evidence:
                rec = None if evidence is None else evidence.get(p)
                ev.add_row(
                    f"  #{p}",
                    "" if rec is None else rec.type,
                    "" if rec is None else describe(rec.event, exp.currency),
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
    attempts = Table(title=None, expand=False)  # columns fold: never cut
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
                    f"{product} {credit.status}, {money(credit.available_minor, exp.currency)} "
                    f"available of {money(credit.limit_minor, exp.currency)}"
                )
        parts.append(Text("; ".join(bits), style="dim"))
    style = "red" if exp.outcome == "failed" else "green" if exp.outcome == "succeeded" else ""
    title: str | None = f"payment {exp.payment_id}"
    if title is not None and cell_len(title) + 4 > console.width:
        title = None  # a panel would cut it; the payment id heads the panel anyway
    terminal = on_terminal(console)
    console.print(Panel(Group(*parts), title=title, border_style=style, expand=terminal))


def render_failed_table(console: Console, explanations: Iterable[Explanation]) -> int:
    """A compact table of failed payments; returns how many rows it printed."""
    table = Table(title="failed payments", box=box.SIMPLE_HEAD, expand=on_terminal(console))
    for name in ("payment", "channel", "category", "evidence"):
        table.add_column(name, overflow="fold")
    table.add_column("scenario, code: summary", overflow="fold", ratio=1)
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
        table.add_column(name, overflow="fold")
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
    console: Console,
    records: Iterable[Record],
    evidence: set[int],
    title: str,
    currencies: Currencies | None = None,
) -> int:
    """The records in position order, the evidence marked (``currencies``: what is known of
    their amounts' currency beyond the records themselves); returns how many were printed."""
    table = Table(title=title, box=box.SIMPLE_HEAD, expand=on_terminal(console))
    table.add_column("", overflow="fold")
    table.add_column("pos", justify="right", overflow="fold")
    table.add_column("occurred (UTC)", overflow="fold")
    table.add_column("type", overflow="fold")
    table.add_column("stream: detail", overflow="fold", ratio=1)
    currencies = currencies or Currencies()
    count = 0
    for rec in records:
        currencies.learn(rec.event)
        mark = rec.position in evidence
        style = "bold" if mark else ""
        detail = Text(rec.stream + ": ", style="dim")
        detail.append(describe(rec.event, currencies.of(rec.event)))
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


def render_audit(
    console: Console, records: Iterable[Record], currencies: Currencies | None = None
) -> int:
    """The records in position order (``currencies``: what is known of their amounts' currency
    beyond the records themselves); returns how many were printed."""
    currencies = currencies or Currencies()
    table = Table(title="audit", box=box.SIMPLE_HEAD, expand=on_terminal(console))
    table.add_column("pos", justify="right", overflow="fold")
    table.add_column("occurred (UTC)", overflow="fold")
    table.add_column("type", overflow="fold")
    table.add_column("stream: detail [correlation]", overflow="fold", ratio=1)
    count = 0
    for rec in records:
        currencies.learn(rec.event)
        detail = Text(rec.stream + ": ", style="dim")
        detail.append(describe(rec.event, currencies.of(rec.event)))
        if rec.correlation_id:
            detail.append(f" [{rec.correlation_id}]", style="dim")
        table.add_row(str(rec.position), _when(rec.event.occurred_at), rec.type, detail)
        count += 1
    console.print(table)
    console.print(plural(count, "event"))
    return count


def render_stats(console: Console, stats: StatsDocument) -> None:
    summary = Table(title="payments")
    for name in ("payments", "succeeded", "failed", "pending"):
        summary.add_column(name, justify="right", overflow="fold")
    summary.add_row(
        *(str(n) for n in (stats.payments, stats.succeeded, stats.failed, stats.pending))
    )
    console.print(summary)
    for key, title, counts in (
        ("by_category", "failed by root cause", stats.by_category),
        ("by_channel", "failed by channel (last failed attempt)", stats.by_channel),
        ("by_scenario", "failed by scenario", stats.by_scenario),
    ):
        table = Table(title=title)
        table.add_column(key.removeprefix("by_"), overflow="fold")
        table.add_column("failed", justify="right", overflow="fold")
        for name, count in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
            table.add_row(_category(name) if key == "by_category" else name, str(count))
        console.print(table)
