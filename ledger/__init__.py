"""payledger's event store: immutable payment, channel and credit events in an append-only,
gap-free, tamper-evident log.

::

    async with open_store("ledger.db") as store:
        result = await store.append("payment-P1", [PaymentRequested(...)], expected_version=0)
        async for rec in store.read_stream("payment-P1"):
            ...

The verifiable log (CONTRACT section 8): :func:`sign_log` and :class:`Checkpointer` sign the
log's Merkle tree from a service; :func:`check_checkpoint` checks a store against a signed
checkpoint; :func:`check_inclusion` and :func:`check_consistency` check proofs with no store, and
:func:`check_event` an event's content against the chain hash a proof places in the log.
These load on first use (``cryptography`` is not imported by ``import ledger``).
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._pg.url import is_postgres_url
from .errors import ConcurrencyError as ConcurrencyError
from .errors import DamagedStoreError as DamagedStoreError
from .errors import DiskFullError as DiskFullError
from .errors import DuplicateEventError as DuplicateEventError
from .errors import EventValidationError as EventValidationError
from .errors import FormatError as FormatError
from .errors import IntegrityError as IntegrityError
from .errors import LedgerError as LedgerError
from .errors import NotALedgerError as NotALedgerError
from .errors import NotFoundError as NotFoundError
from .errors import ReadOnlyError as ReadOnlyError
from .errors import SchemaVersionError as SchemaVersionError
from .errors import StoreClosedError as StoreClosedError
from .errors import StoreError as StoreError
from .errors import UnknownEventTypeError as UnknownEventTypeError
from .events import Event as Event
from .events import stream_of as stream_of
from .sqlite import SQLiteEventStore as SQLiteEventStore
from .store import AppendResult as AppendResult
from .store import Durability as Durability
from .store import EventStore as EventStore
from .store import ImportItem as ImportItem
from .store import ImportResult as ImportResult
from .store import IntegrityReport as IntegrityReport
from .store import Record as Record

if TYPE_CHECKING:
    from .audit import CheckpointReport as CheckpointReport
    from .audit import check_checkpoint as check_checkpoint
    from .checkpoint import Checkpoint as Checkpoint
    from .checkpoint import CheckpointError as CheckpointError
    from .checkpoint import load_private_key as load_private_key
    from .checkpoint import load_public_key as load_public_key
    from .checkpoint import verify_checkpoint as verify_checkpoint
    from .checkpointer import Checkpointer as Checkpointer
    from .checkpointer import SignedCheckpoint as SignedCheckpoint
    from .checkpointer import sign_log as sign_log
    from .proofs import ProofError as ProofError
    from .proofs import check_consistency as check_consistency
    from .proofs import check_event as check_event
    from .proofs import check_inclusion as check_inclusion

__all__ = [
    "AppendResult",
    "Checkpoint",
    "CheckpointError",
    "CheckpointReport",
    "Checkpointer",
    "ConcurrencyError",
    "DamagedStoreError",
    "DiskFullError",
    "DuplicateEventError",
    "Durability",
    "Event",
    "EventStore",
    "EventValidationError",
    "FormatError",
    "ImportItem",
    "ImportResult",
    "IntegrityError",
    "IntegrityReport",
    "LedgerError",
    "NotALedgerError",
    "NotFoundError",
    "ProofError",
    "ReadOnlyError",
    "Record",
    "SQLiteEventStore",
    "SchemaVersionError",
    "SignedCheckpoint",
    "StoreClosedError",
    "StoreError",
    "UnknownEventTypeError",
    "check_checkpoint",
    "check_consistency",
    "check_event",
    "check_inclusion",
    "load_private_key",
    "load_public_key",
    "open_store",
    "sign_log",
    "stream_of",
    "verify_checkpoint",
]

_LAZY = {
    "CheckpointReport": "audit",
    "check_checkpoint": "audit",
    "Checkpoint": "checkpoint",
    "CheckpointError": "checkpoint",
    "load_private_key": "checkpoint",
    "load_public_key": "checkpoint",
    "verify_checkpoint": "checkpoint",
    "Checkpointer": "checkpointer",
    "SignedCheckpoint": "checkpointer",
    "sign_log": "checkpointer",
    "ProofError": "proofs",
    "check_consistency": "proofs",
    "check_event": "proofs",
    "check_inclusion": "proofs",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'ledger' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


@asynccontextmanager
async def open_store(
    path: str | Path,
    *,
    readonly: bool = False,
    durability: Durability = "full",
    busy_timeout: float = 30.0,
) -> AsyncIterator[EventStore]:
    """Open (creating file and schema if missing) the event store at ``path``.

    ``":memory:"`` opens an in-memory store with the same contract (nothing is kept on disk).
    A ``postgresql://`` (or ``postgres://``) URL opens the store in that PostgreSQL database
    (:mod:`ledger.postgres`), creating its schema in an empty one; ``busy_timeout`` is then how
    long an append waits for another process's transaction.
    ``readonly=True`` opens an existing store for reading only: appends raise
    :class:`ReadOnlyError` and nothing can change the file. ``durability="normal"`` trades the
    fsync per group commit for speed: appends survive a crash of the process but not of the
    machine.
    """
    store: EventStore
    if str(path) == ":memory:":
        from .memory import MemoryEventStore

        store = MemoryEventStore()
    elif is_postgres_url(path):
        from .postgres import PostgresEventStore

        store = await PostgresEventStore.open(
            str(path), readonly=readonly, durability=durability, busy_timeout=busy_timeout
        )
    else:
        store = await SQLiteEventStore.open(
            path, readonly=readonly, durability=durability, busy_timeout=busy_timeout
        )
    try:
        yield store
    finally:
        await store.aclose()
