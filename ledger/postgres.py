"""The PostgreSQL backend: one database shared by a fleet of service instances.

Open it with ``open_store("postgresql://user@host:5432/dbname")`` (or ``postgres://``). The
contract is the SQLite store's, checked by the same suite (``tests/store_contract.py``); the same
events give the same positions, versions and SHA-256 chain on both, so an export of either
imports into the other and exports again line for line.

What the design guarantees
--------------------------
- **Commit order is position order, across processes and machines.** Every append transaction
  locks the one-row ``ledger_head`` table (``SELECT ... FOR UPDATE``) before it plans, assigns
  its positions from the head it locked, and moves the head in the same transaction. The next
  writer, in any process, waits for that lock, so it can neither take a position before the
  previous transaction commits nor commit before it. Every snapshot of the database therefore
  holds a prefix 1..n of the log: a reader following the tail (``read_all(from_position=n)``,
  ``wait_for_append``) can never skip an event that commits late, and positions have no gaps,
  not even from a rollback (a rolled-back transaction never moved the head). Reads are bounded
  by the committed head, read in the same statement.
- **Durable on commit**: ``synchronous_commit=on`` is set on the writer's connection (in its
  startup packet; ``durability="normal"`` sets it ``off``: an append then survives a crash of the
  client but not of the server). An append returns once ``COMMIT`` did.
- **Atomic, all or nothing**: one transaction per group commit and per import. A cancelled or
  timed-out append or import leaves the store exactly as before the call or as after it: the
  transaction runs in the store's own task (appends) or is rolled back, and ``COMMIT`` is never
  interrupted (:func:`ledger._pg.writer.settle`); what a stopped call reports is the truth, as
  on SQLite: a call whose transaction committed returns its result, a call that raises the
  cancellation stored nothing. A connection killed mid-append
  (``pg_terminate_backend``, a restart) fails that call with a :class:`StoreError`, nothing of it
  stored, and the next call reconnects; killed while its ``COMMIT`` was in flight, the call
  looks up, under the head lock, which of the two happened, and answers accordingly.
- **Tamper-evident**: triggers refuse ``UPDATE``, ``DELETE`` and ``TRUNCATE`` on ``events``;
  :meth:`PostgresEventStore.verify` walks the chain, the positions, the stream versions and the
  head (its hash and its running total of summed amounts), and names the first bad position of a
  log altered with the triggers disabled.
- **Sums that fit, across the fleet**: the head row keeps the running total of the amounts the
  projections add up (``summed_minor``); each transaction plans from the total it locked and
  writes the new one with its rows, so an append or import that would take the log's total past
  ``MAX_SUMMED_MINOR`` is refused (that call only, in a group commit) whichever process made the
  earlier ones.
- **A verifiable log** (:mod:`ledger.tree`): the append and import transactions keep the log's
  Merkle tree with the events, its right edge (``frontier``) in the head row and its perfect
  subtrees of 64 leaves and up in ``ledger_tree``, so the root of the whole log costs one read
  and a proof O(log n) reads. A check on the head row refuses a head moved without its frontier.
- **Group commit per process**: concurrent ``append`` calls on one store object share one
  transaction of four round trips (``BEGIN``; lock the head and read it, versions and stored ids;
  insert every row and the tree's new nodes, move the head, queue the ``NOTIFY``; ``COMMIT``);
  each call's ``expected_version`` and amounts are checked on its own.

What it costs
-------------
- **Commits are serialised** across the whole fleet: one append transaction at a time holds the
  head row, from the lock to the end of its ``COMMIT`` (two round trips, the planning of its
  rows and the WAL flush). ``python -m bench postgres`` measures it beside raw asyncpg in the
  same run; on the 2-core development machine (PostgreSQL 15 on the same machine, fsync on,
  medians of 5): 4 processes appending one event per transaction (nothing to group) commit
  about 500 times a second in all, 0.4x raw asyncpg committing the same inserts in parallel
  (about 1,300 a second), which may commit out of position order. Group commit buys it back:
  4 processes x 64 tasks of single-event durable appends reach about 12,000 events a second in
  groups of 64, 6x raw asyncpg committing each event in its own transaction (about 1,750 a
  second). The machine is shared and noisy: single repetitions ranged from 4x to 8x.
- A transaction of the store that stalls (a paused client) stalls every writer, up to the lock
  timeout (``busy_timeout``, 30 s by default), after which their appends fail with
  :class:`StoreError`; an import holds the head for the whole import.
- Each ``NOTIFY`` takes PostgreSQL's notification queue lock at commit (already serialised here).
- Behind a pooler in transaction mode (PgBouncer), LISTEN does not work (``wait_for_append``
  falls back to polling) and asyncpg's prepared statements need session pooling: point the store
  at PostgreSQL or at a session-mode pool.

Connections per store object: one writer (none when read-only), up to ``readers`` reading
connections opened on demand (read-only sessions: ``default_transaction_read_only=on``), one
listening connection once ``wait_for_append`` is used, and one for the read models' commits
once one is made (``states``, :mod:`ledger._pg.states`).

Schema versions and their upgrades: :mod:`ledger._pg.schema` (version 3 today).

Read models: ``states`` keeps their rows in two tables beside the events, and ``read_rows``,
``stream_bounds``, ``last_event`` and ``payments_of`` are single indexed statements
(:mod:`ledger._pg.reads`), so the projections, time travel and the replay read what they need
rather than the whole log.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Collection, Iterable, Sequence
from datetime import datetime
from typing import Any, Final

import anyio
import asyncpg

from ._merkle.frontier import Frontier
from ._merkle.tree import NodeId
from ._pg import reads
from ._pg.connect import Connection, Settings, close, connect
from ._pg.errors import is_connection_error, translate
from ._pg.listener import Listener
from ._pg.pool import Pool
from ._pg.schema import SCHEMA_VERSION, TREE_THRESHOLD, check_or_create
from ._pg.sql import (
    BACKWARDS,
    BY_TIME,
    HEAD_BOUND,
    MAX_POSITION,
    POSITION_ENDS,
    SELECT,
    escape,
    record,
)
from ._pg.states import PostgresStates
from ._pg.url import is_postgres_url, mask
from ._pg.verify import verify
from ._pg.writer import Writer
from .errors import (
    IntegrityError,
    LedgerError,
    ReadOnlyError,
    StoreClosedError,
    StoreError,
)
from .records import read_backwards
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
    to_micros,
)

__all__ = ["SCHEMA_VERSION", "PostgresEventStore", "is_postgres_url"]

_MAX_VERSION: Final = (1 << 31) - 1
_STREAM_PAGE: Final = 1000


def _clamp(value: int, low: int, high: int) -> int:
    return max(low, min(int(value), high))


class PostgresEventStore(EventStore):
    """The event store in a PostgreSQL database. Open it with :func:`ledger.open_store`.

    ``path`` is the URL with its password masked; so is ``repr``, and so is every error.
    """

    def __init__(self, settings: Settings, *, readers: int = 4) -> None:
        self._settings = settings
        self.path = mask(settings.url)
        self.readonly = settings.readonly
        self._writer = Writer(settings, self.path, self._wake)
        self._pool = Pool(lambda: connect(settings), readers)
        self._listener = Listener(lambda: connect(settings), self._wake)
        self._wakeup = anyio.Event()
        self._closed = False
        self._states = PostgresStates(self._fetch, settings, self.path)
        self.schema_version = SCHEMA_VERSION
        """The store's schema version (an older store opened read-only stays at its own)."""

    def __repr__(self) -> str:
        mode = ", readonly=True" if self.readonly else ""
        return f"PostgresEventStore({self.path!r}{mode})"

    # --- opening and closing ---------------------------------------------------------------

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        readonly: bool = False,
        durability: Durability = "full",
        busy_timeout: float = 30.0,
        readers: int = 4,
    ) -> PostgresEventStore:
        """Connect, and check (or, writable, create in an empty database) the schema.

        Raises :class:`StoreError` for a malformed URL or a server that is down or refuses,
        :class:`NotALedgerError` for a database that is not a payledger store (or, read-only,
        an empty one) and :class:`SchemaVersionError` for one written by a newer payledger."""
        if durability not in ("full", "normal"):
            raise ValueError(f"durability is 'full' or 'normal', not {durability!r}")
        if readers < 1:
            raise ValueError(f"readers is at least 1, not {readers!r}")
        settings = Settings(
            url, readonly=readonly, durability=durability, lock_timeout=busy_timeout
        )
        store = cls(settings, readers=readers)
        conn = await connect(settings, writer=not readonly)
        try:
            store.schema_version = await check_or_create(conn, store.path, create=not readonly)
        except LedgerError:
            await close(conn)
            raise
        except Exception as e:
            await close(conn)
            raise translate(e, store.path, url) from e
        except BaseException:
            conn.terminate()
            raise
        if readonly:
            store._pool.adopt(conn)
        else:
            store._writer.adopt(conn)
        return store

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        with anyio.CancelScope(shield=True):
            try:
                await self._writer.aclose()
                await self._states.aclose()
                await self._listener.aclose()
            finally:
                await self._pool.aclose()
                await self._settings.settle()  # attempts cut short: closed as they end
                self._wake()

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosedError(f"{self.path}: the store is closed")

    def _check_writable(self) -> None:
        self._check_open()
        if self.readonly:
            raise ReadOnlyError(f"{self.path}: the store is opened read-only")

    def _wake(self) -> None:
        """Wake every ``wait_for_append``: they re-read the head."""
        self._wakeup.set()
        self._wakeup = anyio.Event()

    # --- appending -------------------------------------------------------------------------

    def _check_append(self) -> None:
        self._check_writable()

    async def _append_prepared(
        self, stream: str, prepared: list[Prepared], expected_version: int | None
    ) -> AppendResult:
        return await self._writer.append(stream, prepared, expected_version)

    async def import_events(
        self, items: Iterable[ImportItem] | AsyncIterable[ImportItem], *, chunk: int = 5000
    ) -> ImportResult:
        self._check_writable()
        return await self._writer.import_events(items, chunk)

    # --- reading ---------------------------------------------------------------------------

    async def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """Rows of one SQL statement (``$1``, ``$2``, ... placeholders) on a reading connection,
        whose transactions are read-only: for read models kept in the same database and ad-hoc
        audits. A statement that would write raises :class:`ReadOnlyError`."""
        return list(await self._fetch(sql, params))

    async def _fetch(self, sql: str, params: Sequence[Any]) -> list[asyncpg.Record]:
        self._check_open()
        for attempt in (1, 2):
            try:
                async with self._pool.connection() as conn:
                    return await conn.fetch(sql, *params)
            except LedgerError:
                raise
            except Exception as e:
                if attempt == 1 and is_connection_error(e) and not self._closed:
                    continue  # a connection the server closed while it sat idle: once more
                self._check_open()
                raise translate(e, f"{self.path}: read", self._settings.url) from e
        raise AssertionError("unreachable")

    async def _paged(
        self,
        where: str,
        params: Sequence[Any],
        from_position: int,
        to_position: int | None,
        page_size: int = 1000,
    ) -> AsyncIterator[Record]:
        n = len(params)
        clauses = [where] if where else []
        clauses += [f"position >= ${n + 1}", f"position <= ${n + 2}", HEAD_BOUND]
        sql = f"{SELECT} WHERE {' AND '.join(clauses)} ORDER BY position LIMIT {int(page_size)}"
        position = _clamp(from_position, 1, MAX_POSITION)
        upper = MAX_POSITION if to_position is None else _clamp(to_position, 0, MAX_POSITION)
        while True:
            rows = await self._fetch(sql, [*params, position, upper])
            for row in rows:
                yield record(row)
            if len(rows) < page_size:
                return
            position = rows[-1][0] + 1

    async def read_all(
        self,
        from_position: int = 1,
        *,
        to_position: int | None = None,
        page_size: int = 1000,
    ) -> AsyncIterator[Record]:
        if isinstance(page_size, bool) or not isinstance(page_size, int) or page_size < 1:
            raise ValueError(f"page_size is an integer >= 1, not {page_size!r}")
        async for rec in self._paged("", (), from_position, to_position, page_size):
            yield rec

    async def read_stream(
        self, stream: str, from_version: int = 1, *, to_position: int | None = None
    ) -> AsyncIterator[Record]:
        sql = (
            f"{SELECT} WHERE stream = $1 AND version >= $2 AND position <= $3 AND {HEAD_BOUND} "
            f"ORDER BY version LIMIT {_STREAM_PAGE}"
        )
        version = _clamp(from_version, 1, _MAX_VERSION)
        upper = MAX_POSITION if to_position is None else _clamp(to_position, 0, MAX_POSITION)
        while True:
            rows = await self._fetch(sql, [escape(stream), version, upper])
            for row in rows:
                yield record(row)
            if len(rows) < _STREAM_PAGE:
                return
            version = rows[-1][2] + 1

    async def read_streams(
        self,
        streams: Iterable[str],
        *,
        from_position: int = 1,
        to_position: int | None = None,
    ) -> AsyncIterator[Record]:
        async for rec in reads.read_streams(self._fetch, streams, from_position, to_position):
            yield rec

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
        clauses: list[str] = []
        params: list[Any] = []

        def add(clause: str, value: Any) -> None:
            params.append(value)
            clauses.append(clause.format(f"${len(params)}"))

        if stream is not None:
            add("stream = {}", escape(stream))
        if types:
            add("type = ANY({}::text[])", [escape(t) for t in types])
        if since is not None:
            add("occurred_at >= {}", to_micros(since))
        if until is not None:
            add("occurred_at <= {}", to_micros(until))
        if correlation_id is not None:
            add("correlation_id = {}", escape(correlation_id))
        where = " AND ".join(clauses)
        async for rec in self._paged(where, params, from_position, to_position):
            yield rec

    async def head(self) -> int:
        rows = await self._fetch("SELECT position FROM ledger_head WHERE id = 1", ())
        if not rows:
            raise StoreError(f"{self.path}: the store's head row is missing (see verify)")
        return int(rows[0][0])

    async def stream_version(self, stream: str) -> int:
        rows = await self._fetch(
            "SELECT max(version) FROM events WHERE stream = $1", (escape(stream),)
        )
        value = rows[0][0]
        return int(value) if value is not None else 0

    async def position_at(self, moment: datetime) -> int:
        """As on SQLite (:func:`ledger._sqlite.reads.position_at`): backwards from the
        committed head near it, else through the index by time, each of whose entries costs
        a heap fetch (about two rows read backwards, measured)."""
        bound = to_micros(moment)
        head, first, last = (await self._fetch(POSITION_ENDS, ()))[0]
        if not head:
            return 0
        if last <= bound:
            return int(head)
        sql = BACKWARDS if read_backwards(first, last, head, bound, 0.5) else BY_TIME
        value = (await self._fetch(sql, (bound, head)))[0][0]
        return int(value) if value is not None else 0

    async def wait_for_append(self, after_position: int) -> int:
        """Wait until the head passes ``after_position``; returns the new head.

        A ``NOTIFY`` from any process's append, or this store's own commit, wakes the wait; it
        then re-reads the committed head, so it never reports an event twice, out of order or
        before it is durable. Without a listening connection (it dropped; the next wait
        reconnects) it polls every 50 ms, and with one every second as a safety net. Bound the
        wait with ``anyio.move_on_after``."""
        while True:
            listening = await self._listener.ensure()
            wakeup = self._wakeup
            head = await self.head()
            if head > after_position:
                return head
            with anyio.move_on_after(1.0 if listening else 0.05):
                await wakeup.wait()

    # --- derived state, and what the read models and the replay read (indexed) ------------

    @property
    def states(self) -> PostgresStates:
        """The read models' derived state (:mod:`ledger._pg.states`)."""
        self._check_open()
        return self._states

    async def read_rows(
        self,
        from_position: int,
        to_position: int,
        *,
        skip_types: Collection[str] = (),
        keep_streams: Collection[str] = (),
    ) -> list[RawRow]:
        return await reads.read_rows(
            self._fetch, from_position, to_position, skip_types, keep_streams
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
        return await reads.read_payloads(
            self._fetch, from_position, to_position, skip_types, keep_streams, with_stream
        )

    async def read_json_page(self, from_position: int, to_position: int) -> str | None:
        return await reads.read_json_page(self._fetch, from_position, to_position)

    async def stream_bounds(
        self,
        prefix: str,
        *,
        types: Collection[str] | None = None,
        to_position: int | None = None,
    ) -> dict[str, tuple[int, int]]:
        return await reads.stream_bounds(self._fetch, prefix, types, to_position)

    async def last_event(self, stream: str, *, to_position: int | None = None) -> Record | None:
        return await reads.last_event(self._fetch, stream, to_position)

    async def payments_of(self, account_id: str, *, to_position: int | None = None) -> list[str]:
        return await reads.payments_of(self._fetch, account_id, to_position)

    async def leaf_hashes(self, from_position: int, to_position: int) -> list[bytes]:
        low = max(1, from_position)
        if to_position < low:
            return []
        rows = await self._fetch(
            "SELECT position, hash FROM events WHERE position >= $1 AND position <= $2 "
            "ORDER BY position",
            (low, to_position),
        )
        if [r[0] for r in rows] != list(range(low, low + len(rows))) or len(rows) != (
            to_position - low + 1
        ):
            raise IntegrityError(low, f"positions {low}-{to_position} are not all in the log")
        return [bytes(r[1]) for r in rows]

    @property
    def tree_threshold(self) -> int | None:  # type: ignore[override]
        return TREE_THRESHOLD if self.schema_version >= 3 else None

    async def tree_nodes(self, ids: Collection[NodeId]) -> dict[NodeId, bytes]:
        if self.schema_version < 3 or not ids:
            return {}
        wanted = sorted(set(ids))
        rows = await self._fetch(
            "SELECT t.level, t.idx, t.hash FROM unnest($1::integer[], $2::bigint[]) "
            "AS n(level, idx) JOIN ledger_tree t ON t.level = n.level AND t.idx = n.idx",
            ([n.level for n in wanted], [n.index for n in wanted]),
        )
        return {NodeId(level, idx): bytes(digest) for level, idx, digest in rows}

    async def tree_frontier(self) -> Frontier | None:
        if self.schema_version < 3:
            return None
        rows = await self._fetch("SELECT frontier FROM ledger_head WHERE id = 1", ())
        if not rows:
            raise StoreError(f"{self.path}: the store's head row is missing (see verify)")
        return Frontier.from_bytes(rows[0][0])

    # --- integrity -------------------------------------------------------------------------

    async def verify(self) -> IntegrityReport:
        return await verify(self._fetch, self.schema_version)

    async def check(self) -> None:
        """Raise :class:`IntegrityError` naming the first bad position, if any."""
        report = await self.verify()
        if not report.ok:
            assert report.first_bad_position is not None
            assert report.reason is not None
            raise IntegrityError(report.first_bad_position, report.reason)

    # --- for tests and diagnostics ---------------------------------------------------------

    @property
    def writer_connection(self) -> Connection | None:
        """The writer's connection, when open (``None`` when read-only or not yet connected)."""
        return self._writer.connection

    @property
    def listener_connection(self) -> Connection | None:
        """The LISTEN connection, when open (after a ``wait_for_append``)."""
        return self._listener.connection
