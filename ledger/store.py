"""The event store's contract, shared by every backend.

What every backend guarantees (the contract suite in ``tests/store_contract.py`` checks each):

1. ``append`` is atomic for its list of events: all of them are stored, or none.
2. Global positions start at 1 and are gap-free, in commit order, with any number of tasks and
   processes appending at once.
3. Each stream's versions are 1, 2, 3, ... with no gaps; ``expected_version`` (``None``: any,
   ``0``: the stream must not exist, ``n``: its version must be ``n``) is checked per call, so one
   conflicting call never fails its neighbours in a group commit.
4. An ``event_id`` is stored once. A call whose events are all already stored, with the same
   content, is an idempotent retry: it returns the original positions and appends nothing. The
   same id with other content, or a call mixing stored and new events, is an error.
5. Every event is validated against the catalogue before it is stored, and filed in the stream
   its ids name (:func:`ledger.events.stream_of`).
6. Each stored event carries a SHA-256 over its canonical bytes and the previous event's hash;
   :meth:`EventStore.verify` walks the chain.
7. Reads are streamed page by page: memory stays flat however many events are read. A read of
   the whole log yields exactly the positions it promises, in order, or raises
   :class:`DamagedStoreError`: nothing is ever answered from part of the log.
8. The amounts the projections add up (:data:`SUMMED_TYPES`: authorizations, settlements,
   repayments) never total more than :data:`MAX_SUMMED_MINOR` over the whole log, so every
   projection sum fits a 64-bit integer: an append that would pass it is refused whole, before
   anything is stored (:class:`Planner` keeps the running total the head records).
9. A cancelled or timed-out ``append`` or ``import_events`` leaves the store exactly as before
   the call or exactly as after it, never between.

This module holds the abstract store; the pieces every backend shares are in
:mod:`ledger.records` (what the store returns), :mod:`ledger.prepare` (validation and encoding),
:mod:`ledger.planner` (the hash chain and the batch planner, rules 3, 4 and 8) and
:mod:`ledger.rows` (stored rows and their decoding), all re-exported here.
"""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod
from collections.abc import AsyncIterable, AsyncIterator, Collection, Iterable, Sequence
from datetime import datetime

from ._merkle.frontier import Frontier
from ._merkle.tree import NodeId
from .errors import ConcurrencyError, StoreError
from .events import Event, UnknownEvent
from .planner import Planner as Planner
from .planner import Stored as Stored
from .planner import chain_hash as chain_hash
from .planner import plan_import as plan_import
from .prepare import import_chunks as import_chunks
from .prepare import non_utc_field as non_utc_field
from .prepare import prepare as prepare
from .prepare import prepare_append as prepare_append
from .prepare import prepare_import as prepare_import
from .prepare import split_validation_message as split_validation_message
from .prepare import uuid7 as uuid7
from .records import EPOCH as EPOCH
from .records import GENESIS_HASH as GENESIS_HASH
from .records import MAX_STREAM_LENGTH as MAX_STREAM_LENGTH
from .records import MAX_SUMMED_MINOR as MAX_SUMMED_MINOR
from .records import SUMMED_TYPES as SUMMED_TYPES
from .records import AppendResult as AppendResult
from .records import Durability as Durability
from .records import ImportItem as ImportItem
from .records import ImportResult as ImportResult
from .records import IntegrityReport as IntegrityReport
from .records import Prepared as Prepared
from .records import Record as Record
from .records import from_micros as from_micros
from .records import to_micros as to_micros
from .rows import CURRENT_SHAPE as CURRENT_SHAPE
from .rows import PAYLOAD_COLUMNS as PAYLOAD_COLUMNS
from .rows import ROW_COLUMNS as ROW_COLUMNS
from .rows import PayloadRow as PayloadRow
from .rows import RawRow as RawRow
from .rows import current_schema
from .rows import decode_event as decode_event
from .rows import event_of_payload as event_of_payload
from .rows import record_from_row as record_from_row
from .rows import row_from_record as row_from_record
from .states import StateStore

__all__ = [
    "MAX_SUMMED_MINOR",
    "SUMMED_TYPES",
    "AppendResult",
    "Durability",
    "EventStore",
    "ImportItem",
    "ImportResult",
    "IntegrityReport",
    "PayloadRow",
    "Prepared",
    "RawRow",
    "Record",
    "prepare_append",
    "record_from_row",
    "row_from_record",
]


