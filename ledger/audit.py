"""Checking a store against a signed checkpoint kept away from it (CONTRACT section 8).

The hash chain shows that a store agrees with itself; someone who rewrites the tail and
recomputes every hash after it keeps that agreement. A checkpoint signed earlier, by a key the
store never held, does not move with the rewrite: :func:`check_checkpoint` folds the store's
first *size* chain hashes (never the stored tree, which a tamperer may have left as it was or
recomputed) and compares the root with the signed one.

Where they differ, the root alone cannot say where the logs part: the root of a forged log
tells nothing of the genuine one. A leaves file of the checkpoint can (:mod:`ledger.leaves`:
the note's own ``NOTE.leaves``, or the ``checkpoints.leaves`` a Checkpointer keeps beside its
notes): once its first *size* leaves are checked to fold to the signed root, they are compared
one by one with the store's chain hashes, and the first position whose chain hash differs is
the first event rewritten (the chain carries every change forward, so every later one differs
too). Without one the report says that the log does not extend the checkpoint and that the
position cannot be named.

Check the signature first (:func:`ledger.checkpoint.verify_checkpoint`): this module trusts the
:class:`~ledger.checkpoint.Checkpoint` it is given.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import aclosing, closing
from pathlib import Path
from typing import BinaryIO, Literal

import anyio
import msgspec

from ._merkle.frontier import Frontier
from .checkpoint import Checkpoint
from .errors import IntegrityError
from .leaves import PAGE, LeavesError, leaves_for, open_leaves, read_leaves, store_leaves
from .store import EventStore

__all__ = ["CheckpointReport", "LeavesUse", "check_checkpoint"]

LeavesUse = Literal["not_needed", "used", "absent", "refused"]
"""What became of the leaves file: the roots agreed (it was not read), it named the position,
there was none, or its first *size* leaves did not fold to the signed root (set aside)."""


class CheckpointReport(msgspec.Struct, frozen=True, kw_only=True):
    """Whether a store extends a signed checkpoint, and where it departs from it if not."""

    ok: bool
    origin: str
    size: int
    """The number of events the checkpoint signed."""
    root_hash: str
    """The signed root, in lowercase hex."""
    store_root_hash: str | None
    """The root folded from the store's first ``size`` chain hashes (``None``: it holds fewer
    events, or they could not be read)."""
    head_position: int
    first_bad_position: int | None
    """The first position whose event is not the one signed (``None``: none, or it cannot be
    named)."""
    leaves: LeavesUse
    leaves_file: str | None = None
    """The leaves file read (or given and missing); ``None`` when none was read or found."""
    reason: str | None


def _report(
    checkpoint: Checkpoint,
    head: int,
    *,
    store_root: bytes | None = None,
    position: int | None = None,
    leaves: LeavesUse = "not_needed",
    leaves_file: str | None = None,
    reason: str | None = None,
) -> CheckpointReport:
    return CheckpointReport(
        ok=reason is None,
        origin=checkpoint.origin,
        size=checkpoint.size,
        root_hash=checkpoint.root_hash.hex(),
        store_root_hash=None if store_root is None else store_root.hex(),
        head_position=head,
        first_bad_position=position,
        leaves=leaves,
        leaves_file=leaves_file,
        reason=reason,
    )


async def _fold(store: EventStore, size: int) -> bytes:
    frontier = Frontier()
    async for leaves in store_leaves(store, size):
        frontier.append(leaves, threshold=1 << 30)
    return frontier.root()


def _next_folded(pages: Iterator[list[bytes]], folded: Frontier) -> list[bytes]:
    """The next page of leaves from the file (``[]``: no more), folded into ``folded``."""
    page = next(pages, [])
    folded.append(page, threshold=1 << 30)
    return page


async def _first_difference(
    store: EventStore, file: BinaryIO, checkpoint: Checkpoint, upto: int
) -> tuple[int | None, bool]:
    """The first position up to ``upto`` whose chain hash differs from the file's leaf, and
    whether the leaves compared are the ones signed: all ``checkpoint.size`` of them are read
    (past the difference too) and folded again, since the file was checked by an earlier read
    and may have been changed in place since (by a writer racing this one, or on a file system
    that serves other bytes the second time). File reads and folds run in a worker thread."""
    position: int | None = None
    folded = Frontier()
    with closing(read_leaves(file, checkpoint.size, page=PAGE)) as signed_pages:
        at = 1
        async with aclosing(store_leaves(store, upto, page=PAGE)) as stored:
            async for mine in stored:  # pages aligned with the file's
                signed = await anyio.to_thread.run_sync(_next_folded, signed_pages, folded)
                for a, b in zip(signed, mine, strict=False):
                    if a != b:
                        position = at
                        break
                    at += 1
                if position is not None:
                    break
        while await anyio.to_thread.run_sync(_next_folded, signed_pages, folded):
            pass
    return position, folded.size == checkpoint.size and folded.root() == checkpoint.root_hash


async def check_checkpoint(
    store: EventStore,
    checkpoint: Checkpoint,
    *,
    leaves: str | os.PathLike[str] | None = None,
    note_file: str | os.PathLike[str] | None = None,
) -> CheckpointReport:
    """Whether ``store``'s first ``checkpoint.size`` events fold to the signed root; if not,
    the first position that differs, named from a leaves file whose first *size* leaves fold
    to that root (see the module docstring): ``leaves`` when given, else the one found beside
    ``note_file``, the note's path (:func:`ledger.leaves.leaves_for`)."""
    size = checkpoint.size
    head = await store.head()
    store_root: bytes | None = None
    try:
        if head >= size:
            store_root = await _fold(store, size)
            if store_root == checkpoint.root_hash:
                return _report(checkpoint, head, store_root=store_root)
    except IntegrityError as e:
        return _report(
            checkpoint,
            head,
            position=e.position,
            reason=f"the store's chain hashes cannot be read: {e.reason}",
        )
    what = "the log does not extend the checkpoint: " + (
        f"its first {size} events fold to another root"
        if head >= size
        else f"it holds {head} events, fewer than the {size} signed"
    )
    path: Path | None = None
    if leaves is not None:
        path = Path(leaves)
    elif note_file is not None:
        path = await anyio.to_thread.run_sync(leaves_for, note_file)
    where = None if path is None else os.fspath(path)
    if path is None or not await anyio.Path(path).exists():
        return _report(
            checkpoint,
            head,
            store_root=store_root,
            leaves="absent",
            leaves_file=where,
            reason=f"{what}; which position differs cannot be named without a leaves file"
            " that holds the leaves the checkpoint signs"
            + ("" if where is None else f" ({where} does not exist)"),
        )
    try:
        file = await anyio.to_thread.run_sync(open_leaves, path, size, checkpoint.root_hash)
    except LeavesError as e:
        return _report(
            checkpoint,
            head,
            store_root=store_root,
            leaves="refused",
            leaves_file=where,
            reason=f"{what}; the leaves file is set aside ({e}), so which position differs"
            " cannot be named",
        )
    upto = min(head, size)
    try:
        with file:
            position, intact = await _first_difference(store, file, checkpoint, upto)
    except IntegrityError as e:
        return _report(
            checkpoint,
            head,
            position=e.position,
            leaves="used",
            leaves_file=where,
            reason=f"the store's chain hashes cannot be read: {e.reason}",
        )
    if not intact:
        return _report(
            checkpoint,
            head,
            store_root=store_root,
            leaves="refused",
            leaves_file=where,
            reason=f"{what}; the leaves file is set aside (it changed while it was read: the"
            f" first {size} leaves read do not fold to the checkpoint's root), so which position"
            " differs cannot be named",
        )
    if position is not None:
        reason = (
            f"the log does not extend the checkpoint: the event at position {position} is not"
            " the one it signed (its chain hash differs), so the log was rewritten from there"
        )
    elif head < size:
        position = head + 1
        reason = f"{what}: the events it signed from position {position} on are gone"
    else:  # the leaves fold to the signed root and match the store's: a read changed under us
        reason = f"{what}; the store's chain hashes changed while they were read: check again"
    return _report(
        checkpoint,
        head,
        store_root=store_root,
        position=position,
        leaves="used",
        leaves_file=where,
        reason=reason,
    )
