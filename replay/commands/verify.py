"""``payledger --db P verify [--checkpoint FILE --public-key KEY.pub]``: check everything the
other commands trust.

1. The log: the file's own integrity (SQLite's check, or the database's), gap-free positions,
   gap-free stream versions, the hash chain, the head.
2. The persisted projections: every row against a fold of the log up to their checkpoint, so an
   edited row is named (nothing answers from those rows: this says whether they can be given to
   anyone who reads them directly).
3. The Merkle tree the store keeps for proofs (:func:`ledger.tree.check_tree`): every stored
   node and the head's frontier against a fold of the events' chain hashes, naming the first
   that differs.
4. With ``--checkpoint``: the note's signature by the given public key (a note signed by
   another key, edited or with a truncated signature is refused in one line, exit 1, and
   nothing else is checked), then whether the store's first *size* events still fold to the
   signed root (:func:`ledger.audit.check_checkpoint`, folding the chain hashes, never the
   stored tree). If not, the first position that differs is named from a leaves file
   (``--leaves``; by default ``FILE.leaves``, else the ``checkpoints.leaves`` a Checkpointer
   keeps in FILE's directory) once its first *size* leaves are checked to fold to the signed
   root (a longer file, a later checkpoint's, serves as well); without one, the report says
   the position cannot be named.

Exit 0 when all hold; 1 (a finding) naming the first bad position, row, node or checkpoint.
"""

from __future__ import annotations

import argparse
from typing import Any

import msgspec
from rich.markup import escape

from ledger.audit import CheckpointReport, check_checkpoint
from ledger.checkpoint import Checkpoint
from ledger.errors import LedgerError
from ledger.records import IntegrityReport
from ledger.tree import TreeReport, check_tree
from projections.check import ProjectionReport, check_projections

from ..render import plural
from ._common import add_command, console, open_db, print_json
from ._vlog import finding, read_file, signed_checkpoint


class TreeDocument(msgspec.Struct, frozen=True, kw_only=True):
    """The Merkle tree's check: the same on every backend, whatever part of the tree it keeps."""

    ok: bool
    size: int
    root_hash: str
    """The root folded from the events' chain hashes, in hex."""
    node: tuple[int, int] | None
    """The first stored node that differs, ``[level, index]``."""
    position: int | None
    reason: str | None


class CheckpointCheck(CheckpointReport, frozen=True, kw_only=True):
    """The checkpoint's check, with the files it came from."""

    file: str
    key: str
    """The key that signed it, ``<name>+<key id>``."""


class VerifyDocument(msgspec.Struct, frozen=True, kw_only=True):
    """``verify --json``: the log's report, its keys at the top, and the projections'."""

    ok: bool
    checked: int
    head_position: int
    head_hash: str
    first_bad_position: int | None
    reason: str | None
    damaged: str | None
    projections: ProjectionReport | None
    """``None`` when the log itself failed (its projections are not compared then)."""
    tree: TreeDocument | None
    """``None`` when the log itself failed."""
    checkpoint: CheckpointCheck | None
    """``None`` without ``--checkpoint``."""


def register(sub: Any) -> None:
    parser = add_command(
        sub,
        "verify",
        "check the store's integrity: the file, gap-free positions and versions, the hash "
        "chain, the persisted projections and the Merkle tree against a fold of the log, and "
        "with --checkpoint that the log still extends a signed checkpoint",
        run,
    )
    parser.add_argument(
        "--checkpoint",
        metavar="FILE",
        help="a signed checkpoint note (from `payledger checkpoint`): exit 1 naming the first "
        "position that differs when the store's log does not extend it",
    )
    parser.add_argument(
        "--public-key",
        metavar="KEY.pub",
        help="the public key the checkpoint must be signed by (PEM, from `payledger keygen`)",
    )
    parser.add_argument(
        "--leaves",
        metavar="FILE",
        help="a leaves file of the checkpoint (default: FILE.leaves, else the checkpoints.leaves "
        "a Checkpointer keeps in FILE's directory); used only if its first SIZE leaves fold to "
        "the signed root (a later checkpoint's leaves serve too)",
    )


