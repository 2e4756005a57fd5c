"""``payledger --db P report [--payment ID] [--since TS] [--until TS] -o FILE``: one
self-contained HTML file (inline CSS and SVG, no script, nothing fetched from a network).

With ``--payment``: its verdict, attempts, the state the explained attempt met, the what-if of
every other channel and its timeline with the evidence marked. Otherwise the fleet view of the
period: failures over time by category, incidents, where failures concentrate, failover
savings and early warnings. ``-o -`` writes to standard output; a file is written atomically and
never over a store. ``--json`` writes the report's data instead of the page.
"""

from __future__ import annotations

import argparse
from typing import Any

import msgspec

from ledger.errors import LedgerError

from ..report import (
    FleetReport,
    PaymentReport,
    fleet_report,
    payment_report,
    render_fleet,
    render_payment,
    write_output,
)
from ..report.output import check_target
from ..terminal import parse_timestamp, progress_bar
from ._common import add_command, err_console, open_db


def register(sub: Any) -> None:
    parser = add_command(
        sub,
        "report",
        "one self-contained HTML file: a payment's timeline and evidence, or a period's failures",
        run,
    )
    parser.add_argument("--payment", metavar="ID", help="report on this payment")
    parser.add_argument(
        "--since", metavar="TS", help="the period starts at TS (RFC 3339, with zone)"
    )
    parser.add_argument("--until", metavar="TS", help="the period ends at TS (inclusive)")
    parser.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        required=True,
        help="the HTML file to write ('-': standard output)",
    )


async def run(args: argparse.Namespace) -> int:
    if args.payment is not None and (args.since is not None or args.until is not None):
        raise LedgerError("--since and --until go with the period report, not --payment")
    since = None if args.since is None else parse_timestamp(args.since, "--since")
    until = None if args.until is None else parse_timestamp(args.until, "--until")
    if since is not None and until is not None and since > until:
        raise LedgerError("--since is after --until")
    check_target(args.output, args.db)
    report: PaymentReport | FleetReport
    async with open_db(args) as store:
        if args.payment is not None:
            report = await payment_report(store, args.payment)
        else:
            head = await store.head()
            with progress_bar(err_console, head, "explaining payments") as tick:
                report = await fleet_report(store, since=since, until=until, progress=tick)
    if args.json:
        content = msgspec.json.encode(report) + b"\n"
    elif isinstance(report, PaymentReport):
        content = render_payment(report).encode("utf-8", errors="replace")
    else:
        content = render_fleet(report).encode("utf-8", errors="replace")
    write_output(args.output, content, args.db)
    if args.output != "-":
        err_console.print(f"report written to {args.output} ({len(content):,} bytes)")
    return 0
