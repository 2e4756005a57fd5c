"""Signing the log from inside a service: a checkpoint now (:func:`sign_log`), or one every
*N* events or *T* seconds for as long as the service runs (:class:`Checkpointer`)::

    key = load_private_key("/etc/payledger/ledger.key")
    checkpointer = Checkpointer(store, key, every_events=10_000, every_seconds=60,
                                directory="/var/lib/payledger/checkpoints")
    async with anyio.create_task_group() as tg:
        await tg.start(checkpointer.run)        # the first note is written before this returns
        ...                                     # the service appends; notes follow
        tg.cancel_scope.cancel()

Guarantees:

- each note signs the tree of the whole log as it was at one moment (C2SP checkpoint in an
  Ed25519 signed note, :mod:`ledger.checkpoint`), its root read from the tree the store keeps
  in its append transaction: O(log n) reads, no pass over the log;
- a checkpointer never signs a log that does not extend the last one it signed (in this run,
  or found in its directory when it starts): the store must give a consistency proof between
  the two that checks against the signed root, or :class:`~ledger.checkpoint.CheckpointError`
  is raised and nothing is signed; a rewritten store stops it rather than being vouched for;
- a note is written to its directory whole or not at all: a temporary file, synced, renamed to
  ``checkpoint-<size, 20 digits>.note`` and the directory synced, shielded from cancellation,
  so cancelling the task (or the service) at any moment leaves only whole notes;
  :attr:`Checkpointer.latest` names the last one written. ``on_checkpoint`` (a function or a
  coroutine function) is called with each new note after it is written;
- the directory also keeps the leaves its notes sign, so that ``verify --checkpoint`` can name
  the first position a rewritten log changed: one file, ``checkpoints.leaves``
  (:mod:`ledger.leaves`), to which each note's new leaves are appended and synced before the
  note is written (their fold checked to be the root signed). On its first signature a
  checkpointer checks that the file's first *size* leaves fold to the newest note's root and
  cuts off what follows them (an append whose note a crash or a cancellation stopped). A file
  that cannot serve the newest note (missing, short, edited) is written afresh from the store,
  with a :class:`~ledger.leaves.LeavesWarning`, only if the store's chain hashes fold to that
  note's root; otherwise :class:`~ledger.checkpoint.CheckpointError`, nothing signed;
- two checkpointers on one directory (two service instances, say) take turns: each signature
  holds a lock on the directory and goes on from the newest note found there.
"""

from __future__ import annotations

import inspect
import math
import os
import warnings
from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio
import msgspec
from anyio.abc import TaskStatus
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from . import _checkpoint_dir as _dir
from ._checkpoint_dir import NOTE_NAME
from ._merkle.tree import EMPTY_ROOT
from ._merkle.verify import verify_consistency
from .checkpoint import (
    DEFAULT_ORIGIN,
    Checkpoint,
    CheckpointError,
    key_id,
    sign_checkpoint,
    verify_checkpoint,
)
from .leaves import LeavesWarning
from .store import EventStore
from .tree import consistency, log_root

__all__ = ["NOTE_NAME", "Checkpointer", "SignedCheckpoint", "sign_log"]


class SignedCheckpoint(msgspec.Struct, frozen=True, kw_only=True):
    """A checkpoint and its signed note (the text to keep or hand to an auditor)."""

    checkpoint: Checkpoint
    note: str
    key_name: str
    key_id: bytes
    """The 4-byte C2SP key id of the signing key under ``key_name``."""


async def sign_log(
    store: EventStore,
    private_key: Ed25519PrivateKey,
    *,
    origin: str = DEFAULT_ORIGIN,
    key_name: str | None = None,
    size: int | None = None,
    root: bytes | None = None,
) -> SignedCheckpoint:
    """Sign the tree of the first ``size`` events of ``store`` (default: the whole log) as a
    checkpoint of ``origin`` under ``key_name`` (default: the origin). ``root``, when given, is
    the root to sign for ``size`` (one the caller folded itself); it is checked against the
    store's tree first."""
    size, stored = await log_root(store, size)
    if root is not None and root != stored:
        raise CheckpointError(
            f"the store's Merkle tree of {size} events differs from the fold of their chain"
            " hashes: run `payledger verify`; nothing was signed"
        )
    return _signed(Checkpoint(origin=origin, size=size, root_hash=stored), private_key, key_name)


