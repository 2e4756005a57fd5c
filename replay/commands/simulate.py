"""``payledger simulate --db P --payments N [--seed S] [--no-failover] [--truth FILE]``: drive
the router with fake processors over a simulated population and record everything in the store
(:mod:`gateway.simulator`). ``--truth`` writes the injected cause of each failed payment as JSON
Lines ``{"payment_id": ..., "category": ...}``; ``--json`` prints the run's summary as one JSON
document.

The truth file goes through :mod:`replay.output`: it is checked (never the store, another
payledger store, a directory or a missing directory) and opened before the store is touched, and
appears only once complete.
"""

from __future__ import annotations

import argparse
from contextlib import ExitStack
from typing import Any

import msgspec
from rich.markup import escape

from gateway.simulator import SimulationConfig, simulate
from ledger.errors import StoreError

from ..documents import SimulationDocument
from ..output import check_output, open_output
from ..render import plural
from ._common import add_command, at_least, console, open_db, print_json, require_db


def register(sub: Any) -> None:
    parser = add_command(
        sub,
        "simulate",
        "drive the router over a simulated population of car-loan payments",
        run,
    )
    parser.add_argument(
        "--payments",
        type=at_least(1),
        required=True,
        metavar="N",
        help="how many payments to simulate (at least 1)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        metavar="S",
        help="the random seed: the same seed gives the same population and world (default 0)",
    )
    parser.add_argument(
        "--no-failover",
        action="store_true",
        help="end every payment at its first decline (same population and world)",
    )
    parser.add_argument(
        "--truth",
        metavar="FILE",
        help="write the injected cause of each failed payment as JSON Lines",
    )
    parser.add_argument(
        "--concurrency",
        type=at_least(1),
        default=SimulationConfig(payments=0).concurrency,
        metavar="K",
        help="payments in flight (default %(default)s)",
    )


async def run(args: argparse.Namespace) -> int:
    config = SimulationConfig(
        payments=args.payments,
        seed=args.seed,
        failover=not args.no_failover,
        concurrency=args.concurrency,
    )
    db = require_db(args)
    truth = None if args.truth is None else check_output(args.truth, option="--truth", db=db)
    with ExitStack() as files:
        # Open the truth file first: a path that cannot be written fails before the store fills.
        out = None if truth is None else files.enter_context(open_output(truth))
        async with open_db(args, readonly=False) as store:
            head = await store.head()
            if head != 0:  # (named without the URL: a PostgreSQL URL may hold a password)
                raise StoreError(
                    f"simulate needs an empty store (this one has {plural(head, 'event')})"
                )
            report = await simulate(store, config)
        if out is not None:
            encoder = msgspec.json.Encoder()
            for line in report.truth:
                out.write(encoder.encode(line) + b"\n")
    if args.json:
        print_json(
            SimulationDocument(
                payments=report.payments,
                succeeded=report.succeeded,
                failed=report.failed,
                pending=report.payments - report.succeeded - report.failed,
                by_category=dict(sorted(report.failed_by_category.items())),
                saved_by_failover=report.failovers,
                events=report.events,
                seconds=round(report.seconds, 3),
                events_per_second=round(report.events_per_second),
                seed=args.seed,
                failover=not args.no_failover,
            )
        )
        return 0
    console.print(
        f"simulated {plural(report.payments, 'payment')} (seed {args.seed}, "
        f"failover {'off' if args.no_failover else 'on'}): "
        f"[green]{report.succeeded} succeeded[/green], [red]{report.failed} failed[/red], "
        f"{report.failovers} of them after a failover"
    )
    for category, count in sorted(report.failed_by_category.items()):
        console.print(f"  {escape(category):<15} {count}")
    console.print(
        f"{plural(report.events, 'event')} in {report.seconds:.2f} s "
        f"({report.events_per_second:,.0f} events/s)"
    )
    if args.truth is not None:
        console.print(
            f"truth: {plural(len(report.truth), 'failed payment')} written to {escape(args.truth)}"
        )
    return 0
