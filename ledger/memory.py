"""The in-memory backend: the same contract as the SQLite store, nothing kept on disk.

Open it with ``open_store(":memory:")``. Rows are the very tuples :class:`store.Planner`
produces, kept in a list whose index is ``position - 1``; validation, idempotency, expected
versions and the hash chain are the shared rules of :mod:`ledger.store`.

Every append plans and applies its rows without an ``await`` in between, so calls from many
tasks of one event loop are atomic and their positions gap-free without a lock; an import
reads (and validates) its whole iterable before it applies anything, so an iterable that
raises leaves the store as it was. The same holds for cancellation: a call cancelled at any of
its awaits has applied nothing, and once it applies it has no await left. ``readonly`` never
applies and ``durability`` means nothing here: the store lives as long as the object.
"""

from __future__ import annotations

import heapq
from bisect import bisect_left
from collections.abc import AsyncIterable, AsyncIterator, Callable, Collection, Iterable, Sequence
from datetime import datetime
from typing import Any, Final

import anyio
import anyio.lowlevel
import msgspec

from ._merkle.frontier import Frontier
from ._merkle.plan import DEFAULT_THRESHOLD as TREE_THRESHOLD
from ._merkle.tree import NodeId
from .errors import IntegrityError, StoreClosedError
from .states import MemoryStates
from .store import (
    GENESIS_HASH,
    AppendResult,
    EventStore,
    ImportItem,
    ImportResult,
    IntegrityReport,
    Planner,
    Prepared,
    RawRow,
    Record,
    Stored,
    chain_hash,
    plan_import,
    prepare_import,
    record_from_row,
    to_micros,
)

__all__ = ["MemoryEventStore"]

_PAGE = 1000
# Row layout (see store.ROW_COLUMNS).
_POSITION, _STREAM, _VERSION, _TYPE, _SCHEMA = 0, 1, 2, 3, 4
_OCCURRED, _RECORDED, _EVENT_ID, _CORRELATION, _CAUSATION, _DATA, _HASH = 5, 6, 7, 8, 9, 10, 11

_Row = tuple[Any, ...]


class _Requested(msgspec.Struct):
    """What the index of payment requests keeps of a ``PaymentRequested``."""

    account_id: str | None = None


_REQUESTED: Final = msgspec.json.Decoder(_Requested)


