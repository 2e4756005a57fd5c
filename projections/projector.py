"""Persisted projections: every read model in tables of its own (``proj_*``) in the store's
SQLite file, each with a checkpoint written in the same transaction as its rows.

:class:`Projector` owns a connection of its own to the file (the event store is not touched:
events are read with SQL and decoded by :func:`ledger.store.record_from_row`, so upcasters
apply). It

- :meth:`~Projector.catch_up`: applies the events after its checkpoint, in batches, each batch's
  rows and checkpoint in one transaction. A crash between an append and the projection update
  leaves the old rows and the old checkpoint: the next catch-up applies those events once.
  Another projector (another process) that moved the checkpoint first makes this one's
  transaction roll back and retry from the new checkpoint: nothing is applied twice.
- :meth:`~Projector.rebuild`: folds every event from position 1 in memory (reading the next page
  of events on the connection's thread while folding this one), then replaces every row and
  the checkpoint in one transaction.
- :meth:`~Projector.follow`: catches up, then waits for appends (``store.wait_for_append``, which
  also sees other processes' appends) and catches up again, forever.

The projector keeps the states it has applied in memory (a cache, dropped when another
projector moved the checkpoint or the payments held pass a limit). A state the cache lacks is
read from the tables, except a payment's: the tables hold a summary row per payment, and its
state is the fold of its own stream up to the checkpoint (a few events, read by index).

An event of a type this version does not know stops the projector with
:class:`ledger.errors.UnknownEventTypeError`: the events before it are written, the checkpoint
stays just before it.
"""

from __future__ import annotations

import gc
import json
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Generator, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from typing import Any, Final, NoReturn

import aiosqlite
import anyio
import msgspec
from anyio.streams.memory import MemoryObjectSendStream

from ledger.errors import NotALedgerError, StoreError, UnknownEventTypeError
from ledger.events import ChannelPolicySet, ChannelStatusChanged, PaymentRequested
from ledger.sqlite import APPLICATION_ID, SQLiteEventStore
from ledger.store import EventStore, Record, record_from_row

from . import payment as payment_projection
from .account import ACCOUNT_EVENT_TYPES, AccountFold
from .balances import Balance, LedgerTotals
from .fold import World
from .payment import PAYMENT_EVENT_TYPES
from .state import ChannelState, PaymentState, PolicyState
from .tables import CHECKPOINT_NAMES, DROP, EVENT_COLUMNS, PROJECTION_VERSION, SCHEMA, TABLES

__all__ = ["Progress", "Projector", "RebuildResult", "open_projections"]

Progress = Callable[[int, int], None]
"""``progress(done, total)``: events folded so far out of the events to fold."""

_ENCODER: Final = msgspec.msgpack.Encoder()
_FOLD: Final = msgspec.msgpack.Decoder(AccountFold)
_CHANNEL: Final = msgspec.msgpack.Decoder(ChannelState)
_POLICY: Final = msgspec.msgpack.Decoder(PolicyState)
_FIRST_PAGE: Final = 1000
_CACHE_LIMIT: Final = 200_000
"""Past this many payments held in memory, a projector drops its cache after a batch."""

_READ_EVENTS: Final = (
    f"SELECT {EVENT_COLUMNS} FROM events WHERE position > ? AND position <= ? "
    "ORDER BY position LIMIT ?"
)
_READ_ALL: Final = f"SELECT {EVENT_COLUMNS} FROM events WHERE position <= ? ORDER BY position"
_READ_STREAMS: Final = (
    f"SELECT {EVENT_COLUMNS} FROM events "
    "WHERE stream IN (SELECT value FROM json_each(?)) AND position <= ?"
)


class RebuildResult(msgspec.Struct, frozen=True):
    """What a rebuild did."""

    events: int
    seconds: float
    position: int
    """The checkpoint after it."""

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else float(self.events)


@contextmanager
def _no_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while folding: the states are acyclic (reference
    counting frees them) and a growing heap makes its full collections cost a third of a
    rebuild."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _translate(e: sqlite3.Error, path: str, what: str) -> StoreError:
    return StoreError(f"{path}: projections: {what}: {e}")


def _in(values: Iterable[str]) -> str:
    return json.dumps(sorted(values))


