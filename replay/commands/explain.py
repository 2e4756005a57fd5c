"""``payledger explain PAYMENT_ID`` and ``payledger explain --failed [--since T]``: the incident
explanation of one payment (CONTRACT section 5), or of every failed payment (JSON Lines with
``--json``, a compact table otherwise)."""

from __future__ import annotations

import argparse
from typing import Any

from ledger.errors import LedgerError

from ..batch import explain_failed
from ..engine import explain
from ..render import (
    parse_timestamp,
    plural,
    progress_bar,
    render_explanation,
    render_failed_table,
)
from ..timeline import records_at
from ._common import add_command, console, err_console, non_empty, open_db, print_json


def register(sub: Any) -> None:
    parser = add_command(
        sub, "explain", "why a payment failed: root cause, evidence, remedy, each attempt", run
    )
    parser.add_argument(
        "payment_id",
        metavar="PAYMENT_ID",
        nargs="?",
        type=non_empty,
        help="the payment to explain (or --failed for every failed payment)",
    )
    parser.add_argument(
        "--failed", action="store_true", help="explain every failed payment (one pass)"
    )
    parser.add_argument(
        "--since",
        metavar="TIMESTAMP",
        help="with --failed: only payments requested at or after this moment (RFC 3339 with "
        "a zone, e.g. 2026-03-01T09:00:00Z, or a date: its midnight UTC)",
    )


async def run(args: argparse.Namespace) -> int:
    if args.failed == (args.payment_id is not None):
        raise LedgerError("explain takes either PAYMENT_ID or --failed")
    if args.since is not None and not args.failed:
        raise LedgerError("--since goes with --failed")
    since = None if args.since is None else parse_timestamp(args.since, "--since")
    async with open_db(args) as store:
        if not args.failed:
            exp = await explain(store, args.payment_id)
            if args.json:
                print_json(exp)
                return 0
            positions: set[int] = set()
            if exp.root_cause is not None:
                positions.update(exp.root_cause.evidence)
            render_explanation(console, exp, await records_at(store, positions))
            return 0
        head = await store.head()
        with progress_bar(err_console, head, "explaining failed payments") as tick:
            if args.json:
                async for exp in explain_failed(store, since=since, progress=tick):
                    print_json(exp)
                return 0
            found = [exp async for exp in explain_failed(store, since=since, progress=tick)]
        rows = render_failed_table(console, found)
        console.print(plural(rows, "failed payment"))
    return 0