def _signed(
    checkpoint: Checkpoint, private_key: Ed25519PrivateKey, key_name: str | None
) -> SignedCheckpoint:
    name = checkpoint.origin if key_name is None else key_name
    note = sign_checkpoint(checkpoint, private_key, key_name=name)
    return SignedCheckpoint(
        checkpoint=checkpoint,
        note=note,
        key_name=name,
        key_id=key_id(name, private_key.public_key()),
    )


class Checkpointer:
    """Signs the log every ``every_events`` events or ``every_seconds`` seconds (whichever comes
    first, and only when the log grew), writing each note to ``directory`` and/or handing it to
    ``on_checkpoint`` (see the module docstring)."""

    def __init__(
        self,
        store: EventStore,
        private_key: Ed25519PrivateKey,
        *,
        every_events: int | None = 10_000,
        every_seconds: float | None = 60.0,
        directory: str | os.PathLike[str] | None = None,
        on_checkpoint: Callable[[SignedCheckpoint], Awaitable[None] | None] | None = None,
        origin: str = DEFAULT_ORIGIN,
        key_name: str | None = None,
    ) -> None:
        if every_events is None and every_seconds is None:
            raise CheckpointError("a checkpointer needs every_events, every_seconds or both")
        if every_events is not None and (isinstance(every_events, bool) or every_events < 1):
            raise CheckpointError(f"every_events must be at least 1, not {every_events!r}")
        if every_seconds is not None and not every_seconds > 0:
            raise CheckpointError(f"every_seconds must be above 0, not {every_seconds!r}")
        if directory is None and on_checkpoint is None:
            raise CheckpointError("a checkpointer needs a directory, an on_checkpoint or both")
        self.store = store
        self.every_events = every_events
        self.every_seconds = every_seconds
        self.directory = None if directory is None else Path(directory)
        self.on_checkpoint = on_checkpoint
        self.origin = origin
        self.key_name = origin if key_name is None else key_name
        self._key = private_key
        self.latest: SignedCheckpoint | None = None
        """The last checkpoint written (or the newest found in ``directory``)."""
        self._signed_at = -math.inf
        self._lock = anyio.Lock()  # run() and a caller's sign_now() take turns
        self._leaves = _dir.LeavesLog(self.directory) if self.directory is not None else None

    def _newest(self) -> SignedCheckpoint | None:
        """The newest note in the directory if it signs more events than :attr:`latest`,
        checked to be signed by this key (``None``: there is none)."""
        assert self.directory is not None
        newest = _dir.newest_note(self.directory)
        if newest is None or (
            self.latest is not None and _dir.note_size(newest) <= self.latest.checkpoint.size
        ):
            return None
        try:
            text = newest.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise CheckpointError(f"cannot read {newest}: {e}") from None
        public = self._key.public_key()
        checkpoint = verify_checkpoint(text, public, key_name=self.key_name, origin=self.origin)
        if self.latest is not None and checkpoint.size <= self.latest.checkpoint.size:
            return None
        return SignedCheckpoint(
            checkpoint=checkpoint,
            note=text,
            key_name=self.key_name,
            key_id=key_id(self.key_name, public),
        )

    async def _catch_up(self, leaves: _dir.LeavesLog) -> None:
        """Take up the directory's newest note if it is newer than :attr:`latest`, and bring
        the leaves file to :attr:`latest` (written afresh from the store if need be)."""
        newest = await anyio.to_thread.run_sync(self._newest)
        if newest is not None:
            self.latest = newest
        old = None if self.latest is None else self.latest.checkpoint
        size, root = (0, EMPTY_ROOT) if old is None else (old.size, old.root_hash)
        problem = await anyio.to_thread.run_sync(leaves.catch_up, size, root)
        if problem is None:
            return
        if not await leaves.rebuild(self.store, size, root):
            assert old is not None  # no note: nothing to rebuild, nothing to refuse
            raise CheckpointError(
                f"{problem}, and it cannot be written afresh from the store: the log does not"
                f" extend the checkpoint of {old.size} events already signed (origin"
                f" {old.origin!r}): refusing to sign it"
            )
        warnings.warn(
            LeavesWarning(
                f"{problem}: written afresh from the store's first {size} chain hashes, which"
                " fold to that note's root"
            ),
            stacklevel=2,
        )

    async def _extends_latest(self, size: int, root: bytes) -> None:
        if self.latest is None:
            return
        old = self.latest.checkpoint
        extends = size >= old.size
        if extends and size > old.size:
            step = await consistency(self.store, old.size, size)
            extends = verify_consistency(old.size, size, old.root_hash, root, step.proof)
        elif extends:
            extends = root == old.root_hash
        if not extends:
            raise CheckpointError(
                f"the log of {size} events does not extend the checkpoint of {old.size} events"
                f" already signed (origin {old.origin!r}): refusing to sign it"
            )

    async def sign_now(self) -> SignedCheckpoint | None:
        """Sign the whole log now if it grew since :attr:`latest`; returns the new checkpoint
        (``None``: nothing new to sign). Safe to call while :meth:`run` runs (on shutdown, say):
        the two take turns. An exception from ``on_checkpoint`` is raised here (and ends
        :meth:`run`), after the note was written."""
        async with self._lock:
            return await self._sign()

    async def _sign(self) -> SignedCheckpoint | None:
        if self._leaves is None:
            signed = await self._sign_log(None)
        else:
            async with _dir.locked(self._leaves.directory):
                await self._catch_up(self._leaves)
                signed = await self._sign_log(self._leaves)
        if signed is None:
            return None
        self._signed_at = anyio.current_time()
        if self.on_checkpoint is not None:
            result = self.on_checkpoint(signed)
            if inspect.isawaitable(result):
                await result
        return signed

    async def _sign_log(self, leaves: _dir.LeavesLog | None) -> SignedCheckpoint | None:
        """Sign the whole log if it grew; with a directory, append its leaves, then write the
        note."""
        size, root = await log_root(self.store)
        if self.latest is not None and size == self.latest.checkpoint.size:
            await self._extends_latest(size, root)
            return None
        await self._extends_latest(size, root)
        folded = None if leaves is None else await leaves.append(self.store, size, root)
        signed = _signed(
            Checkpoint(origin=self.origin, size=size, root_hash=root), self._key, self.key_name
        )
        with anyio.CancelScope(shield=True):
            if leaves is not None:
                await anyio.to_thread.run_sync(_dir.write_note, leaves.directory, size, signed.note)
                leaves.frontier = folded
            self.latest = signed
        return signed

    async def _wait(self) -> None:
        """Until ``every_events`` more events are in, or ``every_seconds`` have passed since the
        last signature and at least one event is in."""
        last = 0 if self.latest is None else self.latest.checkpoint.size
        head = await self.store.head()
        while True:
            if self.every_events is not None and head - last >= self.every_events:
                return
            timeout = math.inf
            if self.every_seconds is not None:
                timeout = self._signed_at + self.every_seconds - anyio.current_time()
                if head > last and timeout <= 0:
                    return
            # past the deadline with nothing new: wait for the next event, however long
            with anyio.move_on_after(timeout if 0 < timeout < math.inf else None):
                head = await self.store.wait_for_append(head)

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Sign the log now if it grew, then whenever ``every_events`` or ``every_seconds``
        says so, until cancelled. Reports ready (``task_group.start``) after the first."""
        await self.sign_now()
        self._signed_at = anyio.current_time()
        task_status.started()
        while True:
            await self._wait()
            await self.sign_now()
