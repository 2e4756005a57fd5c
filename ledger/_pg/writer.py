"""The writer: one connection per store, and the group commits and imports that run on it.

The append path, in one place:

1. ``append`` validates and encodes its events in the caller's task, queues a request and waits.
2. The *driver*, a task of the store's own (never a caller's, so no caller's cancellation can
   interrupt a transaction half way), yields a few times so that every ready append joins, then
   takes the whole queue as one group and commits it in one transaction, in four round trips:

   - ``BEGIN`` (read committed: each statement sees what committed before it began);
   - ``ledger_lock_head(streams, ids)``: locks the one-row ``ledger_head`` (``FOR UPDATE``:
     every writer of every process queues here, so commits happen in position order), then reads
     the head (its position, hash, running total and frontier), the current version of each
     stream of the group and the events already stored under its explicit ids, each with a
     snapshot taken after the lock was granted;
   - :class:`ledger.store.Planner` checks each request on its own (a conflict, a duplicate or an
     amount past the ceiling on summed amounts fails that request only) and assigns positions,
     versions and hashes, starting from the head's running total and Merkle frontier; one
     statement inserts every row (``unnest`` of one array per column) and the tree's completed
     nodes, moves the head past them with the new total and frontier, and queues the wake-up
     ``NOTIFY``;
   - ``COMMIT`` (``synchronous_commit=on``: durable before the server answers).

3. Every request of the group is answered, and the tasks they wake queue the next group.

When the connection is lost before ``COMMIT`` was sent, PostgreSQL rolls the transaction back:
the group fails with a :class:`StoreError` and the next group reconnects. When it is lost while
``COMMIT`` was in flight, the outcome is looked up on a new connection, under the head lock (so
after the lost transaction has ended): is the group's last event at its planned position? A
caller is told "stored" or "not stored", and only when even that cannot be learnt, that the
outcome is unknown.

A store still at schema version 1 or 2 (opened by a role that may not upgrade it) has no running
total or tree in its head: its lock returns no row of kind 3, and the rows are written as version
2 wrote them (:data:`~ledger._pg.sql.WRITE`), the ceiling holding within each group. Should the
store be upgraded while such a group waited for the head, its write is refused by the head's
frontier check; the group is then planned once more, on the upgraded head.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable, Sequence
from typing import Any, Final, TypeVar

import anyio
import asyncpg

from .._merkle.frontier import Frontier
from ..errors import (
    ConcurrencyError,
    DuplicateEventError,
    EventValidationError,
    LedgerError,
    StoreClosedError,
    StoreError,
)
from ..store import (
    AppendResult,
    ImportItem,
    ImportResult,
    Planner,
    Prepared,
    Stored,
    import_chunks,
    plan_import,
    prepare_import,
)
from .connect import Connection, Settings, close, connect
from .errors import is_connection_error, translate
from .schema import FRONTIER_AT_HEAD, TREE_THRESHOLD
from .sql import LOCK_HEAD, WRITE, WRITE_TREE, escape, unescape, write_args, write_tree_args

__all__ = ["Request", "Writer", "settle"]

T = TypeVar("T")

_BEGIN: Final = "BEGIN ISOLATION LEVEL READ COMMITTED READ WRITE"
"""Whatever the server's defaults: each statement after the head lock must see the commits made
before the lock was granted (a snapshot per statement), and the transaction writes."""
_GATHER_PASSES: Final = 4
"""How many times the driver yields, before it takes the queue, to let more appends join."""


class Request:
    """One ``append`` call waiting for its group."""

    __slots__ = ("done", "error", "expected_version", "prepared", "result", "stream", "taken")

    def __init__(self, stream: str, prepared: list[Prepared], expected: int | None) -> None:
        self.stream = stream
        self.prepared = prepared
        self.expected_version = expected
        self.taken = False
        self.done = anyio.Event()
        self.result: AppendResult | None = None
        self.error: BaseException | None = None


async def settle(aw: Awaitable[T]) -> T:
    """Await ``aw`` (a ``COMMIT``) to its end in a task of its own, and return its result or
    raise its error. A cancellation of the caller (a cancel scope, ``asyncio.wait_for``,
    Ctrl-C) that arrives meanwhile waits for it instead of interrupting it, and does not turn
    a commit that was made into an exception: the caller is told what was stored, as on
    SQLite (under anyio, the cancellation is delivered at the caller's next checkpoint)."""
    task = asyncio.ensure_future(aw)
    with anyio.CancelScope(shield=True):
        while not task.done():
            try:
                await asyncio.wait([task])
            except asyncio.CancelledError:
                continue
    return task.result()


class Writer:
    """The writing half of a :class:`ledger.postgres.PostgresEventStore`."""

    def __init__(self, settings: Settings, where: str, on_commit: Callable[[], None]) -> None:
        self._settings = settings
        self._where = where
        self._on_commit = on_commit
        self._conn: Connection | None = None
        self._lock = anyio.Lock()
        """Held by a group commit or an import: one transaction at a time on the connection."""
        self._queue: list[Request] = []
        self._driver: asyncio.Task[None] | None = None
        self._driver_done = anyio.Event()
        self._driver_done.set()
        self._closed = False

    def adopt(self, conn: Connection) -> None:
        self._conn = conn

    @property
    def connection(self) -> Connection | None:
        """The writer's connection, if open (for tests and diagnostics)."""
        return self._conn

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosedError(f"{self._where}: the store is closed")

    def _error(self, e: BaseException, what: str) -> LedgerError:
        return translate(e, f"{self._where}: {what}", self._settings.url)

    # --- the connection ----------------------------------------------------------------

    async def _connection(self) -> Connection:
        conn = self._conn
        if conn is None or conn.is_closed():
            self._conn = None
            if conn is not None:
                conn.terminate()
            conn = self._conn = await connect(self._settings, writer=True)
        return conn

    def _drop(self, conn: Connection) -> None:
        """Forget a connection whose state is unknown; the server rolls back what it held."""
        if self._conn is conn:
            self._conn = None
        conn.terminate()

    async def _begin(self) -> Connection:
        """A connection with a transaction begun. A connection the server closed while it sat
        idle is replaced once: nothing of the transaction was sent on it."""
        conn = await self._connection()
        try:
            await conn.execute(_BEGIN)
        except Exception as e:
            if not is_connection_error(e):
                raise
            self._drop(conn)
            conn = await self._connection()
            await conn.execute(_BEGIN)
        return conn

    async def _rollback(self, conn: Connection) -> None:
        if conn.is_closed():
            self._drop(conn)
            return
        try:
            with anyio.CancelScope(shield=True), anyio.fail_after(10):
                await conn.execute("ROLLBACK")
        except Exception:
            self._drop(conn)

    async def _commit(self, conn: Connection) -> None:
        """Send ``COMMIT`` (a seam: the tests hold a transaction open here)."""
        await conn.execute("COMMIT")

    async def _stored(self, row: tuple[Any, ...]) -> bool | None:
        """After the connection was lost during ``COMMIT``: is ``row`` (a planned row: position
        first, event id eighth) stored? ``None`` when that cannot be learnt.

        The answer is read under the head lock, on a new connection: the lost transaction held
        that lock, so once it is granted the lost transaction has ended, committed or not (a
        server that has not yet noticed the lost client makes this wait, up to the lock
        timeout)."""
        try:
            conn = await self._connection()
            async with conn.transaction(isolation="read_committed"):
                await conn.execute("SELECT 1 FROM ledger_head WHERE id = 1 FOR UPDATE")
                position = await conn.fetchval(
                    "SELECT position FROM events WHERE event_id = $1", row[7]
                )
        except Exception:
            return None
        return bool(position == row[0])

    # --- planning ------------------------------------------------------------------------

    @staticmethod
    async def _plan(conn: Connection, streams: Sequence[str], ids: Sequence[str]) -> Planner:
        """Lock the head and read what planning needs (in the open transaction). The planner
        keeps the tree (its ``frontier`` set) when the store does (schema version 3)."""
        rows = await conn.fetch(LOCK_HEAD, [escape(s) for s in streams], list(ids))
        head: tuple[int, bytes] | None = None
        kept: tuple[int, Frontier] | None = None
        versions: dict[str, int] = {}
        stored: dict[str, Stored] = {}
        for kind, key, number, stream, version, data, digest in rows:
            if kind == 0:
                head = (number, bytes(digest))
            elif kind == 1:
                if number is not None:
                    versions[unescape(key)] = number
            elif kind == 2:
                stored[key] = Stored(number, unescape(stream), version, data)
            elif kind == 3:
                kept = (number, Frontier.from_bytes(digest))
        if head is None:
            raise StoreError("the store's head row is missing")
        if kept is None:
            planner = Planner(*head)
        else:
            planner = Planner(
                *head, summed_minor=kept[0], frontier=kept[1], threshold=TREE_THRESHOLD
            )
        planner.versions = versions
        planner.stored = stored
        return planner

    @staticmethod
    async def _write(conn: Connection, planner: Planner) -> None:
        """Write the rows ``planner`` planned since it was read, and move the head past them
        (with the tree's completed nodes, the running total and the frontier, when kept)."""
        if not planner.rows:
            return
        if planner.frontier is None:
            args = write_args(planner.rows, planner.head_position, planner.head_hash)
            await conn.execute(WRITE, *args)
            return
        nodes = planner.grow_tree()
        args = write_tree_args(
            planner.rows,
            planner.head_position,
            planner.head_hash,
            nodes,
            planner.summed_minor,
            planner.frontier.to_bytes(),
        )
        await conn.execute(WRITE_TREE, *args)

    # --- appending -----------------------------------------------------------------------

    async def append(
        self, stream: str, prepared: list[Prepared], expected_version: int | None
    ) -> AppendResult:
        self._check_open()
        request = Request(stream, prepared, expected_version)
        self._queue.append(request)
        if self._driver is None:
            self._driver_done = anyio.Event()
            loop = asyncio.get_running_loop()
            self._driver = loop.create_task(self._drive(), name="payledger group commit")
        try:
            await request.done.wait()
        except BaseException:
            if not request.taken:  # never sent: nothing of it can be stored
                self._queue.remove(request)
                raise
            with anyio.CancelScope(shield=True):  # in flight: wait until it is settled
                await request.done.wait()
            if request.result is None or request.error is not None:
                raise  # nothing of this call was stored
            return request.result  # committed: say so, as a call that was not stopped does
        if request.error is not None:
            raise request.error
        assert request.result is not None
        return request.result

    async def _drive(self) -> None:
        """Commit groups until the queue is empty (the store's own task; see the docstring)."""
        try:
            while self._queue:
                queued = -1
                for _ in range(_GATHER_PASSES):
                    if len(self._queue) == queued:
                        break
                    queued = len(self._queue)
                    await asyncio.sleep(0)
                async with self._lock:
                    batch, self._queue = self._queue, []
                    for request in batch:
                        request.taken = True
                    try:
                        if self._closed:
                            closed = StoreClosedError(f"{self._where}: the store is closed")
                            for request in batch:
                                request.error = closed
                        else:
                            await self._commit_group(batch)
                    except BaseException as e:
                        for request in batch:
                            request.result, request.error = None, e
                        raise
                    finally:
                        for request in batch:
                            request.done.set()
                self._on_commit()
        finally:
            self._driver = None
            self._driver_done.set()

    async def _commit_group(self, batch: list[Request]) -> None:
        """Plan and write a group in one transaction. A conflict fails its request only; any
        other failure fails the group, and then nothing of it is stored."""
        streams = sorted({r.stream for r in batch})
        ids = [p.event_id for r in batch for p in r.prepared if p.explicit_id]
        for attempt in (1, 2):
            conn: Connection | None = None
            planner: Planner | None = None
            committing = False
            for request in batch:
                request.result, request.error = None, None
            try:
                conn = await self._begin()
                planner = await self._plan(conn, streams, ids)
                for request in batch:
                    try:
                        request.result = planner.plan(
                            request.stream, request.prepared, request.expected_version
                        )
                    except (ConcurrencyError, DuplicateEventError, EventValidationError) as e:
                        request.error = e
                if planner.rows:
                    await self._write(conn, planner)
                    committing = True
                    await self._commit(conn)
                else:
                    await conn.execute("ROLLBACK")
            except Exception as e:
                if attempt == 1 and _upgraded_meanwhile(e, planner):
                    assert conn is not None
                    await self._rollback(conn)
                    continue
                last = planner.rows[-1] if committing and planner is not None else None
                error = await self._failed(conn, e, last, "append")
                if error is not None:
                    for request in batch:
                        if request.result is not None or request.error is None:
                            request.result, request.error = None, error
            return

    async def _failed(
        self, conn: Connection | None, e: Exception, last_row: tuple[Any, ...] | None, what: str
    ) -> LedgerError | None:
        """The error a failed transaction gives its callers, once the connection is clean (or
        dropped). ``last_row`` is the transaction's last planned row when ``e`` came from its
        ``COMMIT``: then, the connection lost, the answer is looked up, and ``None`` returned
        when the rows turn out to be stored."""
        if last_row is not None and is_connection_error(e):
            if conn is not None:
                self._drop(conn)
            stored = await self._stored(last_row)
            if stored:
                return None
            if stored is None:
                return StoreError(
                    f"{self._where}: {what}: the connection to the server was lost during "
                    "COMMIT and whether the events were stored is unknown (read the stream, or "
                    "retry with the same event_ids)"
                )
        elif conn is not None:
            await self._rollback(conn)
        if isinstance(e, LedgerError):
            return e
        error = self._error(e, what)
        error.__cause__ = e
        return error

    # --- importing -----------------------------------------------------------------------

    async def import_events(
        self, items: Iterable[ImportItem] | AsyncIterable[ImportItem], chunk: int
    ) -> ImportResult:
        totals = [0, 0]  # appended, skipped
        bounds: list[int] = []

        async def plan_chunk(
            conn: Connection,
            planner: Planner | None,
            batch: list[ImportItem],
            prepared: list[Prepared],
        ) -> Planner:
            known = () if planner is None else planner.versions
            streams = sorted({p.stream for p in prepared} - set(known))
            fresh = await self._plan(conn, streams, [p.event_id for p in prepared if p.explicit_id])
            if planner is None:
                planner = fresh
            else:
                planner.versions.update(fresh.versions)
                planner.stored = fresh.stored  # earlier chunks are in the table by now
                planner.rows = []
            for item, p in zip(batch, prepared, strict=True):
                result = plan_import(planner, item, p)
                if result.duplicate:
                    totals[1] += 1
                else:
                    totals[0] += 1
                    if not bounds:
                        bounds.append(result.positions[0])
                    bounds[1:] = [result.positions[-1]]
            await self._write(conn, planner)
            return planner

        async with self._lock:
            self._check_open()
            conn: Connection | None = None
            last_row: tuple[Any, ...] | None = None
            committing = in_source = False
            batches = import_chunks(items, chunk).__aiter__()
            try:
                conn = await self._begin()
                planner: Planner | None = None
                while True:
                    in_source = True  # the caller's items (and their validation) run here
                    try:
                        batch = await batches.__anext__()
                    except StopAsyncIteration:
                        break
                    prepared = [prepare_import(item) for item in batch]
                    in_source = False
                    planner = await plan_chunk(conn, planner, batch, prepared)
                    if planner.rows:
                        last_row = planner.rows[-1]
                if last_row is None:
                    await self._rollback(conn)
                else:
                    committing = True
                    await settle(self._commit(conn))
            except Exception as e:
                if in_source:  # the items' own error, or a bad item: raised as it is
                    if conn is not None:
                        await self._rollback(conn)
                    raise
                last = last_row if committing else None
                error = await self._failed(conn, e, last, "import")
                if error is e:
                    raise
                if error is not None:
                    raise error from e
            except BaseException:  # cancelled before COMMIT: nothing is stored (a cancellation
                if committing:  # during it waits for it: see settle); the COMMIT itself
                    if conn is not None:  # interrupted from inside (the loop shutting down):
                        self._drop(conn)  # its outcome unknown, the connection is not reused
                    self._on_commit()
                elif conn is not None:
                    await self._rollback(conn)
                raise
        if last_row is not None:
            self._on_commit()
        return ImportResult(
            appended=totals[0],
            skipped=totals[1],
            first_position=bounds[0] if bounds else None,
            last_position=bounds[-1] if bounds else None,
        )

    # --- closing -------------------------------------------------------------------------

    async def aclose(self) -> None:
        """Finish the group in flight, fail the queued ones, wait for an import, close."""
        self._closed = True
        with anyio.CancelScope(shield=True):
            await self._driver_done.wait()
            async with self._lock:
                conn, self._conn = self._conn, None
                if conn is not None:
                    await close(conn)


def _upgraded_meanwhile(e: Exception, planner: Planner | None) -> bool:
    """Whether ``e`` is the head's frontier check refusing a group planned without the tree:
    the store was upgraded to schema version 3 while the group waited for the head."""
    return (
        isinstance(e, asyncpg.exceptions.CheckViolationError)
        and getattr(e, "constraint_name", None) == FRONTIER_AT_HEAD
        and planner is not None
        and planner.frontier is None
    )
