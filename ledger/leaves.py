"""Leaves files: the leaf inputs a signed checkpoint signs, kept beside its note.

Why they exist. A signed checkpoint holds a size and a root. Folding a store's first *size*
chain hashes and comparing the root says whether the store still holds the signed log, but
not *where* a rewritten log departs from it: the root of a forged log carries no trace of the
genuine one. To name the first position that differs, the verifier needs the genuine leaves.

The format: each event's 32-byte chain hash, positions 1, 2, 3, ... back to back, nothing
else (no header, no separator). Two places hold one:

- ``payledger checkpoint -o FILE`` writes ``FILE.leaves`` (:func:`leaves_path`): the note's
  *size* leaves, ``32 * size`` bytes;
- a :class:`~ledger.checkpointer.Checkpointer` keeps one file for its whole directory,
  ``checkpoints.leaves`` (:data:`LEAVES_NAME`): leaves 1 to the size of its newest note,
  appended before each note is written, so it serves every note there.

:func:`leaves_for` finds the one for a note: ``NOTE.leaves``, else the ``checkpoints.leaves``
in the note's directory.

Why they can be trusted. A leaves file is not signed itself; it is checked through the
signature: it is used only when it holds at least *size* leaves and its first *size* fold
(RFC 9162) to the root the checkpoint signs (:func:`open_leaves`). Whatever follows them (the
leaves of later notes, a leaf half written) is not read. Any edit to those first *size*
leaves changes the fold, so a file that passes holds the signed leaf sequence, byte for byte.
A file that does not pass is set aside and the verifier says so; it never makes a log look
genuine or forged.
"""

from __future__ import annotations

import os
import stat
from collections.abc import AsyncGenerator, Generator
from pathlib import Path
from typing import BinaryIO, Final

from ._merkle.frontier import Frontier
from ._merkle.tree import HASH_SIZE
from .errors import LedgerError
from .store import EventStore

__all__ = [
    "LEAF_SIZE",
    "LEAVES_NAME",
    "PAGE",
    "LeavesError",
    "LeavesWarning",
    "check_leaves",
    "fold_leaves",
    "leaves_for",
    "leaves_path",
    "open_leaves",
    "read_leaves",
    "store_leaves",
    "write_leaves",
]

LEAF_SIZE: Final = HASH_SIZE
"""Bytes per leaf in a leaves file: one chain hash."""
LEAVES_NAME: Final = "checkpoints.leaves"
"""The leaves file a :class:`~ledger.checkpointer.Checkpointer` keeps in its directory."""
PAGE: Final = 20_000
"""Leaves read at a time, from a store or a file (640 KB)."""


class LeavesError(LedgerError):
    """Raised when a leaves file cannot be used with its checkpoint: unreadable, fewer leaves
    than the checkpoint's size, or first *size* leaves that do not fold to the signed root.
    The message is one line saying which."""


class LeavesWarning(UserWarning):
    """Issued when a :class:`~ledger.checkpointer.Checkpointer` finds its directory's leaves
    file unable to serve the newest note (missing, short, edited) and writes it afresh from
    the store, whose chain hashes fold to that note's root. The message says why."""


def leaves_path(checkpoint_path: str | os.PathLike[str]) -> Path:
    """Where ``payledger checkpoint -o`` writes the leaves of the note at ``checkpoint_path``:
    ``<path>.leaves``."""
    return Path(f"{os.fspath(checkpoint_path)}.leaves")


def leaves_for(checkpoint_path: str | os.PathLike[str]) -> Path | None:
    """The leaves file of the note at ``checkpoint_path``: ``<path>.leaves`` when it exists,
    else the :data:`LEAVES_NAME` of the note's directory when that exists, else ``None``
    (unchecked: see :func:`open_leaves`)."""
    own = leaves_path(checkpoint_path)
    if own.exists():
        return own
    shared = Path(checkpoint_path).parent / LEAVES_NAME
    return shared if shared.exists() else None


