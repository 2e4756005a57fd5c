"""``payledger check-proofs EXPLANATION.json --public-key KEY.pub [--checkpoint FILE]``: the
auditor's command. It needs no store: only the output of ``explain ID --json --proofs``, a
signed checkpoint and the public key of whoever signs checkpoints.

The checkpoint is ``--checkpoint FILE``, or else the note the explanation embeds (made with
``explain --proofs --checkpoint``); either way its signature by the public key is checked
first, and a refused note is one line, exit 1. An unsigned checkpoint is never trusted. Then
every evidence position the explanation cites (root cause, contributing causes, attempts) is
checked: it has a proof, the proof is in the tree of the checkpoint's size, its audit path
leads from the event's chain hash to the *signed* root, and the event the explanation carries
for it hashes to that chain hash (so its content is what was signed). One line per position,
naming the event's type; exit 1 when any does not hold.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from ledger.errors import LedgerError

from ..documents import ProofCheckDocument
from ..proven import check_explanation
from ..render import plural
from ._common import add_command, console, print_json
from ._vlog import finding, read_file, signed_checkpoint


def register(sub: Any) -> None:
    parser = add_command(
        sub,
        "check-proofs",
        "check every evidence proof of an `explain --json --proofs` document against a signed "
        "checkpoint, with no store",
        run,
    )
    parser.add_argument(
        "explanation",
        metavar="EXPLANATION.json",
        help="the output of `payledger explain ID --json --proofs` ('-': standard input)",
    )
    parser.add_argument(
        "--public-key",
        metavar="KEY.pub",
        required=True,
        help="the public key checkpoints are signed with (PEM, from `payledger keygen`)",
    )
    parser.add_argument(
        "--checkpoint",
        metavar="FILE",
        help="the signed checkpoint note to check against (default: the note the explanation "
        "embeds, if it was made with --checkpoint)",
    )


def _document(args: argparse.Namespace) -> Any:
    raw = read_file(args.explanation, "EXPLANATION.json")
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise LedgerError(f"{args.explanation} is not a JSON document: {e}") from None


def _note(args: argparse.Namespace, doc: Any) -> tuple[bytes, str]:
    if args.checkpoint is not None:
        return read_file(args.checkpoint, "--checkpoint"), args.checkpoint
    proofs = doc.get("proofs") if isinstance(doc, dict) else None
    embedded = proofs.get("checkpoint") if isinstance(proofs, dict) else None
    note = embedded.get("note") if isinstance(embedded, dict) else None
    if not isinstance(note, str):
        size = embedded.get("tree_size") if isinstance(embedded, dict) else None
        raise LedgerError(
            f"{args.explanation} embeds no signed checkpoint: give --checkpoint FILE, a note "
            f"signing the tree of {size if isinstance(size, int) else 'its proofs'} events"
        )
    return note.encode(), f"the checkpoint embedded in {args.explanation}"


async def run(args: argparse.Namespace) -> int:
    doc = _document(args)
    note, where = _note(args, doc)
    signed = signed_checkpoint(note, where, args.public_key)
    if isinstance(signed, str):
        return finding(signed)
    checkpoint, kid = signed
    checks = check_explanation(doc, checkpoint)
    ok = all(c.holds for c in checks)
    payment = doc.get("payment_id") if isinstance(doc.get("payment_id"), str) else None
    if args.json:
        print_json(
            ProofCheckDocument(
                ok=ok,
                payment_id=payment,
                origin=checkpoint.origin,
                tree_size=checkpoint.size,
                root_hash=checkpoint.root_hash.hex(),
                key_id=kid,
                positions=tuple(checks),
            )
        )
        return 0 if ok else 1
    console.print(
        f"{where}: {checkpoint.origin}, {plural(checkpoint.size, 'event')}, signed by "
        f"{checkpoint.origin}+{kid}",
        markup=False,
    )
    for c in checks:
        if c.holds:
            console.print(f"position {c.position}: [green]holds[/green] ", end="")
            console.print(f"({c.type})", markup=False)
        else:
            console.print(f"position {c.position}: [red]DOES NOT HOLD[/red]: ", end="")
            console.print(c.reason or "", markup=False)
    held = sum(c.holds for c in checks)
    of = f"payment {payment}" if payment else "the explanation"
    if not checks:
        console.print(f"{of} cites no evidence: nothing to check", markup=False)
    elif ok:
        console.print(
            f"ok: {plural(held, 'evidence event')} of {of}, each in the signed log with the "
            "content the explanation carries",
            markup=False,
        )
    else:
        console.print(
            f"{plural(len(checks) - held, 'evidence position')} of {of} not proven in the "
            "signed log",
            markup=False,
        )
    return 0 if ok else 1
