"""payledger's event store: immutable payment, channel and credit events in an append-only,
gap-free, tamper-evident log.

::

    async with open_store("ledger.db") as store:
        result = await store.append("payment-P1", [PaymentRequested(...)], expected_version=0)
        async for rec in store.read_stream("payment-P1"):
            ...
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

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

__all__ = [
    "AppendResult",
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
    "ReadOnlyError",
    "Record",
    "SQLiteEventStore",
    "SchemaVersionError",
    "StoreClosedError",
    "StoreError",
    "UnknownEventTypeError",
    "open_store",
    "stream_of",
]


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
