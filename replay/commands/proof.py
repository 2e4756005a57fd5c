"""``payledger --db P proof POSITION [--size N]`` and ``proof --consistency OLD [--size N]``:
the inclusion proof of one event, or the consistency proof between two tree sizes, in the
RFC 9162 tree of the log (CONTRACT section 8); ``--json`` prints exactly the contract's keys,
hashes in lowercase hex. Each proof is checked with the auditor's verifier before it is
printed. A position or size outside the log is bad input (exit 2)."""

from __future__ import annotations

import argparse
from typing import Any

from ledger.errors import LedgerError
from ledger.tree import consistency, inclusion

from ..documents import consistency_document, inclusion_document
from ..render import plural
from ._common import add_command, at_least, console, open_db, print_json


def register(sub: Any) -> None:
    parser = add_command(
        sub,
        "proof",
        "an inclusion proof of one event, or a consistency proof between two sizes of the "
        "log's Merkle tree",
        run,
    )
    parser.add_argument(
        "position",
        metavar="POSITION",
        nargs="?",
        type=at_least(1),
        help="the global position of the event to prove (or --consistency OLD)",
    )
    parser.add_argument(
        "--consistency",
        metavar="OLD",
        type=at_least(0),
        help="prove that the tree of --size events extends the tree of its first OLD events",
    )
    parser.add_argument(
        "--size",
        metavar="N",
        type=at_least(0),
        help="the tree of the first N events (default: the whole log), e.g. a checkpoint's size",
    )


def _hashes(title: str, hashes: tuple[str, ...]) -> None:
    console.print(f"{title} ({plural(len(hashes), 'hash', 'hashes')})", markup=False)
    for i, h in enumerate(hashes, 1):
        console.print(f"  {i:>2}  {h}", markup=False)


async def run(args: argparse.Namespace) -> int:
    if (args.position is None) == (args.consistency is None):
        raise LedgerError("proof takes either POSITION or --consistency OLD")
    async with open_db(args) as store:
        if args.position is not None:
            proof = inclusion_document(await inclusion(store, args.position, args.size))
            if args.json:
                print_json(proof)
                return 0
            console.print(
                f"event {proof.position} (leaf {proof.leaf_index}) is in the tree of "
                f"{plural(proof.tree_size, 'event')}",
                markup=False,
            )
            console.print(f"event hash  {proof.event_hash}", markup=False)
            console.print(f"root        {proof.root_hash}", markup=False)
            _hashes("audit path", proof.audit_path)
            return 0
        step = consistency_document(await consistency(store, args.consistency, args.size))
    if args.json:
        print_json(step)
        return 0
    console.print(
        f"the tree of {plural(step.new_size, 'event')} extends the tree of its first "
        f"{plural(step.old_size, 'event')}",
        markup=False,
    )
    console.print(f"old root  {step.old_root_hash}", markup=False)
    console.print(f"new root  {step.new_root_hash}", markup=False)
    _hashes("proof", step.proof)
    return 0
