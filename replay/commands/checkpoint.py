"""``payledger --db P checkpoint --key KEY [--origin NAME] [-o FILE] [--no-leaves]``: sign the
Merkle tree of the whole log as a C2SP checkpoint in an Ed25519 signed note (CONTRACT
section 8).

The note goes to FILE, or to standard output without ``-o`` (or with ``-o -``).

The leaves file. A signed root says whether a store still holds the signed log, never where a
rewritten one departs from it: the root of a forged log carries nothing of the genuine one. So
``-o FILE`` also writes ``FILE.leaves``: the leaf inputs the checkpoint signs, each event's
32-byte chain hash from position 1 to the tree size, back to back (``32 * size`` bytes;
:mod:`ledger.leaves`). It needs no signature of its own: ``verify --checkpoint`` uses it only
after checking that its first *size* leaves fold to the signed root, and then compares them with
the store's chain hashes to name the first position that differs. ``--no-leaves`` skips it
(the note then costs O(log n) reads instead of a pass over the chain hashes). A
:class:`~ledger.Checkpointer` keeps the leaves of all its notes in one ``checkpoints.leaves``
beside them instead.

With the leaves, the root signed is the fold of exactly the chain hashes written, checked
against the tree the store keeps (a disagreement signs nothing: run ``verify``). Without them,
it is the store's kept root. Both files are written through temporary files renamed into place
(:mod:`replay.output`), the leaves first: a failure leaves no new note.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ledger.checkpoint import DEFAULT_ORIGIN, load_private_key
from ledger.checkpointer import SignedCheckpoint, sign_log
from ledger.leaves import leaves_path, write_leaves
from ledger.tree import log_root

from ..documents import SignedCheckpointDocument
from ..output import OutputTarget, check_output, open_output
from ..render import plural
from ._common import add_command, console, open_db, print_json, require_db
from ._vlog import origin_name


def register(sub: Any) -> None:
    parser = add_command(
        sub,
        "checkpoint",
        "sign the Merkle tree of the whole log: a C2SP checkpoint in an Ed25519 signed note, "
        "with the leaves it signs beside it",
        run,
    )
    parser.add_argument(
        "--key",
        metavar="KEY",
        required=True,
        help="the Ed25519 private key to sign with (PEM, from `payledger keygen`)",
    )
    parser.add_argument(
        "--origin",
        metavar="NAME",
        type=origin_name,
        default=DEFAULT_ORIGIN,
        help=f"the log's name, first line of the checkpoint and key name of the signature "
        f"(default: {DEFAULT_ORIGIN})",
    )
    parser.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="write the note to FILE and the leaves it signs to FILE.leaves (default: the "
        "note on standard output, no leaves file)",
    )
    parser.add_argument(
        "--no-leaves",
        action="store_true",
        help="do not write FILE.leaves (verify can then say that a log was rewritten, but "
        "not from which position)",
    )


def _targets(args: argparse.Namespace) -> tuple[OutputTarget | None, OutputTarget | None]:
    if args.output is None or args.output == "-":
        return None, None
    db = require_db(args)
    note = check_output(args.output, option="-o", db=db)
    if args.no_leaves or note.kind != "file":
        return note, None
    return note, check_output(str(leaves_path(args.output)), option="-o (its leaves)", db=db)


async def run(args: argparse.Namespace) -> int:
    key = load_private_key(args.key)
    note_target, leaves_target = _targets(args)
    async with open_db(args) as store:
        signed: SignedCheckpoint
        if leaves_target is not None:
            size, _ = await log_root(store)
            with open_output(leaves_target) as out:
                root = await write_leaves(store, size, out)
                signed = await sign_log(store, key, origin=args.origin, size=size, root=root)
        else:
            signed = await sign_log(store, key, origin=args.origin)
    if note_target is not None:
        with open_output(note_target) as out:
            out.write(signed.note.encode())
    checkpoint = signed.checkpoint
    if args.json:
        print_json(
            SignedCheckpointDocument(
                origin=checkpoint.origin,
                tree_size=checkpoint.size,
                root_hash=checkpoint.root_hash.hex(),
                note=signed.note,
                key_name=signed.key_name,
                key_id=signed.key_id.hex(),
                file=None if note_target is None else args.output,
                leaves_file=None if leaves_target is None else leaves_target.path,
            )
        )
    elif note_target is None:
        sys.stdout.buffer.write(signed.note.encode())
        sys.stdout.flush()
    else:
        console.print(
            f"signed the tree of {plural(checkpoint.size, 'event')} ({checkpoint.origin}, key "
            f"{signed.key_name}+{signed.key_id.hex()}): root {checkpoint.root_hash.hex()}",
            markup=False,
        )
        written = f"note {args.output}"
        if leaves_target is not None:
            written += f", leaves {leaves_target.path}"
        console.print(written, markup=False)
    return 0
