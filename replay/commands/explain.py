"""``payledger explain PAYMENT_ID`` and ``payledger explain --failed [--since T]``: the incident
explanation of one payment (CONTRACT section 5), or of every failed payment (JSON Lines with
``--json``, a compact table otherwise)."""

from __future__ import annotations

import argparse
from typing import Any

from ledger.errors import LedgerError
from ledger.store import EventStore, Record

from ..batch import explain_failed
from ..engine import explain
from ..render import parse_timestamp, progress_bar, render_explanation, render_failed_table
from ._common import add_command, console, err_console, open_db, print_json


def register(sub: Any) -> None:
    parser = add_command(
        sub, "explain", "why a payment failed: root cause, evidence, remedy (CONTRACT 5)", run
    )
    parser.add_argument("payment_id", metavar="PAYMENT_ID", nargs="?")
    parser.add_argument(
        "--failed", action="store_true", help="explain every failed payment (one pass)"
    )
    parser.add_argument(
        "--since",
        metavar="TIMESTAMP",
        help="with --failed: only payments requested at or after this moment (RFC 3339)",
    )


async def evidence_records(store: EventStore, positions: set[int]) -> dict[int, Record]:
    """The records at ``positions`` (a few indexed reads)."""
    found: dict[int, Record] = {}
    for p in sorted(positions):
        async for rec in store.read_all(from_position=p, to_position=p, page_size=1):
            found[rec.position] = rec
    return found


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
            render_explanation(console, exp, await evidence_records(store, positions))
            return 0
        head = await store.head()
        with progress_bar(err_console, head, "explaining failed payments") as tick:
            if args.json:
                async for exp in explain_failed(store, since=since, progress=tick):
                    print_json(exp)
                return 0
            found = [exp async for exp in explain_failed(store, since=since, progress=tick)]
        rows = render_failed_table(console, found)
        console.print(f"{rows} failed payment{'s' if rows != 1 else ''}")
    return 0
