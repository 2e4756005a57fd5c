"""The SQLite backend: one file, WAL, a single writer that group-commits concurrent appends.

The append path, in one place:

1. ``append`` validates and encodes its events in the caller's task (:func:`store.prepare`).
2. It queues a request and waits for its own future. The first request queued while the writer
   is idle posts a *drain* to the writer's thread; the drain takes *every* queued request and
   commits them as one group (:mod:`._sqlite.writer`): ``BEGIN IMMEDIATE``, the planning query,
   the :class:`store.Planner`, the inserts, ``COMMIT``; then takes what was queued meanwhile,
   until nothing is left (or other jobs wait: it then posts itself behind them).
3. ``COMMIT`` (``synchronous=FULL``: the WAL is fsynced), then one call back into the event
   loop answers the whole group: each waiting task is woken once, by its own future.

Positions are assigned under SQLite's write lock from the committed head, so they stay
gap-free across processes; a crash before ``COMMIT`` leaves nothing of the group.

Cancellation: a request not yet taken into a group is withdrawn (nothing appended; taking and
withdrawing are one lock's work, so never both); once taken, its group runs to its end in the
writer's thread and the call returns what it stored, so a cancelled call leaves the store exactly
as before it or exactly as after it. An import holds the drains off while its transaction is
open; cancelled before its ``COMMIT``, it is rolled back, in the thread that began it
(:mod:`._sqlite.thread`).

The file's layout, creation and opening are in :mod:`._sqlite.schema`; reads that refuse to
answer from part of a damaged log in :mod:`._sqlite.reads`; ``verify`` in :mod:`._sqlite.verify`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import threading
from collections.abc import AsyncIterable, AsyncIterator, Callable, Collection, Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import aiosqlite
import anyio

from ._merkle.frontier import Frontier
from ._merkle.tree import NodeId
from ._sqlite import indexed, reads, writer
from ._sqlite.connections import open_connections
from ._sqlite.errors import translate
from ._sqlite.layout import Layout
from ._sqlite.schema import APPLICATION_ID, SCHEMA_VERSION, TREE_THRESHOLD
from ._sqlite.states import SQLiteStates
from ._sqlite.thread import ConnectionThread
from ._sqlite.verify import add_check as _add_check
from ._sqlite.verify import verify as _verify
from .errors import IntegrityError, ReadOnlyError, StoreClosedError, StoreError
from .store import (
    AppendResult,
    Durability,
    EventStore,
    ImportItem,
    ImportResult,
    IntegrityReport,
    PayloadRow,
    Prepared,
    RawRow,
    Record,
    import_chunks,
    prepare_import,
)

__all__ = ["APPLICATION_ID", "SCHEMA_VERSION", "SQLiteEventStore", "add_verify_check"]

add_verify_check = _add_check
"""Register a check that ``verify`` runs once the log and the file have passed (the hook for
checking the projection tables against a fold of the log): ``async (fetch) -> report | None``."""


class SQLiteEventStore(EventStore):
    """The event store in one SQLite file. Open it with :func:`ledger.open_store`.

    Reads go through an aiosqlite connection. Writes go through one plain ``sqlite3``
    connection owned by the writer's thread (:class:`._sqlite.thread.ConnectionThread`): group
    commits are drained there from the queue of appends (see the module docstring); imports,
    derived-state commits and ``aclose`` take the store's write lock.
    """

    def __init__(
        self,
        path: str,
        thread: ConnectionThread | None,
        reader: aiosqlite.Connection,
        *,
        readonly: bool,
        schema_version: int = SCHEMA_VERSION,
    ) -> None:
        self.path = path
        self.readonly = readonly
        self.schema_version = schema_version
        self.layout = Layout(schema_version)
        self._thread = thread
        self._reader = reader
        self._queue: list[writer.Request] = []
        self._queue_lock = threading.Lock()
        """Guards the queue, :attr:`_draining` and :attr:`_held` (the event loop's thread and
        the writer's both use them)."""
        self._draining = False
        """A drain is posted or running: it takes what is queued, so no other is posted."""
        self._held = 0
        """Imports (and ``aclose``) holding the drains off: no group commit meanwhile."""
        self._write_lock = anyio.Lock()
        self._appended = anyio.Event()
        self._closed = False
        self._census_done = False

    # --- opening ---------------------------------------------------------------------------

    @classmethod
    async def open(
        cls,
        path: str | Path,
        *,
        readonly: bool = False,
        durability: Durability = "full",
        busy_timeout: float = 30.0,
        private: bool = False,
    ) -> SQLiteEventStore:
        """Open (creating it if the path is free) the store at ``path``. ``private``: the file
        is this process's alone until the caller links it into place (a new store built
        beside its path): no write-ahead log and no fsync, each page written once; a crash
        leaves a file to throw away, and the caller fsyncs it before making it visible
        (:mod:`._sqlite.connections`)."""
        path = str(path)
        if private and readonly:
            raise ValueError("a private store is opened to be written")
        if durability not in ("full", "normal"):
            raise ValueError(f"durability is 'full' or 'normal', not {durability!r}")
        apath = anyio.Path(path)
        if readonly and not await apath.exists():
            raise StoreError(f"{path}: no such store")
        if await apath.is_dir():
            # (checked before aiosqlite is asked: a failed aiosqlite.connect leaves its worker
            # thread reporting to a loop that may be closed by then)
            raise StoreError(f"{path}: is a directory, not a store")
        thread, reader, version = await open_connections(
            path,
            readonly=readonly,
            durability=durability,
            busy_timeout=busy_timeout,
            private=private,
        )
        return cls(path, thread, reader, readonly=readonly, schema_version=version)

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            with anyio.CancelScope(shield=True):
                async with self._write_lock:  # an import or a derived-state commit ends first
                    with self._queue_lock:
                        self._held += 1  # no group commit from now on
                        left, self._queue = self._queue, []
                    for request in left:  # never taken into a group: nothing appended
                        request.error = StoreClosedError(f"{self.path}: the store is closed")
                    self._resolve(left)
        finally:
            with anyio.CancelScope(shield=True):
                await self._reader.close()
            if self._thread is not None:
                await self._thread.close()  # after the group commit under way, if any

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosedError(f"{self.path}: the store is closed")

    def _writable(self) -> ConnectionThread:
        self._check_open()
        if self._thread is None:
            raise ReadOnlyError(f"{self.path}: the store is opened read-only")
        return self._thread

    # --- appending -------------------------------------------------------------------------

    def _check_append(self) -> None:
        self._writable()

    async def _append_prepared(
        self, stream: str, prepared: list[Prepared], expected_version: int | None
    ) -> AppendResult:
        thread = self._writable()
        future = asyncio.get_running_loop().create_future()
        request = writer.Request(stream, prepared, expected_version, future)
        with self._queue_lock:
            self._queue.append(request)
            post = not self._draining and not self._held
            if post:
                self._draining = True
        if post:
            thread.post(self._drain)
        try:
            await future
        except BaseException:
            with self._queue_lock:
                withdrawn = request in self._queue
                if withdrawn:  # never taken into a group: nothing appended
                    self._queue.remove(request)
            if withdrawn:
                raise
            await self._finish(request)  # taken: its group commits or fails as a whole
            if request.result is None:
                raise
        if request.error is not None:
            raise request.error
        assert request.result is not None
        return request.result

    async def _finish(self, request: writer.Request) -> None:
        """Wait, through cancellation, until the group that took ``request`` has ended."""
        loop = asyncio.get_running_loop()
        while not request.done:
            request.waiter = loop.create_future()
            try:
                with anyio.CancelScope(shield=True):
                    await request.waiter
            except anyio.get_cancelled_exc_class():  # asyncio's own cancellation
                continue

    def _drain(self, conn: sqlite3.Connection | None) -> None:
        """In the writer's thread: commit what is queued, group after group, until the queue
        is empty or an import holds the drains off; when other jobs wait (a derived-state
        commit, the close), post itself behind them instead of going on."""
        assert self._thread is not None
        while True:
            with self._queue_lock:
                if self._held or not self._queue:
                    self._draining = False
                    return
                batch, self._queue = self._queue, []
            self._commit(conn, batch)
            if self._thread.busy():
                self._thread.post(self._drain)
                return

    def _commit(self, conn: sqlite3.Connection | None, batch: list[writer.Request]) -> None:
        """In the writer's thread: one group commit, then one call back into the event loop
        that answers every request of the group."""
        try:
            if conn is None:
                raise sqlite3.ProgrammingError("Cannot operate on a closed database.")
            writer.commit_group(conn, batch)
        except sqlite3.Error as e:
            error = translate(e, f"{self.path}: append", self.path)
            error.__cause__ = e
            for request in batch:
                request.error = error
        except BaseException as e:  # handed to the waiting tasks
            for request in batch:
                request.error = e
        loop = batch[0].future.get_loop()
        with contextlib.suppress(RuntimeError):  # the event loop is gone: nobody waits
            loop.call_soon_threadsafe(self._resolve, batch)

    def _resolve(self, batch: list[writer.Request]) -> None:
        """In the event loop: mark every request of ``batch`` done and wake its task."""
        for request in batch:
            request.done = True
            if not request.future.done():
                request.future.set_result(None)
            waiter = request.waiter
            if waiter is not None and not waiter.done():
                waiter.set_result(None)
        if batch:
            self._notify()

    def _hold(self) -> None:
        """Hold the drains off (an import's transaction spans several jobs of the thread; a
        drain that starts meanwhile leaves the queue as it is)."""
        with self._queue_lock:
            self._held += 1

    def _release(self) -> None:
        """Let the drains go on, and post one for what was queued meanwhile."""
        with self._queue_lock:
            self._held -= 1
            post = not self._held and bool(self._queue) and not self._draining
            if post:
                self._draining = True
        if post and self._thread is not None:
            self._thread.post(self._drain)

    def _notify(self) -> None:
        self._appended.set()
        self._appended = anyio.Event()

    async def import_events(
        self, items: Iterable[ImportItem] | AsyncIterable[ImportItem], *, chunk: int = 5000
    ) -> ImportResult:
        thread = self._writable()
        totals = writer.ImportTotals()
        async with self._write_lock:
            self._hold()
            try:
                self._check_open()
                try:
                    try:
                        await thread.run(writer.begin)
                        plan: writer.Plan | None = None
                        async for batch in import_chunks(items, chunk):
                            prepared = [prepare_import(item) for item in batch]
                            plan = await thread.run(
                                writer.plan_chunk, plan, batch, prepared, totals
                            )
                        # A cancellation that came before COMMIT rolls the import back.
                        await anyio.lowlevel.checkpoint_if_cancelled()
                    except BaseException:
                        await thread.run_through(writer.rollback)
                        raise
                    # COMMIT runs to its end even if the call is cancelled meanwhile: the
                    # import is then stored whole, and its result returned.
                    await thread.run_through(writer.commit)
                except sqlite3.Error as e:
                    raise translate(e, f"{self.path}: import", self.path) from e
            finally:
                self._release()
        self._notify()
        return ImportResult(
            appended=totals.appended,
            skipped=totals.skipped,
            first_position=totals.first,
            last_position=totals.last,
        )

    # --- reading ---------------------------------------------------------------------------

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """Rows of one read-only SQL query on the store's read connection: for read models kept
        in the same file (the projections' tables) and batch passes over the log. The
        connection is ``query_only``, so a statement that would write raises
        :class:`ReadOnlyError`; pass values as ``params``, never in ``sql``.

        The first call checks that the events table holds exactly the positions 1 to the head
        (:func:`._sqlite.reads.census`) and raises :class:`DamagedStoreError` if it does not,
        so a pass over the log never answers from part of it."""
        return await self._guarded(sql, params)

    async def _guarded(self, sql: str, params: Sequence[Any], position: int = 1) -> list[Any]:
        """:meth:`_fetch` once the census has passed (see :meth:`fetch`)."""
        if not self._census_done:
            await reads.census(self._fetch)
            self._census_done = True
        return await self._fetch(sql, params, position)

    async def _fetch(self, sql: str, params: Sequence[Any], position: int = 1) -> list[Any]:
        self._check_open()
        try:
            return list(await self._reader.execute_fetchall(sql, params))
        except sqlite3.Error as e:
            raise translate(e, f"{self.path}: read", self.path, position=position) from e

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
        async for record in reads.read_range(
            self._fetch, self.head, from_position, to_position, page_size
        ):
            yield record

    async def read_stream(
        self, stream: str, from_version: int = 1, *, to_position: int | None = None
    ) -> AsyncIterator[Record]:
        async for record in reads.read_versions(
            self._fetch, self.layout, stream, from_version, to_position
        ):
            yield record

    async def read_streams(
        self,
        streams: Iterable[str],
        *,
        from_position: int = 1,
        to_position: int | None = None,
    ) -> AsyncIterator[Record]:
        names = sorted(set(streams))
        if not names:
            return
        in_streams, params = self.layout.streams_in(names)
        async for record in reads.read_filtered(
            self._fetch, in_streams, params, from_position, to_position
        ):
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
        where, params = reads.query_clauses(
            self.layout, stream, types, since, until, correlation_id
        )
        async for record in reads.read_filtered(
            self._fetch, where, params, from_position, to_position
        ):
            yield record

    # --- what the read models and the replay read (indexed, :mod:`._sqlite.indexed`) ----------

    async def read_rows(
        self,
        from_position: int,
        to_position: int,
        *,
        skip_types: Collection[str] = (),
        keep_streams: Collection[str] = (),
    ) -> list[RawRow]:
        head = await self.head()
        return await indexed.read_rows(
            self._guarded,
            from_position,
            to_position,
            head,
            skip_types=skip_types,
            keep_streams=keep_streams,
        )

    async def read_payloads(
        self,
        from_position: int,
        to_position: int,
        *,
        skip_types: Collection[str] = (),
        keep_streams: Collection[str] = (),
        with_stream: bool = False,
    ) -> list[PayloadRow]:
        return await indexed.read_payloads(
            self._guarded,
            self.head,
            from_position,
            to_position,
            skip_types=skip_types,
            keep_streams=keep_streams,
            with_stream=with_stream,
        )

    async def read_json_page(self, from_position: int, to_position: int) -> str | None:
        return await indexed.read_json_page(self._guarded, self.head, from_position, to_position)

    async def stream_bounds(
        self,
        prefix: str,
        *,
        types: Collection[str] | None = None,
        to_position: int | None = None,
    ) -> dict[str, tuple[int, int]]:
        return await indexed.stream_bounds(
            self._guarded, self.layout, prefix, types=types, to_position=to_position
        )

    async def last_event(self, stream: str, *, to_position: int | None = None) -> Record | None:
        return await indexed.last_event(self._fetch, self.layout, stream, to_position)

    async def payments_of(self, account_id: str, *, to_position: int | None = None) -> list[str]:
        return await indexed.payments_of(self._fetch, account_id, to_position)

    # --- the verifiable log (:mod:`ledger.tree`) ------------------------------------------

    @property
    def tree_threshold(self) -> int | None:  # type: ignore[override]
        return TREE_THRESHOLD if self.schema_version >= 3 else None

    async def leaf_hashes(self, from_position: int, to_position: int) -> list[bytes]:
        low = max(1, from_position)
        if to_position < low:
            return []
        rows = await self._guarded(
            "SELECT position, hash FROM events WHERE position >= ? AND position <= ? "
            "ORDER BY position",
            (low, to_position),
            low,
        )
        for expected, (position, _) in enumerate(rows, start=low):
            if position != expected:
                raise reads.short_read(expected, position)
        if len(rows) != to_position - low + 1:
            raise reads.short_read(low + len(rows), None)
        return [bytes(digest) for _, digest in rows]

    async def tree_nodes(self, ids: Collection[NodeId]) -> dict[NodeId, bytes]:
        if self.schema_version < 3 or not ids:
            return {}
        wanted = sorted(set(ids))
        rows = await self._fetch(
            "SELECT t.level, t.idx, t.hash FROM json_each(?) j JOIN ledger_tree t "
            "ON t.level = json_extract(j.value, '$[0]') AND t.idx = json_extract(j.value, '$[1]')",
            (json.dumps([[n.level, n.index] for n in wanted]),),
        )
        return {NodeId(level, idx): bytes(digest) for level, idx, digest in rows}

    async def tree_frontier(self) -> Frontier | None:
        if self.schema_version < 3:
            return None
        rows = await self._fetch("SELECT frontier FROM ledger_head WHERE id = 1", ())
        if not rows or rows[0][0] is None:
            return None
        return Frontier.from_bytes(rows[0][0])

    async def read_account_events(
        self, account_id: str, *, types: Collection[str], to_position: int | None = None
    ) -> list[PayloadRow]:
        return await indexed.account_events(
            self._fetch, self.layout, account_id, types, to_position
        )

    # --- derived state (the read models' rows, :mod:`._sqlite.states`) ----------------------

    @property
    def states(self) -> SQLiteStates:
        self._check_open()
        return SQLiteStates(self._fetch, self._run_on_writer)

    async def _run_on_writer(self, fn: Callable[[sqlite3.Connection], bool]) -> bool:
        """Run ``fn`` on the writer connection, in its thread, under the write lock (a
        transaction always ends in the thread that began it, cancelled or not)."""
        thread = self._writable()
        async with self._write_lock:
            self._check_open()
            try:
                return await thread.run(fn)
            except sqlite3.Error as e:
                raise translate(e, f"{self.path}: derived state", self.path) from e

    async def head(self) -> int:
        rows = await self._fetch("SELECT position FROM ledger_head WHERE id = 1", ())
        return int(rows[0][0])

    async def stream_version(self, stream: str) -> int:
        rows = await self._fetch(
            f"SELECT MAX(version) FROM events WHERE {self.layout.stream_is}", (stream,)
        )
        value = rows[0][0]
        return int(value) if value is not None else 0

    async def position_at(self, moment: datetime) -> int:
        return await reads.position_at(self._fetch, moment)

    async def wait_for_append(self, after_position: int) -> int:
        """Wait until the head passes ``after_position``; returns the new head. Appends by this
        store wake the waiter at once; appends by other processes are seen by polling (every
        50 ms). Bound the wait with ``anyio.move_on_after``."""
        while True:
            head = await self.head()
            if head > after_position:
                return head
            with anyio.move_on_after(0.05):
                await self._appended.wait()

    # --- integrity -------------------------------------------------------------------------

    async def verify(self) -> IntegrityReport:
        """The chain walk and SQLite's integrity check of the file (:mod:`._sqlite.verify`)."""
        self._check_open()
        return await _verify(self._fetch, self.path, self.schema_version)

    async def check(self) -> None:
        """Raise :class:`IntegrityError` naming the first bad position, if any."""
        report = await self.verify()
        if not report.ok:
            assert report.reason is not None
            raise IntegrityError(report.first_bad_position or 1, report.reason)