class Projector:
    """The persisted projections of one SQLite store (see the module docstring).

    Open it with :meth:`open` (``async with await Projector.open(store) as p`` or
    ``async with Projector.open(store) as p``) and close it with :meth:`aclose`.
    """

    def __init__(self, store: EventStore, path: str, conn: aiosqlite.Connection) -> None:
        self.store = store
        self.path = path
        self._conn = conn
        self._world = World()
        self._complete = False
        """Whether ``_world`` holds every persisted state (a key missing is absent)."""
        self._seen_payments: set[str] = set()
        self._seen_accounts: set[str] = set()
        self._seen_channels: set[str] = set()
        self._seen_policies: set[str] = set()
        self._shared_loaded = False
        self._checkpoint: int | None = None
        self.error: UnknownEventTypeError | None = None
        """What stopped :func:`open_projections`' follower, if anything did."""

    # --- opening and closing ---------------------------------------------------------------

    @classmethod
    def open(cls, store: EventStore, *, busy_timeout: float = 30.0) -> _Opening:
        """Open the projections of ``store`` (an SQLite store), creating their tables if
        missing. Works on a store opened read-only too: the projector has its own writable
        connection to the file, and writes projection tables only."""
        return _Opening(cls, store, busy_timeout)

    @classmethod
    async def _open(cls, store: EventStore, busy_timeout: float) -> Projector:
        if not isinstance(store, SQLiteEventStore):
            raise StoreError("persisted projections need an SQLite store")
        path = store.path
        conn: aiosqlite.Connection | None = None
        try:
            # mode=rw: the projector never creates a file (a store deleted or renamed since the
            # store opened it stays gone), and creates its tables only in a payledger store.
            uri = (await anyio.Path(path).absolute()).as_uri() + "?mode=rw"
            conn = await aiosqlite.connect(
                uri, uri=True, timeout=busy_timeout, isolation_level=None
            )
            await conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
            # No fsync per projection commit (WAL mode): a power cut may lose the last
            # projection transactions, rows and checkpoint together, and catch-up redoes them
            # from the events, which are durable.
            await conn.execute("PRAGMA synchronous = NORMAL")
            await conn.execute("BEGIN IMMEDIATE")
            try:
                await _require_store(conn, path)
                await _drop_other_versions(conn)
                for statement in SCHEMA.split(";"):
                    if statement.strip():
                        await conn.execute(statement)
                await conn.execute(
                    "INSERT OR REPLACE INTO proj_meta VALUES ('version', ?)",
                    (PROJECTION_VERSION,),
                )
                await conn.executemany(
                    "INSERT OR IGNORE INTO proj_checkpoint VALUES (?, 0)",
                    [(name,) for name in CHECKPOINT_NAMES],
                )
                await conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    await conn.execute("ROLLBACK")
                raise
        except BaseException as e:
            if conn is not None:
                with anyio.CancelScope(shield=True):
                    await conn.close()
            if isinstance(e, sqlite3.Error):
                raise _translate(e, path, "open") from e
            raise
        return cls(store, path, conn)

    async def aclose(self) -> None:
        """Close the projector's connection."""
        with anyio.CancelScope(shield=True):
            await self._conn.close()

    async def __aenter__(self) -> Projector:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # --- SQL helpers -----------------------------------------------------------------------

    async def _fetch(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        try:
            return list(await self._conn.execute_fetchall(sql, params))
        except sqlite3.Error as e:
            raise _translate(e, self.path, "read") from e

    async def checkpoint(self) -> int:
        """The last position every projection includes."""
        rows = await self._fetch("SELECT min(position) FROM proj_checkpoint")
        return int(rows[0][0] or 0)

    async def _events(self, after: int, upto: int, limit: int) -> list[Record]:
        rows = await self._fetch(_READ_EVENTS, (after, upto, limit))
        return [record_from_row(row) for row in rows]

    # --- loading persisted states into the cache -------------------------------------------

    def _reset_cache(self) -> None:
        self._world = World()
        self._complete = False
        self._shared_loaded = False
        for seen in (
            self._seen_payments,
            self._seen_accounts,
            self._seen_channels,
            self._seen_policies,
        ):
            seen.clear()

    async def _payments(self, payment_ids: Iterable[str], upto: int) -> dict[str, PaymentState]:
        """The states of payments as of ``upto``: the fold of their streams (the tables hold a
        summary of each payment, not its state; see :mod:`projections.tables`)."""
        streams = json.dumps([f"payment-{p}" for p in sorted(payment_ids)])
        rows = await self._fetch(_READ_STREAMS, (streams, upto))
        rows.sort(key=_position_of)
        states: dict[str, PaymentState] = {}
        apply = payment_projection.apply
        for row in rows:
            payment_id = row[1].removeprefix("payment-")
            state = apply(states.get(payment_id), record_from_row(row))
            if state is not None:
                states[payment_id] = state
        return states

    async def _prefetch(self, records: Sequence[Record], checkpoint: int) -> None:
        """Load the persisted states ``records`` (the events after ``checkpoint``) touch that
        the cache does not hold yet."""
        if self._complete:
            return
        world = self._world
        accounts: set[str] = set()
        payments: set[str] = set()
        channels: set[str] = set()
        merchants: set[str] = set()
        for rec in records:
            event: Any = rec.event
            name = type(event).__name__
            if name in PAYMENT_EVENT_TYPES:
                payments.add(event.payment_id)
                if isinstance(event, PaymentRequested):
                    accounts.add(event.account_id)
            elif name in ACCOUNT_EVENT_TYPES:
                accounts.add(event.account_id)
            elif isinstance(event, ChannelStatusChanged):
                channels.add(event.channel)
            elif isinstance(event, ChannelPolicySet):
                merchants.add(event.merchant)
        payments -= self._seen_payments
        if payments:
            world.payments.update(await self._payments(payments, checkpoint))
            self._seen_payments |= payments
        for pid in payments:
            found = world.payments.get(pid)
            if found is not None:
                accounts.add(found.account_id)
        accounts -= self._seen_accounts
        if accounts:
            ids = _in(accounts)
            for aid, fold in await self._fetch(
                "SELECT account_id, fold FROM proj_accounts "
                "WHERE account_id IN (SELECT value FROM json_each(?))",
                (ids,),
            ):
                world.accounts[aid] = _FOLD.decode(fold)
            for row in await self._fetch(
                "SELECT ledger_account, currency, account_id, debit_minor, credit_minor, "
                "position FROM proj_balances "
                "WHERE account_id IN (SELECT value FROM json_each(?))",
                (ids,),
            ):
                _load_balance(world, row)
            self._seen_accounts |= accounts
        channels -= self._seen_channels
        if channels:
            for name, state in await self._fetch(
                "SELECT channel, state FROM proj_channels "
                "WHERE channel IN (SELECT value FROM json_each(?))",
                (_in(channels),),
            ):
                world.channels[name] = _CHANNEL.decode(state)
            self._seen_channels |= channels
        merchants -= self._seen_policies
        if merchants:
            for name, state in await self._fetch(
                "SELECT merchant, state FROM proj_policies "
                "WHERE merchant IN (SELECT value FROM json_each(?))",
                (_in(merchants),),
            ):
                world.policies[name] = _POLICY.decode(state)
            self._seen_policies |= merchants
        if not self._shared_loaded:
            for row in await self._fetch(
                "SELECT ledger_account, currency, account_id, debit_minor, credit_minor, "
                "position FROM proj_balances WHERE account_id IS NULL"
            ):
                _load_balance(world, row)
            for currency, debit, credit, position in await self._fetch(
                "SELECT currency, debit_minor, credit_minor, position FROM proj_totals"
            ):
                world.totals[currency] = LedgerTotals(
                    currency=currency, debit_minor=debit, credit_minor=credit, position=position
                )
            self._shared_loaded = True

    # --- writing ---------------------------------------------------------------------------

    async def _write(self, world: World, position: int, expected: int | None) -> bool:
        """Write the dirty states and the checkpoint in one transaction. With ``expected``,
        only if the checkpoint is still ``expected`` (else roll back and return False);
        without it (a rebuild), every table is emptied first."""
        conn = self._conn
        try:
            await conn.execute("BEGIN IMMEDIATE")
            try:
                if expected is not None:
                    rows = await conn.execute_fetchall("SELECT min(position) FROM proj_checkpoint")
                    current = int(next(iter(rows))[0] or 0)
                    if current != expected:
                        await conn.execute("ROLLBACK")
                        return False
                else:
                    for statement in DROP:
                        await conn.execute(statement)
                await _write_rows(conn, world)
                await conn.executemany(
                    "INSERT OR REPLACE INTO proj_checkpoint VALUES (?, ?)",
                    [(name, position) for name in CHECKPOINT_NAMES],
                )
                await conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    await conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as e:
            raise _translate(e, self.path, "write") from e
        world.clear_dirty()
        return True

    # --- catching up, rebuilding, following ------------------------------------------------

    async def catch_up(self, *, batch_size: int = 5000, to_position: int | None = None) -> int:
        """Apply every event after the checkpoint (up to ``to_position``), a batch per
        transaction; returns the new checkpoint.

        Raises :class:`UnknownEventTypeError` at an event of an unknown type, after writing
        the events before it (the checkpoint stays just before it).
        """
        upto = to_position if to_position is not None else 2**62
        while True:
            checkpoint = await self.checkpoint()
            if self._checkpoint != checkpoint:
                # first run, someone else moved it, or an interrupted batch: drop the cache
                self._reset_cache()
                self._complete = checkpoint == 0
            records = await self._events(checkpoint, upto, batch_size)
            if not records:
                self._checkpoint = checkpoint
                return checkpoint
            await self._prefetch(records, checkpoint)
            world = self._world
            self._checkpoint = None  # the cache runs ahead of the tables until written
            error: UnknownEventTypeError | None = None
            last = checkpoint
            try:
                with _no_gc():
                    for rec in records:
                        world.apply(rec)
                        last = rec.position
            except UnknownEventTypeError as e:
                error = e
            if last > checkpoint:
                with anyio.CancelScope(shield=True):
                    written = await self._write(world, last, checkpoint)
                if not written:
                    continue  # another projector wrote first: start again from its checkpoint
            self._checkpoint = last
            if len(world.payments) > _CACHE_LIMIT:
                self._checkpoint = None
            if error is not None:
                raise error

    async def rebuild(
        self, progress: Progress | None = None, *, page_size: int = 20_000
    ) -> RebuildResult:
        """Drop every projection row and fold every event from position 1 again; the new rows
        and checkpoint replace the old ones in one transaction.

        The events are read by one statement, ``page_size`` rows at a time, on the
        connection's thread: the next page is read while this one is folded.
        """
        started = time.perf_counter()
        total = await self.store.head()
        world = World()
        position = 0
        stopped: UnknownEventTypeError | None = None
        failed: list[Exception] = []  # raised outside the task group: not an ExceptionGroup
        if progress is not None:
            progress(0, total)
        apply = world.apply
        with _no_gc():
            send, receive = anyio.create_memory_object_stream[list[Any]](1)
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._read_pages, send, total, page_size, failed)
                with receive:  # leaving it early stops the reader
                    try:
                        async for rows in receive:
                            try:
                                for row in rows:
                                    apply(record_from_row(row))
                            except UnknownEventTypeError as e:
                                stopped = e
                            position = world.position
                            if progress is not None:
                                progress(position, total)
                            if stopped is not None:
                                break
                    except Exception as e:  # an undecodable row, a failing progress callback
                        failed.insert(0, e)
            if failed:
                raise failed[0]
            with anyio.CancelScope(shield=True):
                await self._write(world, position, None)
        self._world, self._checkpoint = world, position
        self._complete = True
        if stopped is not None:
            raise stopped
        return RebuildResult(
            events=position, seconds=time.perf_counter() - started, position=position
        )

    async def _read_pages(
        self,
        send: MemoryObjectSendStream[list[Any]],
        upto: int,
        page_size: int,
        failed: list[Exception],
    ) -> None:
        """Send the rows of every event up to ``upto``, ``page_size`` at a time, until done
        or until the receiver is closed; an error is appended to ``failed`` (and ends the
        pages early)."""
        with send:
            try:
                cursor = await self._conn.execute(_READ_ALL, (upto,))
                try:
                    size = min(page_size, _FIRST_PAGE)  # a small first page starts the fold
                    while rows := await cursor.fetchmany(size):
                        await send.send(list(rows))
                        size = page_size
                except anyio.BrokenResourceError:
                    pass  # the receiver stopped reading
                finally:
                    with anyio.CancelScope(shield=True):
                        await cursor.close()
            except sqlite3.Error as e:
                failed.append(_translate(e, self.path, "read"))

    async def follow(self, *, batch_size: int = 5000, interval: float = 0.02) -> NoReturn:
        """Catch up, then follow every append (this process's or another's), forever.

        Catch-ups start at most every ``interval`` seconds: under a stream of appends each one
        takes what came meanwhile in one transaction, so the projections take SQLite's write
        lock from the appenders a bounded number of times per second.
        """
        while True:
            started = time.monotonic()
            position = await self.catch_up(batch_size=batch_size)
            await self.store.wait_for_append(position)
            await anyio.sleep(max(0.0, started + interval - time.monotonic()))

    # --- reading persisted rows ------------------------------------------------------------

    async def balances(self, account_id: str | None = None) -> list[Balance]:
        """The persisted balances (of one customer account's ledger accounts, if given)."""
        sql = (
            "SELECT ledger_account, currency, account_id, debit_minor, credit_minor, position "
            "FROM proj_balances"
        )
        params: tuple[Any, ...] = ()
        if account_id is not None:
            sql += " WHERE account_id = ?"
            params = (account_id,)
        rows = await self._fetch(sql + " ORDER BY ledger_account, currency", params)
        return [
            Balance(
                ledger_account=r[0],
                currency=r[1],
                account_id=r[2],
                debit_minor=r[3],
                credit_minor=r[4],
                position=r[5],
            )
            for r in rows
        ]

    async def load_world(self) -> World:
        """Every persisted state, read back into a :class:`World` (for checks and tools)."""
        world = World()
        for aid, fold in await self._fetch("SELECT account_id, fold FROM proj_accounts"):
            world.accounts[aid] = _FOLD.decode(fold)
        checkpoint = await self.checkpoint()
        ids = [row[0] for row in await self._fetch("SELECT payment_id FROM proj_payments")]
        world.payments.update(await self._payments(ids, checkpoint))
        for name, state in await self._fetch("SELECT channel, state FROM proj_channels"):
            world.channels[name] = _CHANNEL.decode(state)
        for name, state in await self._fetch("SELECT merchant, state FROM proj_policies"):
            world.policies[name] = _POLICY.decode(state)
        for b in await self.balances():
            world.balances[(b.ledger_account, b.currency)] = b
        for currency, debit, credit, position in await self._fetch(
            "SELECT currency, debit_minor, credit_minor, position FROM proj_totals"
        ):
            world.totals[currency] = LedgerTotals(
                currency=currency, debit_minor=debit, credit_minor=credit, position=position
            )
        world.position = checkpoint
        return world


