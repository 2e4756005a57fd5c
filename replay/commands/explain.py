"""``payledger explain PAYMENT_ID`` and ``payledger explain --failed [--since T]``: the incident
explanation of one payment (CONTRACT section 5), or of every failed payment (JSON Lines with
``--json``, a compact table otherwise).

``explain ID --json --proofs [--checkpoint FILE]`` adds the inclusion proof of every evidence
position and the checkpoint they check against (:mod:`replay.proven`): the signed note given,
and proofs in the tree of its size; or, without one, an unsigned checkpoint of the whole log."""

from __future__ import annotations

import argparse
from typing import Any

from ledger.errors import LedgerError
from ledger.proofs import ProofError

from ..batch import explain_failed
from ..engine import explain
from ..proven import prove_explanation
from ..render import plural, render_explanation, render_failed_table
from ..terminal import parse_timestamp, progress_bar
from ..timeline import records_at
from ._common import add_command, console, err_console, non_empty, open_db, print_json
from ._vlog import finding, read_file


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
    parser.add_argument(
        "--proofs",
        action="store_true",
        help="with PAYMENT_ID and --json: add the inclusion proof of every evidence position "
        "in the log's Merkle tree, and the checkpoint to check them against",
    )
    parser.add_argument(
        "--checkpoint",
        metavar="FILE",
        help="with --proofs: a signed checkpoint note; the proofs are in the tree of its size, "
        "so they check against its signed root, and the note is embedded",
    )


async def run(args: argparse.Namespace) -> int:
    if args.failed == (args.payment_id is not None):
        raise LedgerError("explain takes either PAYMENT_ID or --failed")
    if args.since is not None and not args.failed:
        raise LedgerError("--since goes with --failed")
    if args.proofs and (args.failed or not args.json):
        raise LedgerError("--proofs goes with PAYMENT_ID and --json")
    if args.checkpoint is not None and not args.proofs:
        raise LedgerError("--checkpoint goes with --proofs")
    note = None if args.checkpoint is None else read_file(args.checkpoint, "--checkpoint")
    since = None if args.since is None else parse_timestamp(args.since, "--since")
    async with open_db(args) as store:
        if not args.failed:
            exp = await explain(store, args.payment_id)
            if args.proofs:
                try:
                    proven = await prove_explanation(store, exp, note=note)
                except ProofError as e:
                    return finding(f"checkpoint {args.checkpoint}: {e}")
                print_json(proven)
                return 0
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
