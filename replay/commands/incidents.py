"""``payledger --db P incidents [--since TS] [--until TS] [--json]``: failed payments grouped
into incidents by their shared root cause (:mod:`replay.incidents`), ranked by payments
failed. ``--json`` prints JSON Lines, one incident a line."""

from __future__ import annotations

import argparse
from typing import Any

from rich.table import Table

from causes.wording import money, plural

from ..incidents import Incident, incidents
from ..render import CATEGORY_STYLE
from ..terminal import parse_timestamp, progress_bar
from ._common import add_command, console, err_console, open_db, print_json


def register(sub: Any) -> None:
    parser = add_command(
        sub,
        "incidents",
        "failed payments grouped into incidents by shared root cause, ranked by payments failed",
        run,
    )
    parser.add_argument(
        "--since", metavar="TS", help="payments that failed at or after TS (RFC 3339, with zone)"
    )
    parser.add_argument(
        "--until", metavar="TS", help="payments that failed at or before TS (RFC 3339, with zone)"
    )


def _amounts(incident: Incident) -> str:
    return ", ".join(money(v, c) for c, v in incident.amount_failed_minor.items())


def render_incidents(found: list[Incident]) -> None:
    """The incidents as a table (one row each), ranked as given."""
    table = Table(title="incidents, by payments failed")
    for name, justify in (
        ("#", "right"),
        ("category", "left"),
        ("failed", "right"),
        ("saved", "right"),
        ("amount failed", "right"),
        ("first failure", "left"),
        ("last failure", "left"),
        ("evidence", "left"),
        ("cause", "left"),
    ):
        table.add_column(name, justify=justify, overflow="fold")  # type: ignore[arg-type]
    for n, i in enumerate(found, start=1):
        style = CATEGORY_STYLE.get(i.category, "white")
        where = (
            ", ".join(str(p) for p in i.evidence)
            if i.evidence
            else f"{i.channel or 'no attempt'} / {i.code or 'no code'}"
        )
        table.add_row(
            str(n),
            f"[{style}]{i.category}[/]",
            str(i.payments_failed),
            str(i.saved_by_failover),
            _amounts(i),
            i.first_failure_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            i.last_failure_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            where,
            i.summary,
        )
    console.print(table)
    failed = sum(i.payments_failed for i in found)
    console.print(
        f"{plural(failed, 'failed payment')} in {plural(len(found), 'incident')}; "
        f"{plural(sum(i.saved_by_failover for i in found), 'payment')} saved by failover"
    )


async def run(args: argparse.Namespace) -> int:
    since = None if args.since is None else parse_timestamp(args.since, "--since")
    until = None if args.until is None else parse_timestamp(args.until, "--until")
    async with open_db(args) as store:
        head = await store.head()
        with progress_bar(err_console, head, "grouping failed payments") as tick:
            found = await incidents(store, since=since, until=until, progress=tick)
    if args.json:
        for incident in found:
            print_json(incident)
    else:
        render_incidents(found)
    return 0