class _Opening:
    """``Projector.open(store)``: awaitable, or an async context manager that closes it."""

    def __init__(self, cls: type[Projector], store: EventStore, busy_timeout: float) -> None:
        self._cls = cls
        self._store = store
        self._busy_timeout = busy_timeout
        self._projector: Projector | None = None

    def __await__(self) -> Generator[Any, None, Projector]:
        return self._cls._open(self._store, self._busy_timeout).__await__()

    async def __aenter__(self) -> Projector:
        self._projector = await self._cls._open(self._store, self._busy_timeout)
        return self._projector

    async def __aexit__(self, *exc: object) -> None:
        if self._projector is not None:
            await self._projector.aclose()


async def _require_store(conn: aiosqlite.Connection, path: str) -> None:
    """Refuse a file that is not a payledger store (checked under the write lock, before any
    table is made)."""
    (app,) = next(iter(await conn.execute_fetchall("PRAGMA application_id")))
    found = await conn.execute_fetchall(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name IN ('events', 'ledger_head')"
    )
    if app != APPLICATION_ID or len(list(found)) != 2:
        raise NotALedgerError(f"{path}: not a payledger store: no projections are made in it")


async def _drop_other_versions(conn: aiosqlite.Connection) -> None:
    """Drop projection tables of another version (derived data: they are rebuilt)."""
    names = {
        row[0]
        for row in await conn.execute_fetchall(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name GLOB 'proj_*'"
        )
    }
    if not names:
        return
    version = None
    if "proj_meta" in names:
        sql = "SELECT value FROM proj_meta WHERE key = 'version'"
        rows = list(await conn.execute_fetchall(sql))
        version = rows[0][0] if rows else None
    if version != PROJECTION_VERSION:
        for table in TABLES:
            if table in names:
                await conn.execute(f"DROP TABLE {table}")


