"""The directory a :class:`~ledger.checkpointer.Checkpointer` writes (private): its notes,
``checkpoint-<size, 20 digits>.note``, and one leaves file for all of them,
``checkpoints.leaves`` (:mod:`ledger.leaves`: leaves 1 to the newest note's size).

The order of writes keeps both usable whatever stops the writer (cancellation, a crash, a full
disk):

1. the leaves from the newest note's size to the new size are written after its leaves, and
   the file is synced;
2. then the note: a temporary file, synced, renamed into place, the directory synced.

So the leaves file holds at least the leaves of the newest whole note, and its first *n*
leaves are not rewritten while a note of size *n* stands (a rebuild replaces the whole file
by a rename). Leaves past the newest note (an append whose note was never written) are cut
off before the next append.

One writer at a time: a signature holds an exclusive ``flock`` on the directory from reading
its newest note to writing the next, so two checkpointers on one directory take turns, each
going on from the other's newest note.
"""

from __future__ import annotations

import fcntl
import os
import re
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import BinaryIO, Final

import anyio

from ._merkle.frontier import Frontier
from .checkpoint import CheckpointError
from .leaves import LEAF_SIZE, LEAVES_NAME, PAGE, fold_leaves, store_leaves
from .store import EventStore

__all__ = ["NOTE_NAME", "LeavesLog", "locked", "newest_note", "note_size", "write_note"]

NOTE_NAME: Final = re.compile(r"checkpoint-(\d{20})\.note")
"""The name of a note a :class:`~ledger.checkpointer.Checkpointer` writes: the tree size in 20
digits."""
_DEBRIS: Final = re.compile(
    r"\.(checkpoint-\d{20}|" + re.escape(LEAVES_NAME) + r")\.[0-9a-f]{8}\.partial"
)
"""The temporary files of a write that a crash interrupted."""
_POLL: Final = 0.01
"""Seconds between tries for the directory's lock."""


def newest_note(directory: Path) -> Path | None:
    """The note of the largest size in ``directory`` (``None``: none)."""
    names = [p.name for p in directory.iterdir() if NOTE_NAME.fullmatch(p.name)]
    return directory / max(names) if names else None


def note_size(note: Path) -> int:
    """The tree size in a note's name."""
    named = NOTE_NAME.fullmatch(note.name)
    assert named is not None
    return int(named.group(1))


def _sync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_note(directory: Path, size: int, note: str) -> Path:
    """Write ``note`` as ``checkpoint-<size>.note`` in ``directory``, whole or not at all."""
    target = directory / f"checkpoint-{size:020d}.note"
    temporary = directory / f".checkpoint-{size:020d}.{secrets.token_hex(4)}.partial"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(note.encode())
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _sync_directory(directory)  # also makes a new leaves file's name durable
    return target


@asynccontextmanager
async def locked(directory: Path) -> AsyncIterator[None]:
    """Hold the directory's exclusive lock (waiting for it, cancellably) for the block."""
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as e:
        raise CheckpointError(f"cannot use the directory {directory}: {e.strerror}") from None
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                await anyio.sleep(_POLL)
            except OSError as e:
                raise CheckpointError(
                    f"cannot lock the directory {directory}: {e.strerror}"
                ) from None
        yield
    finally:
        os.close(fd)  # releases the lock


def _create(path: Path) -> BinaryIO:
    return open(path, "xb")  # closed by the caller


def _fold_and_write(frontier: Frontier, out: BinaryIO, leaves: list[bytes]) -> None:
    frontier.append(leaves, threshold=1 << 30)
    out.write(b"".join(leaves))