def _log_line(report: IntegrityReport) -> str:
    if report.ok:
        positions = f"positions 1-{report.head_position}" if report.head_position else "no events"
        return (
            f"[green]ok[/green]: {plural(report.checked, 'event')}, {positions} gap-free, "
            f"hash chain intact\nhead {report.head_hash}"
        )
    where = (
        f"first bad position {report.first_bad_position}"
        if report.first_bad_position is not None
        else "damage no position can be tied to"
    )
    label = "DAMAGED" if report.damaged else "ALTERED"
    return (
        f"[red]{label}[/red]: {where}: {escape(report.reason or 'unknown reason')} "
        f"({plural(report.checked, 'event')} checked before it)"
    )


def _projection_line(report: ProjectionReport) -> str:
    if report.ok:
        if report.rows == 0:
            return f"projections: {escape(report.reason or 'none persisted')}"
        return (
            f"[green]ok[/green]: projections: {plural(report.rows, 'row')} agree with the log "
            f"up to position {report.checkpoint}"
        )
    what = f"row {report.kind} {report.key!r}" if report.kind is not None else "the projections"
    return (
        f"[red]ALTERED[/red]: projection {escape(what)} (position {report.position}): "
        f"{escape(report.reason or 'differs')}; `payledger rebuild` folds them again from the log"
    )


def _tree_document(report: TreeReport) -> TreeDocument:
    return TreeDocument(
        ok=report.ok,
        size=report.size,
        root_hash=report.root,
        node=report.node,
        position=report.position,
        reason=report.reason,
    )


def _tree_line(tree: TreeDocument) -> str:
    if tree.ok:
        return (
            f"[green]ok[/green]: Merkle tree of {plural(tree.size, 'event')}: the stored tree "
            f"agrees with the fold of the chain hashes\nroot {tree.root_hash}"
        )
    return (
        f"[red]ALTERED[/red]: Merkle tree (position {tree.position}): "
        f"{escape(tree.reason or 'differs')}"
    )


def _checkpoint_line(check: CheckpointCheck) -> str:
    what = (
        f"checkpoint {escape(check.file)} ({escape(check.origin)}, "
        f"{plural(check.size, 'event')}, key {escape(check.key)})"
    )
    if check.ok:
        return (
            f"[green]ok[/green]: {what}: the store's first {plural(check.size, 'event')} "
            "fold to its signed root"
        )
    return f"[red]NOT EXTENDED[/red]: {what}: {escape(check.reason or 'differs')}"


def _anchored(
    args: argparse.Namespace,
) -> tuple[Checkpoint, str] | int | None:
    """The signed checkpoint of ``--checkpoint`` and its key label; an exit code when it is
    refused; ``None`` without ``--checkpoint``."""
    if args.checkpoint is None:
        if args.public_key is not None or args.leaves is not None:
            raise LedgerError("--public-key and --leaves go with --checkpoint FILE")
        return None
    if args.public_key is None:
        raise LedgerError("--checkpoint needs --public-key KEY.pub, the key that signed it")
    signed = signed_checkpoint(
        read_file(args.checkpoint, "--checkpoint"), args.checkpoint, args.public_key
    )
    if isinstance(signed, str):
        return finding(signed)
    checkpoint, kid = signed
    return checkpoint, f"{checkpoint.origin}+{kid}"


async def run(args: argparse.Namespace) -> int:
    anchored = _anchored(args)
    if isinstance(anchored, int):
        return anchored
    check: CheckpointCheck | None = None
    async with open_db(args) as store:
        report = await store.verify()
        projections = await check_projections(store) if report.ok else None
        tree = _tree_document(await check_tree(store)) if report.ok else None
        if anchored is not None:
            checkpoint, key = anchored
            note_file = None if args.checkpoint == "-" else args.checkpoint  # stdin: no place
            found = await check_checkpoint(
                store, checkpoint, leaves=args.leaves, note_file=note_file
            )
            check = CheckpointCheck(**msgspec.structs.asdict(found), file=args.checkpoint, key=key)
    ok = (
        report.ok
        and (projections is None or projections.ok)
        and (tree is None or tree.ok)
        and (check is None or check.ok)
    )
    if args.json:
        print_json(
            VerifyDocument(
                ok=ok,
                checked=report.checked,
                head_position=report.head_position,
                head_hash=report.head_hash,
                first_bad_position=report.first_bad_position,
                reason=report.reason,
                damaged=report.damaged,
                projections=projections,
                tree=tree,
                checkpoint=check,
            )
        )
    else:
        console.print(_log_line(report))
        if projections is not None:
            console.print(_projection_line(projections))
        if tree is not None:
            console.print(_tree_line(tree))
        if check is not None:
            console.print(_checkpoint_line(check))
    return 0 if ok else 1