class MemoryEventStore(EventStore):
    """The event store in a Python list. Open it with ``open_store(":memory:")``."""

    def __init__(self) -> None:
        self.path = ":memory:"
        self.readonly = False
        self._rows: list[_Row] = []
        self._streams: dict[str, list[int]] = {}
        """Each stream's positions, in version order."""
        self._ids: dict[str, Stored] = {}
        self._requests: dict[str, list[tuple[int, str]]] = {}
        """The payment requests naming each account: (position, payment id), in log order
        (what the SQLite store's index of requests by account gives)."""
        self._head_hash = GENESIS_HASH
        self._summed = 0
        """The running total of the amounts the projections add up (``store.SUMMED_TYPES``)."""
        self._appended: anyio.Event | None = None
        self._closed = False
        self._states = MemoryStates(lambda: len(self._rows))
        self._frontier = Frontier()
        self._nodes: dict[NodeId, bytes] = {}
        """The Merkle tree's perfect subtrees at ``level >= tree_threshold``."""

    tree_threshold = TREE_THRESHOLD

    @property
    def states(self) -> MemoryStates:
        self._check_open()
        return self._states

    async def aclose(self) -> None:
        self._closed = True
        self._notify()

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosedError(f"{self.path}: the store is closed")

    # --- appending -------------------------------------------------------------------------

    def _planner(self, prepared: Iterable[Prepared]) -> Planner:
        planner = Planner(
            len(self._rows),
            self._head_hash,
            summed_minor=self._summed,
            frontier=self._frontier.copy(),
            threshold=TREE_THRESHOLD,
        )
        for p in prepared:
            positions = self._streams.get(p.stream)
            if positions:
                planner.versions[p.stream] = len(positions)
            if p.explicit_id:
                hit = self._ids.get(p.event_id)
                if hit is not None:
                    planner.stored[p.event_id] = hit
        return planner

    def _apply(self, planner: Planner) -> None:
        grown = planner.grow_tree()
        for row in planner.rows:
            assert row[_POSITION] == len(self._rows) + 1
            self._rows.append(row)
            self._streams.setdefault(row[_STREAM], []).append(row[_POSITION])
            if row[_TYPE] == "PaymentRequested":
                account_id = _REQUESTED.decode(row[_DATA]).account_id
                if account_id is not None:
                    self._requests.setdefault(account_id, []).append(
                        (row[_POSITION], row[_STREAM].removeprefix("payment-"))
                    )
            self._ids[row[_EVENT_ID]] = Stored(
                row[_POSITION], row[_STREAM], row[_VERSION], row[_DATA]
            )
        self._head_hash = planner.head_hash
        self._summed = planner.summed_minor
        if planner.rows:
            assert planner.frontier is not None
            self._frontier = planner.frontier
            self._nodes.update(grown)
            self._notify()

    def _notify(self) -> None:
        if self._appended is not None:
            self._appended.set()
            self._appended = None

    def _check_append(self) -> None:
        self._check_open()

    async def _append_prepared(
        self, stream: str, prepared: list[Prepared], expected_version: int | None
    ) -> AppendResult:
        await anyio.lowlevel.checkpoint()
        self._check_open()
        # From here to the end: no await, so the call is atomic among the loop's tasks.
        planner = self._planner(prepared)
        result = planner.plan(stream, prepared, expected_version)
        self._apply(planner)
        return result

    async def import_events(
        self, items: Iterable[ImportItem] | AsyncIterable[ImportItem]
    ) -> ImportResult:
        self._check_open()
        batch: list[tuple[ImportItem, Prepared]] = []
        if isinstance(items, AsyncIterable):
            async for item in items:
                batch.append((item, prepare_import(item)))
        else:
            for item in items:
                batch.append((item, prepare_import(item)))
        await anyio.lowlevel.checkpoint()
        self._check_open()
        planner = self._planner(p for _, p in batch)
        appended = skipped = 0
        first: int | None = None
        last: int | None = None
        for item, p in batch:
            result = plan_import(planner, item, p)
            if result.duplicate:
                skipped += 1
            else:
                appended += 1
                first = first or result.positions[0]
                last = result.positions[-1]
        self._apply(planner)
        return ImportResult(
            appended=appended, skipped=skipped, first_position=first, last_position=last
        )

    # --- reading ---------------------------------------------------------------------------

    async def _scan(
        self,
        positions: Callable[[], Iterable[int]],
        keep: Callable[[_Row], bool] | None = None,
    ) -> AsyncIterator[Record]:
        """Yield the records at ``positions`` (re-evaluated lazily), one page between
        checkpoints, so that a long read never starves the other tasks."""
        for count, position in enumerate(positions(), start=1):
            self._check_open()
            row = self._rows[position - 1]
            if keep is None or keep(row):
                yield record_from_row(row)
            if count % _PAGE == 0:
                await anyio.lowlevel.checkpoint()

    def _of_streams(
        self, names: Collection[str], from_position: int, to_position: int | None
    ) -> Iterable[int]:
        """The positions of the streams ``names`` from ``from_position``, in order, through
        each stream's own list (never the whole log), a page at a time as the SQLite store
        reads: each page is taken from the lists as they are then, so events appended
        meanwhile are read until a page comes back short."""
        position = max(1, from_position)
        while True:
            parts = []
            for name in names:
                listed = self._streams.get(name)
                if listed:
                    start = bisect_left(listed, position)
                    parts.append(listed[start : start + _PAGE])
            page = [p for p in heapq.merge(*parts) if to_position is None or p <= to_position][
                :_PAGE
            ]
            yield from page
            if len(page) < _PAGE:
                return
            position = page[-1] + 1

    def _range(self, from_position: int, to_position: int | None) -> Iterable[int]:
        position = max(1, from_position)
        while position <= len(self._rows) and (to_position is None or position <= to_position):
            yield position
            position += 1

    async def read_all(
        self,
        from_position: int = 1,
        *,
        to_position: int | None = None,
        page_size: int = 1000,
    ) -> AsyncIterator[Record]:
        if isinstance(page_size, bool) or not isinstance(page_size, int) or page_size < 1:
            raise ValueError(f"page_size is an integer >= 1, not {page_size!r}")
        self._check_open()
        async for record in self._scan(lambda: self._range(from_position, to_position)):
            yield record

    async def read_stream(
        self, stream: str, from_version: int = 1, *, to_position: int | None = None
    ) -> AsyncIterator[Record]:
        self._check_open()

        def positions() -> Iterable[int]:
            index = max(1, from_version) - 1
            while True:
                listed = self._streams.get(stream, [])
                if index >= len(listed):
                    return
                position = listed[index]
                if to_position is not None and position > to_position:
                    return
                yield position
                index += 1

        async for record in self._scan(positions):
            yield record

    async def read_streams(
        self,
        streams: Iterable[str],
        *,
        from_position: int = 1,
        to_position: int | None = None,
    ) -> AsyncIterator[Record]:
        self._check_open()
        names = frozenset(streams)
        if not names:
            return
        async for record in self._scan(lambda: self._of_streams(names, from_position, to_position)):
            yield record

    async def query(
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
        self._check_open()
        wanted = frozenset(types) if types else None
        since_us = None if since is None else to_micros(since)
        until_us = None if until is None else to_micros(until)

        def keep(row: _Row) -> bool:
            return (
                (stream is None or row[_STREAM] == stream)
                and (wanted is None or row[_TYPE] in wanted)
                and (since_us is None or row[_OCCURRED] >= since_us)
                and (until_us is None or row[_OCCURRED] <= until_us)
                and (correlation_id is None or row[_CORRELATION] == correlation_id)
            )

        def positions() -> Iterable[int]:
            if stream is not None:  # that stream's own list, not the whole log
                return self._of_streams((stream,), from_position, to_position)
            return self._range(from_position, to_position)

        async for record in self._scan(positions, keep):
            yield record

    async def payments_of(self, account_id: str, *, to_position: int | None = None) -> list[str]:
        self._check_open()
        await anyio.lowlevel.checkpoint()
        return [
            payment
            for position, payment in self._requests.get(account_id, ())
            if to_position is None or position <= to_position
        ]

    async def read_rows(
        self,
        from_position: int,
        to_position: int,
        *,
        skip_types: Collection[str] = (),
        keep_streams: Collection[str] = (),
    ) -> list[RawRow]:
        self._check_open()
        rows = self._rows[max(1, from_position) - 1 : max(0, to_position)]
        if skip_types:
            skip, keep = frozenset(skip_types), frozenset(keep_streams)
            rows = [r for r in rows if r[_TYPE] not in skip or r[_STREAM] in keep]
        return [r[:_HASH] for r in rows]

    async def stream_bounds(
        self,
        prefix: str,
        *,
        types: Collection[str] | None = None,
        to_position: int | None = None,
    ) -> dict[str, tuple[int, int]]:
        self._check_open()
        end = len(self._rows) if to_position is None else to_position
        wanted = None if types is None else frozenset(types)
        found: dict[str, tuple[int, int]] = {}
        for stream, listed in self._streams.items():
            if not stream.startswith(prefix) or listed[0] > end:
                continue
            upto = [p for p in listed if p <= end]
            if wanted is None or any(self._rows[p - 1][_TYPE] in wanted for p in upto):
                found[stream] = (upto[0], upto[-1])
        return found

    async def last_event(self, stream: str, *, to_position: int | None = None) -> Record | None:
        self._check_open()
        end = len(self._rows) if to_position is None else to_position
        for position in reversed(self._streams.get(stream, [])):
            if position <= end:
                return record_from_row(self._rows[position - 1])
        return None

    async def leaf_hashes(self, from_position: int, to_position: int) -> list[bytes]:
        self._check_open()
        return [bytes(r[_HASH]) for r in self._rows[max(1, from_position) - 1 : to_position]]

    async def tree_nodes(self, ids: Collection[NodeId]) -> dict[NodeId, bytes]:
        self._check_open()
        return {node: self._nodes[node] for node in ids if node in self._nodes}

    async def tree_frontier(self) -> Frontier:
        self._check_open()
        return self._frontier.copy()

    async def head(self) -> int:
        self._check_open()
        await anyio.lowlevel.checkpoint()
        return len(self._rows)

    async def stream_version(self, stream: str) -> int:
        self._check_open()
        await anyio.lowlevel.checkpoint()
        return len(self._streams.get(stream, ()))

    async def position_at(self, moment: datetime) -> int:
        self._check_open()
        await anyio.lowlevel.checkpoint()
        bound = to_micros(moment)
        for row in reversed(self._rows):
            if row[_OCCURRED] <= bound:
                return int(row[_POSITION])
        return 0

    async def wait_for_append(self, after_position: int) -> int:
        """Wait until the head passes ``after_position``; returns the new head. Bound the wait
        with ``anyio.move_on_after``."""
        while True:
            self._check_open()
            if len(self._rows) > after_position:
                await anyio.lowlevel.checkpoint()
                return len(self._rows)
            if self._appended is None:
                self._appended = anyio.Event()
            await self._appended.wait()

    # --- integrity -------------------------------------------------------------------------

    async def verify(self) -> IntegrityReport:
        self._check_open()
        prev, expected = GENESIS_HASH, 1
        versions: dict[str, int] = {}

        def bad(position: int, reason: str) -> IntegrityReport:
            return IntegrityReport(
                ok=False,
                checked=expected - 1,
                head_position=expected - 1,
                head_hash=prev.hex(),
                first_bad_position=position,
                reason=reason,
            )

        rows, head_hash = list(self._rows), self._head_hash
        for row in rows:
            position, stream, version = row[_POSITION], row[_STREAM], row[_VERSION]
            if position != expected:
                return bad(expected, f"position {expected} is missing (next is {position})")
            if version != versions.get(stream, 0) + 1:
                return bad(position, f"stream {stream!r} jumps to version {version}")
            digest = chain_hash(
                prev,
                position,
                stream,
                version,
                row[_EVENT_ID],
                row[_CORRELATION],
                row[_CAUSATION],
                row[_RECORDED],
                row[_SCHEMA],
                row[_DATA],
            )
            if digest != row[_HASH]:
                return bad(position, "its hash does not match its content and the chain")
            versions[stream] = version
            prev, expected = digest, expected + 1
            if expected % _PAGE == 0:
                await anyio.lowlevel.checkpoint()
        if prev != head_hash:
            return bad(max(expected - 1, 1), "the head hash does not match the log")
        await anyio.lowlevel.checkpoint()
        return IntegrityReport(
            ok=True, checked=expected - 1, head_position=expected - 1, head_hash=prev.hex()
        )

    async def check(self) -> None:
        """Raise :class:`IntegrityError` naming the first bad position, if any."""
        report = await self.verify()
        if not report.ok:
            assert report.first_bad_position is not None
            assert report.reason is not None
            raise IntegrityError(report.first_bad_position, report.reason)