def _position_of(row: Sequence[Any]) -> int:
    return int(row[0])


def _load_balance(world: World, row: Sequence[Any]) -> None:
    ledger_account, currency, account_id, debit, credit, position = row
    world.balances[(ledger_account, currency)] = Balance(
        ledger_account=ledger_account,
        currency=currency,
        account_id=account_id,
        debit_minor=debit,
        credit_minor=credit,
        position=position,
    )


async def _write_rows(conn: aiosqlite.Connection, world: World) -> None:
    accounts = [world.accounts[a] for a in sorted(world.dirty_accounts)]
    if accounts:
        await conn.executemany(
            "INSERT OR REPLACE INTO proj_accounts VALUES (?, ?, ?, ?, ?, ?)",
            [
                (
                    f.state.account_id,
                    int(f.known),
                    f.state.holder_ref,
                    f.state.score,
                    f.state.position,
                    _ENCODER.encode(f),
                )
                for f in accounts
            ],
        )
        await conn.executemany(
            "INSERT OR REPLACE INTO proj_credit_lines VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    f.state.account_id,
                    line.product,
                    line.currency,
                    line.status,
                    line.limit_minor,
                    line.used_minor,
                    line.held_minor,
                    line.available_minor,
                    line.overdue_minor,
                    f.state.score,
                    f.state.position,
                )
                for f in accounts
                for line in f.state.credit.values()
            ],
        )
    channels = [world.channels[c] for c in sorted(world.dirty_channels)]
    if channels:
        await conn.executemany(
            "INSERT OR REPLACE INTO proj_channels VALUES (?, ?, ?, ?, ?, ?)",
            [
                (
                    c.channel,
                    c.status,
                    c.reason,
                    c.status_position,
                    c.position,
                    _ENCODER.encode(c),
                )
                for c in channels
            ],
        )
    policies = [world.policies[m] for m in sorted(world.dirty_policies)]
    if policies:
        await conn.executemany(
            "INSERT OR REPLACE INTO proj_policies VALUES (?, ?, ?)",
            [(p.merchant, p.position, _ENCODER.encode(p)) for p in policies],
        )
        await conn.executemany(
            "INSERT OR REPLACE INTO proj_policy_rules VALUES (?, ?, ?, ?, ?)",
            [
                (
                    p.merchant,
                    r.scenario,
                    json.dumps(list(r.allowed_channels)),
                    r.reason,
                    r.position,
                )
                for p in policies
                for r in p.rules.values()
            ],
        )
    payments = [world.payments[p] for p in sorted(world.dirty_payments)]
    if payments:
        await conn.executemany(
            "INSERT OR REPLACE INTO proj_payments VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    p.payment_id,
                    p.account_id,
                    p.merchant,
                    p.scenario,
                    p.attempts[-1].channel if p.attempts else p.preferred_channel,
                    p.outcome,
                    p.amount_minor,
                    p.currency,
                    p.requested_position,
                    p.position,
                )
                for p in payments
            ],
        )
    balances = [world.balances[k] for k in sorted(world.dirty_balances)]
    if balances:
        await conn.executemany(
            "INSERT OR REPLACE INTO proj_balances VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    b.ledger_account,
                    b.currency,
                    b.account_id,
                    b.debit_minor,
                    b.credit_minor,
                    b.balance_minor,
                    b.position,
                )
                for b in balances
            ],
        )
    totals = [world.totals[c] for c in sorted(world.dirty_totals)]
    if totals:
        await conn.executemany(
            "INSERT OR REPLACE INTO proj_totals VALUES (?, ?, ?, ?)",
            [(t.currency, t.debit_minor, t.credit_minor, t.position) for t in totals],
        )


@asynccontextmanager
async def open_projections(store: EventStore) -> AsyncIterator[Projector]:
    """Open the projections of ``store``, catch them up and follow its appends in a
    background task while the block runs::

        async with open_store("ledger.db") as store, open_projections(store) as projector:
            ...  # appends; the proj_* tables follow them

    An event of a type this version does not know stops the follower (the checkpoint stays
    just before it) without disturbing the block: it is reported in ``projector.error``.
    """
    async with Projector.open(store) as projector:

        async def follow() -> None:
            try:
                await projector.follow()
            except UnknownEventTypeError as e:
                projector.error = e

        async with anyio.create_task_group() as tg:
            try:
                await projector.catch_up()
            except UnknownEventTypeError as e:
                projector.error = e
            else:
                tg.start_soon(follow)
            try:
                yield projector
            finally:
                tg.cancel_scope.cancel()
