"""``payledger simulate --db P --payments N [--seed S] [--no-failover] [--truth FILE]``: drive
the router with fake processors over a simulated population and record everything in the store
(:mod:`gateway.simulator`). ``--truth`` writes the injected cause of each failed payment as JSON
Lines ``{"payment_id": ..., "category": ...}``; ``--json`` prints the run's summary as one JSON
document.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import msgspec

from gateway.simulator import SimulationConfig, simulate
from ledger.errors import LedgerError, StoreError

from ._common import add_command, console, open_db, print_json


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError("must not be negative")
    return value


def register(sub: Any) -> None:
    parser = add_command(
        sub,
        "simulate",
        "drive the router over a simulated population of car-loan payments",
        run,
    )
    parser.add_argument("--payments", type=_count, required=True, metavar="N")
    parser.add_argument("--seed", type=int, default=0, metavar="S")
    parser.add_argument(
        "--no-failover",
        action="store_true",
        help="end every payment at its first decline (same population and world)",
    )
    parser.add_argument(
        "--truth",
        type=Path,
        metavar="FILE",
        help="write the injected cause of each failed payment as JSON Lines",
    )
    parser.add_argument(
        "--concurrency",
        type=_count,
        default=SimulationConfig(payments=0).concurrency,
        metavar="K",
        help="payments in flight (default %(default)s)",
    )


async def run(args: argparse.Namespace) -> int:
    if args.concurrency < 1:
        raise LedgerError("--concurrency must be at least 1")
    config = SimulationConfig(
        payments=args.payments,
        seed=args.seed,
        failover=not args.no_failover,
        concurrency=args.concurrency,
    )
    async with open_db(args, readonly=False) as store:
        if await store.head() != 0:
            raise StoreError(f"{args.db}: simulate needs an empty store (this one has events)")
        report = await simulate(store, config)
    if args.truth is not None:
        encoder = msgspec.json.Encoder()
        try:
            with args.truth.open("wb") as out:
                for truth in report.truth:
                    out.write(encoder.encode(truth) + b"\n")
        except OSError as e:
            raise StoreError(f"{args.truth}: cannot write the truth file ({e})") from e
    if args.json:
        print_json(
            {
                "payments": report.payments,
                "succeeded": report.succeeded,
                "failed": report.failed,
                "failed_by_category": dict(sorted(report.failed_by_category.items())),
                "failovers": report.failovers,
                "events": report.events,
                "seconds": round(report.seconds, 3),
                "events_per_second": round(report.events_per_second),
                "seed": args.seed,
                "failover": not args.no_failover,
            }
        )
        return 0
    console.print(
        f"simulated {report.payments} payments (seed {args.seed}, "
        f"failover {'off' if args.no_failover else 'on'}): "
        f"[green]{report.succeeded} succeeded[/green], [red]{report.failed} failed[/red], "
        f"{report.failovers} of them after a failover"
    )
    for category, count in sorted(report.failed_by_category.items()):
        console.print(f"  {category:<15} {count}")
    console.print(
        f"{report.events} events in {report.seconds:.2f} s "
        f"({report.events_per_second:,.0f} events/s)"
    )
    if args.truth is not None:
        console.print(f"truth: {len(report.truth)} failed payments written to {args.truth}")
    return 0