class LeavesLog:
    """The leaves file of a checkpoint directory, as far as it has been checked:
    :attr:`frontier` is the fold of its first ``frontier.size`` leaves, which the newest note
    signs (``None``: not checked yet in this run). Call under :func:`locked`."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.path = directory / LEAVES_NAME
        self.frontier: Frontier | None = None

    def catch_up(self, size: int, root: bytes) -> str | None:
        """Check the file against the newest note (``size``, ``root``): its first ``size``
        leaves must fold to ``root`` (only those past :attr:`frontier` are read); leaves past
        them are cut off. Returns ``None``, or the reason the file cannot serve the note
        (nothing is changed then). Removes the debris of interrupted writes the first time."""
        if self.frontier is None:
            for p in self.directory.iterdir():
                if _DEBRIS.fullmatch(p.name):
                    p.unlink(missing_ok=True)
        checked = Frontier() if self.frontier is None else self.frontier
        try:
            with open(self.path, "r+b") as f:
                length = os.fstat(f.fileno()).st_size
                if length < size * LEAF_SIZE:
                    return (
                        f"the leaves file {self.path} holds {length // LEAF_SIZE} leaves, fewer"
                        f" than the {size} of the newest note"
                    )
                f.seek(checked.size * LEAF_SIZE)
                folded = fold_leaves(f, size - checked.size, checked)
                if folded.size != size or folded.root() != root:
                    return (
                        f"the first {size} leaves in {self.path} do not fold to the newest"
                        " note's root"
                    )
                if length > size * LEAF_SIZE:  # an append whose note was never written
                    f.truncate(size * LEAF_SIZE)
                    os.fsync(f.fileno())
        except FileNotFoundError:
            if size:
                return f"the leaves file {self.path} is missing"
            folded = Frontier()
        except OSError as e:
            return f"cannot use the leaves file {self.path}: {e.strerror}"
        self.frontier = folded
        return None

    async def rebuild(self, store: EventStore, size: int, root: bytes) -> bool:
        """Write the file afresh from the store's first ``size`` chain hashes if they fold to
        ``root``, through a temporary file renamed into place; ``False`` (nothing changed)
        when the store holds fewer events or they fold to another root."""
        if await store.head() < size:
            return False
        temporary = self.directory / f".{LEAVES_NAME}.{secrets.token_hex(4)}.partial"
        out = await anyio.to_thread.run_sync(_create, temporary)
        try:
            frontier = Frontier()
            async for leaves in store_leaves(store, size, page=PAGE):
                await anyio.to_thread.run_sync(_fold_and_write, frontier, out, leaves)
            if frontier.size != size or frontier.root() != root:
                out.close()
                temporary.unlink()
                return False
            await anyio.to_thread.run_sync(self._replace, out, temporary)
        except BaseException:
            out.close()
            temporary.unlink(missing_ok=True)
            raise
        self.frontier = frontier
        return True

    def _replace(self, out: BinaryIO, temporary: Path) -> None:
        with out:
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, self.path)
        _sync_directory(self.directory)

    def _open_at(self, leaves: int) -> BinaryIO:
        created = not self.path.exists()
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        if created:  # the new name durable before any note relies on it
            _sync_directory(self.directory)
        f = os.fdopen(fd, "r+b")
        if os.fstat(fd).st_size < leaves * LEAF_SIZE:  # never a hole of zeros
            f.close()
            raise CheckpointError(
                f"the leaves file {self.path} lost leaves while it was in use; nothing was"
                " signed (the next start rebuilds it)"
            )
        f.seek(leaves * LEAF_SIZE)
        return f

    @staticmethod
    def _finish(f: BinaryIO) -> None:
        f.truncate()
        f.flush()
        os.fsync(f.fileno())

    async def append(self, store: EventStore, size: int, root: bytes) -> Frontier:
        """Write the store's chain hashes from :attr:`frontier` to position ``size`` after the
        checked leaves, and sync; returns the fold of the first ``size`` leaves, which must be
        ``root`` (else :class:`~ledger.checkpoint.CheckpointError`). :attr:`frontier` moves
        only when the caller has written the note (set it to the result)."""
        assert self.frontier is not None, "catch_up first"
        frontier = self.frontier.copy()
        f = await anyio.to_thread.run_sync(self._open_at, frontier.size)
        try:
            async for leaves in store_leaves(store, size, start=frontier.size + 1, page=PAGE):
                await anyio.to_thread.run_sync(_fold_and_write, frontier, f, leaves)
            if frontier.size != size or frontier.root() != root:
                raise CheckpointError(
                    f"the store's Merkle tree of {size} events differs from the fold of their"
                    " chain hashes: run `payledger verify`; nothing was signed"
                )
            await anyio.to_thread.run_sync(self._finish, f)
        finally:
            f.close()
        return frontier