async def store_leaves(
    store: EventStore, size: int, *, start: int = 1, page: int = PAGE
) -> AsyncGenerator[list[bytes], None]:
    """The chain hashes of the events at positions ``start`` to ``size``, a page at a time."""
    low = start
    while low <= size:
        high = min(size, low + page - 1)
        yield await store.leaf_hashes(low, high)
        low = high + 1


async def write_leaves(store: EventStore, size: int, out: BinaryIO) -> bytes:
    """Write the first ``size`` chain hashes of ``store`` to ``out``; returns their root (the
    fold of exactly what was written)."""
    frontier = Frontier()
    async for leaves in store_leaves(store, size):
        frontier.append(leaves, threshold=1 << 30)
        out.write(b"".join(leaves))
    return frontier.root()


def read_leaves(f: BinaryIO, count: int, *, page: int = PAGE) -> Generator[list[bytes], None, None]:
    """Up to ``count`` leaves from ``f``'s offset on, a page at a time; fewer where the file
    ends (a partial leaf there is left out). Unchecked: see :func:`open_leaves`."""
    while count > 0:
        chunk = f.read(min(count, page) * LEAF_SIZE)
        leaves = [chunk[i : i + LEAF_SIZE] for i in range(0, len(chunk), LEAF_SIZE)]
        if leaves and len(leaves[-1]) < LEAF_SIZE:
            leaves.pop()
        if not leaves:
            return
        yield leaves
        count -= len(leaves)


def fold_leaves(f: BinaryIO, count: int, frontier: Frontier | None = None) -> Frontier:
    """``frontier`` (default: empty) with up to ``count`` leaves from ``f``'s offset on
    appended (a new frontier: the one given is left as it was)."""
    folded = Frontier() if frontier is None else frontier.copy()
    for leaves in read_leaves(f, count):
        folded.append(leaves, threshold=1 << 30)
    return folded


def open_leaves(path: str | os.PathLike[str], size: int, root: bytes) -> BinaryIO:
    """The leaves file at ``path``, open at offset 0 once checked: at least ``size`` leaves,
    the first ``size`` folding to ``root`` (the checkpoint's). Raises :class:`LeavesError`
    saying why not. Reading the leaves from the returned file reads what was checked if the file
    is replaced meanwhile (by a rename), not if it is changed in place: a caller that acts on
    the leaves folds them again as it reads them (:func:`ledger.audit.check_checkpoint`)."""
    where = os.fspath(path)
    try:
        # never blocks: a FIFO in its place would hold the verifier until something writes
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as e:
        raise LeavesError(f"cannot read the leaves file {where}: {e.strerror}") from None
    try:
        status = os.fstat(fd)
        regular = stat.S_ISREG(status.st_mode)
        if regular:
            os.set_blocking(fd, True)
    except OSError as e:
        os.close(fd)
        raise LeavesError(f"cannot read the leaves file {where}: {e.strerror}") from None
    if not regular:
        os.close(fd)
        raise LeavesError(f"the leaves file {where} is not a regular file")
    f = os.fdopen(fd, "rb")
    try:
        length = status.st_size
        if length < size * LEAF_SIZE:
            raise LeavesError(
                f"the leaves file {where} holds {length // LEAF_SIZE} leaves, fewer than the"
                f" {size} the checkpoint signs"
            )
        folded = fold_leaves(f, size)
        if folded.size != size or folded.root() != root:
            raise LeavesError(
                f"the first {size} leaves in {where} do not fold to the checkpoint's root: they"
                " are not the leaves it signed"
            )
        f.seek(0)
    except OSError as e:
        f.close()
        raise LeavesError(f"cannot read the leaves file {where}: {e.strerror}") from None
    except BaseException:
        f.close()
        raise
    return f


def check_leaves(path: str | os.PathLike[str], size: int, root: bytes) -> None:
    """Check that the first ``size`` leaves of the leaves file at ``path`` fold to ``root``
    (see :func:`open_leaves`); raises :class:`LeavesError` saying why not."""
    open_leaves(path, size, root).close()
