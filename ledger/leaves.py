"""The leaves file that goes with a signed checkpoint: the leaf inputs the checkpoint signed.

Why it exists. A signed checkpoint holds a size and a root. Folding a store's first *size*
chain hashes and comparing the root says whether the store still holds the signed log, but
not *where* a rewritten log departs from it: the root of a forged log carries no trace of the
genuine one. To name the first position that differs, the verifier needs the genuine leaves.
So ``payledger checkpoint -o FILE`` also writes ``FILE.leaves``: the *size* leaf inputs (each
event's 32-byte chain hash, positions 1 to *size*, nothing else: no header, no separator),
``32 * size`` bytes in all.

Why it can be trusted. The file is not signed itself; it is checked through the signature:
it is used only when it holds exactly *size* leaves and they fold (RFC 9162) to the root the
checkpoint signs (:func:`check_leaves`). Any edit to it changes that fold, so a leaves file
that passes is the signed leaf sequence, byte for byte. A file that does not pass is set aside
and the verifier says so; it never makes a log look genuine or forged.
"""

from __future__ import annotations

import os
from collections.abc import AsyncGenerator, Generator
from pathlib import Path
from typing import BinaryIO, Final

from ._merkle.frontier import Frontier
from ._merkle.tree import HASH_SIZE
from .errors import LedgerError
from .store import EventStore

__all__ = [
    "LEAF_SIZE",
    "PAGE",
    "LeavesError",
    "check_leaves",
    "file_leaves",
    "leaves_path",
    "store_leaves",
    "write_leaves",
]

LEAF_SIZE: Final = HASH_SIZE
"""Bytes per leaf in a leaves file: one chain hash."""
PAGE: Final = 20_000
"""Leaves read at a time, from a store or a file (640 KB)."""


class LeavesError(LedgerError):
    """Raised when a leaves file cannot be used with its checkpoint: unreadable, not a whole
    number of leaves, another number of leaves than the checkpoint's size, or leaves that do
    not fold to the signed root. The message is one line saying which."""


def leaves_path(checkpoint_path: str | os.PathLike[str]) -> Path:
    """Where the leaves of the checkpoint note at ``checkpoint_path`` go: ``<path>.leaves``."""
    return Path(f"{os.fspath(checkpoint_path)}.leaves")


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


def file_leaves(
    path: str | os.PathLike[str], *, page: int = PAGE
) -> Generator[list[bytes], None, None]:
    """The leaves of a leaves file, a page at a time (unchecked: see :func:`check_leaves`)."""
    try:
        with open(path, "rb") as f:
            while chunk := f.read(page * LEAF_SIZE):
                yield [chunk[i : i + LEAF_SIZE] for i in range(0, len(chunk), LEAF_SIZE)]
    except OSError as e:
        raise LeavesError(f"cannot read the leaves file {os.fspath(path)}: {e.strerror}") from None


def check_leaves(path: str | os.PathLike[str], size: int, root: bytes) -> None:
    """Check that the leaves file at ``path`` holds ``size`` leaves that fold to ``root``
    (the checkpoint's); raises :class:`LeavesError` saying why not."""
    where = os.fspath(path)
    try:
        length = os.stat(path).st_size
    except OSError as e:
        raise LeavesError(f"cannot read the leaves file {where}: {e.strerror}") from None
    if length % LEAF_SIZE:
        raise LeavesError(
            f"the leaves file {where} is {length} bytes, not a whole number of {LEAF_SIZE}-byte"
            " leaves"
        )
    if length // LEAF_SIZE != size:
        raise LeavesError(
            f"the leaves file {where} holds {length // LEAF_SIZE} leaves; the checkpoint signs"
            f" {size}"
        )
    frontier = Frontier()
    for leaves in file_leaves(path):
        frontier.append(leaves, threshold=1 << 30)
    if frontier.size != size or frontier.root() != root:
        raise LeavesError(
            f"the leaves in {where} do not fold to the checkpoint's root: they are not the"
            " leaves it signed"
        )