class EventStore(ABC):
    """An append-only, gap-free, tamper-evident event store (see the module docstring)."""

    readonly: bool = False

    async def append(
        self,
        stream: str,
        events: Sequence[Event],
        *,
        expected_version: int | None = None,
        correlation_id: str | None = None,
        causation_id: str | None = None,
        event_ids: Sequence[str | uuid.UUID] | None = None,
    ) -> AppendResult:
        """Append ``events`` to ``stream`` atomically; returns once they are durable.

        The same on every backend: the store must be open for writing, then every event is
        validated (:func:`prepare_append`) before anything is queued; an empty list appends
        nothing and only checks ``expected_version``. The backend stores the rest
        (:meth:`_append_prepared`).
        """
        self._check_append()
        prepared = prepare_append(
            stream,
            events,
            expected_version,
            event_ids=event_ids,
            correlation_id=correlation_id,
            causation_id=causation_id,
        )
        if not prepared:
            version = await self.stream_version(stream)
            if expected_version is not None and expected_version != version:
                raise ConcurrencyError(stream, expected_version, version)
            return AppendResult(stream=stream, positions=(), version=version)
        return await self._append_prepared(stream, prepared, expected_version)

    @abstractmethod
    def _check_append(self) -> None:
        """Raise unless the store is open for writing (closed: ``StoreError``; read-only:
        ``ReadOnlyError``), before any validation."""

    @abstractmethod
    async def _append_prepared(
        self, stream: str, prepared: list[Prepared], expected_version: int | None
    ) -> AppendResult:
        """Store the validated, non-empty ``prepared`` atomically (contract rules 1 to 4, 8
        and 9); returns once they are durable."""

    @abstractmethod
    def read_stream(
        self, stream: str, from_version: int = 1, *, to_position: int | None = None
    ) -> AsyncIterator[Record]:
        """The events of one stream from ``from_version``, up to ``to_position`` if given."""

    @abstractmethod
    def read_all(
        self,
        from_position: int = 1,
        *,
        to_position: int | None = None,
        page_size: int = 1000,
    ) -> AsyncIterator[Record]:
        """Every event in position order, streamed page by page."""

    @abstractmethod
    def read_streams(
        self,
        streams: Iterable[str],
        *,
        from_position: int = 1,
        to_position: int | None = None,
    ) -> AsyncIterator[Record]:
        """The events of several streams, interleaved in position order."""

    @abstractmethod
    def query(
        self,
        *,
        stream: str | None = None,
        types: Sequence[str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        correlation_id: str | None = None,
        from_position: int = 1,
        to_position: int | None = None,
    ) -> AsyncIterator[Record]:
        """The events matching every given filter (``since``/``until`` bound ``occurred_at``,
        inclusive), in position order."""

    @abstractmethod
    async def head(self) -> int:
        """The last global position (0 for an empty store)."""

    @abstractmethod
    async def stream_version(self, stream: str) -> int:
        """The stream's current version (0 when it has no events)."""

    @abstractmethod
    async def position_at(self, moment: datetime) -> int:
        """The last position whose event occurred at or before ``moment`` (0 if none)."""

    @abstractmethod
    async def import_events(
        self, items: Iterable[ImportItem] | AsyncIterable[ImportItem]
    ) -> ImportResult:
        """Append every item in one transaction; events already stored with the same id and
        content are skipped. If the iterable raises, nothing is appended."""

    @abstractmethod
    async def verify(self) -> IntegrityReport:
        """Walk the hash chain, the positions and the stream versions."""

    @abstractmethod
    async def wait_for_append(self, after_position: int) -> int:
        """Wait until the head passes ``after_position``; returns the new head. Bound the wait
        with ``anyio.move_on_after``."""

    @abstractmethod
    async def aclose(self) -> None:
        """Close the store."""

    async def __aenter__(self) -> EventStore:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # --- what the read models and the replay read: concrete, with generic defaults that a
    # --- backend overrides with indexed reads (no caller outside a backend writes SQL)

    async def read_rows(
        self,
        from_position: int,
        to_position: int,
        *,
        skip_types: Collection[str] = (),
        keep_streams: Collection[str] = (),
    ) -> list[RawRow]:
        """The stored rows at positions ``from_position`` to ``to_position`` (inclusive) in
        position order, undecoded (:func:`record_from_row` decodes one): one page of a pass
        that decodes only what it needs. Rows of ``skip_types`` are left out, except those of
        ``keep_streams``. Ask for bounded ranges: the page is returned whole."""
        skip = frozenset(skip_types)
        keep = frozenset(keep_streams)
        rows: list[RawRow] = []
        async for rec in self.read_all(from_position, to_position=to_position):
            if rec.type not in skip or rec.stream in keep:
                rows.append(row_from_record(rec))
        return rows

    async def stream_bounds(
        self,
        prefix: str,
        *,
        types: Collection[str] | None = None,
        to_position: int | None = None,
    ) -> dict[str, tuple[int, int]]:
        """The first and last position (up to ``to_position``) of every stream whose name
        starts with ``prefix`` and that holds an event of one of ``types`` (any event when
        ``None``) up to ``to_position``."""
        wanted = None if types is None else frozenset(types)
        bounds: dict[str, tuple[int, int]] = {}
        hit: set[str] = set()
        async for rec in self.read_all(1, to_position=to_position):
            if not rec.stream.startswith(prefix):
                continue
            first = bounds.get(rec.stream, (rec.position, rec.position))[0]
            bounds[rec.stream] = (first, rec.position)
            if wanted is None or rec.type in wanted:
                hit.add(rec.stream)
        return {stream: b for stream, b in bounds.items() if stream in hit}

    async def last_event(self, stream: str, *, to_position: int | None = None) -> Record | None:
        """The last event of ``stream`` at or before ``to_position`` (``None``: none)."""
        last: Record | None = None
        async for rec in self.read_stream(stream, to_position=to_position):
            last = rec
        return last

    # --- the verifiable log (:mod:`ledger.tree`): the events' chain hashes are the leaves --

    tree_threshold: int | None = None
    """The lowest level of the Merkle tree's perfect subtrees the backend keeps (``None``: it
    keeps none, and every node is folded from the leaves when it is needed)."""

    async def leaf_hashes(self, from_position: int, to_position: int) -> list[bytes]:
        """The chain hashes of the events at ``from_position`` to ``to_position`` (inclusive):
        the Merkle tree's leaf inputs. Every backend keeps them; this default has none."""
        raise StoreError(f"{type(self).__name__} does not give its events' chain hashes")

    async def tree_nodes(self, ids: Collection[NodeId]) -> dict[NodeId, bytes]:
        """The stored hashes of these perfect subtrees (those the backend keeps)."""
        return {}

    async def tree_frontier(self) -> Frontier | None:
        """The Merkle tree's right edge at the head, read with the head (``None``: the backend
        keeps no tree)."""
        return None

    @property
    def states(self) -> StateStore:
        """The derived state of the store's read models (:mod:`ledger.states`)."""
        raise StoreError(f"{type(self).__name__} keeps no derived state")

    async def payments_of(self, account_id: str, *, to_position: int | None = None) -> list[str]:
        """The ids of the payments whose ``PaymentRequested`` names ``account_id``, requested at
        or before ``to_position``, in request order."""
        found: list[str] = []
        async for rec in self.query(types=["PaymentRequested"], to_position=to_position):
            if getattr(rec.event, "account_id", None) == account_id:
                found.append(rec.stream.removeprefix("payment-"))
        return found

    async def read_payloads(
        self,
        from_position: int,
        to_position: int,
        *,
        skip_types: Collection[str] = (),
        keep_streams: Collection[str] = (),
        with_stream: bool = False,
    ) -> list[PayloadRow]:
        """:meth:`read_rows` cut to what a pass that decodes the events itself reads: each
        stored event as ``(position, type, schema, data)``, with its stream after them when
        ``with_stream`` (no ids, no timestamps, no hash). The same promise: an unfiltered page
        holds every position of its range up to the head, or raises."""
        rows = await self.read_rows(
            from_position, to_position, skip_types=skip_types, keep_streams=keep_streams
        )
        if with_stream:
            return [(r[0], r[3], r[4], r[10], r[1]) for r in rows]
        return [(r[0], r[3], r[4], r[10]) for r in rows]

    async def read_json_page(self, from_position: int, to_position: int) -> str | None:
        """The events at positions ``from_position`` to ``to_position`` (at most the head) as
        one JSON array of ``[position, event]`` pairs in position order, each event its stored
        JSON (``[[1,{...}],[2,{...}]]``): a pass over the log decodes a page in one call.
        ``None`` when one of them is not stored in its type's current shape or is of a type
        this version does not know: :meth:`read_payloads` reads that page for the caller to
        decode row by row (upcasting, or naming the unknown type). Every position of the range
        up to the head is there, or it raises :class:`DamagedStoreError`."""
        rows = await self.read_payloads(from_position, to_position)
        if any(current_schema(r[1]) != r[2] for r in rows):
            return None
        return "[" + ",".join(f"[{r[0]},{r[3]}]" for r in rows) + "]"

    async def read_account_events(
        self, account_id: str, *, types: Collection[str], to_position: int | None = None
    ) -> list[PayloadRow]:
        """What an account's state is folded from, up to ``to_position``, in position order:
        the events of its own stream (``account-<id>``) and, of the payments whose
        ``PaymentRequested`` names it (:meth:`payments_of`), the events of ``types``, as
        payload rows (:meth:`read_payloads`). Events that do not decode as they are stored (an
        unknown type, an older or newer shape) come whatever their type, so that the caller
        decodes them and learns what they are."""
        wanted = frozenset(types)
        payments = await self.payments_of(account_id, to_position=to_position)
        streams = [f"account-{account_id}", *(f"payment-{p}" for p in payments)]
        rows: list[PayloadRow] = []
        async for rec in self.read_streams(streams, to_position=to_position):
            if (
                rec.stream.startswith("account-")
                or rec.type in wanted
                or (isinstance(rec.event, UnknownEvent))
            ):
                row = row_from_record(rec)
                rows.append((row[0], row[3], row[4], row[10]))
        return rows
