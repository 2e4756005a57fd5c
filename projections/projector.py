"""Persisted projections: every read model as rows of the store's derived state
(:mod:`ledger.states`, :mod:`projections.rows`), each batch written in one transaction with the
checkpoint, on every backend.

:class:`Projector`

- :meth:`~Projector.catch_up`: applies the events after its checkpoint, a batch per transaction.
  A crash between an append and the projection update leaves the old rows and the old
  checkpoint: the next catch-up applies those events once. Another projector (another process)
  that moved the checkpoint first makes this one's commit write nothing; it starts again from
  the new checkpoint, so nothing is applied twice.
- :meth:`~Projector.rebuild`: folds every event from position 1 in memory, then replaces every
  row and the checkpoint in one transaction.
- :meth:`~Projector.follow`: catches up, then waits for appends (``store.wait_for_append``, which
  also sees other processes' appends) and catches up again, forever.

The projector keeps the states it applied in memory (a cache, dropped when another projector
moved the checkpoint or when the payments held pass a limit). A state the cache lacks is read
from the rows, except a payment's, which is the fold of its own stream up to the checkpoint.
Rows written by another version of the projections are ignored and replaced by a fold from the
first event. An event of a type this version does not know stops the projector with
:class:`ledger.errors.UnknownEventTypeError`: the events before it are written, the checkpoint
stays just before it.
"""

from __future__ import annotations

import gc
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from typing import Any, Final, NoReturn

import anyio
import msgspec

from ledger.errors import UnknownEventTypeError
from ledger.events import ChannelPolicySet, ChannelStatusChanged, UnknownEvent
from ledger.states import StateRow
from ledger.store import EventStore

from . import payment as payment_projection
from . import slim
from .balances import Balance
from .fold import World
from .rows import NAME, PROJECTION_VERSION, load_row
from .state import PaymentState
from .working import Working

__all__ = ["Progress", "Projector", "RebuildResult", "open_projections"]

Progress = Callable[[int, int], None]
"""``progress(done, total)``: events folded so far out of the events to fold."""

_ACCOUNT_SLIMS: Final = frozenset(
    {
        slim.AccountOpened,
        slim.CreditLineOpened,
        slim.CreditLimitChanged,
        slim.CreditScoreChanged,
        slim.CreditStatusChanged,
        slim.RepaymentOverdue,
        slim.RepaymentMade,
    }
)
_CACHE_LIMIT: Final = 200_000
"""Past this many payments held in memory, a projector drops its cache after a batch."""
_PAGE: Final = 4000
_BALANCE: Final = msgspec.msgpack.Decoder(Balance)


def written_rows(world: Working, *, dirty_only: bool = True) -> Iterable[StateRow]:
    """The rows a commit writes (a seam for tests that make a commit fail half way). Those a
    batch changed are made before the commit, which then holds the store's write lock only to
    write them (appends wait for it); a rebuild's rows (every one: hundreds of thousands) as
    they are written (:meth:`Working.iter_rows`), or they would take as much memory again as
    the fold."""
    if dirty_only:
        return world.rows()
    return world.iter_rows(dirty_only=False)


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


class Projector:
    """The persisted projections of one store (see the module docstring)."""

    def __init__(self, store: EventStore, *, name: str = NAME) -> None:
        self.store = store
        self.name = name
        self._world = Working()
        self._checkpoint: int | None = None
        """The checkpoint the cache is at (``None``: the cache is not to be trusted)."""
        self._seen: dict[str, set[str]] = {}
        self._shared_loaded = False
        self.error: UnknownEventTypeError | None = None
        """What stopped :func:`open_projections`' follower, if anything did."""
        self._turn = anyio.Lock()
        """One catch-up or rebuild at a time: they share the cache (the follower of
        :func:`open_projections` and a caller's own ``catch_up``, say)."""

    # --- opening (kept for callers of the earlier API) --------------------------------------

    @classmethod
    def open(cls, store: EventStore, *, name: str = NAME) -> _Opening:
        """``async with Projector.open(store) as p`` (or ``p = await Projector.open(store)``);
        raises :class:`ledger.errors.StoreError` when the store keeps no derived state."""
        return _Opening(cls, store, name)

    async def aclose(self) -> None:
        """Drop the cache (the projector holds no connection of its own)."""
        self._reset_cache()

    async def __aenter__(self) -> Projector:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # --- the checkpoint -----------------------------------------------------------------

    async def _stand(self) -> tuple[int, int, bool]:
        """(the checkpoint as stored, the position this version's rows include, whether the
        rows are of another version and must go)."""
        cp = await self.store.states.checkpoint(self.name)
        foreign = cp.version is not None and cp.version != PROJECTION_VERSION
        return cp.position, 0 if foreign else cp.position, foreign

    async def checkpoint(self) -> int:
        """The last position the persisted projections include (0 for rows of another
        version)."""
        return (await self._stand())[1]

    # --- the cache ------------------------------------------------------------------------

    def _reset_cache(self) -> None:
        self._world = Working()
        self._checkpoint = None
        self._seen = {}
        self._shared_loaded = False

    def _unseen(self, kind: str, keys: Iterable[str]) -> list[str]:
        seen = self._seen.setdefault(kind, set())
        fresh = sorted(set(keys) - seen)
        seen.update(fresh)
        return fresh

    async def _payments(self, payment_ids: Sequence[str], upto: int) -> dict[str, PaymentState]:
        """The states of payments as of ``upto``: the fold of their own streams."""
        states: dict[str, PaymentState] = {}
        if not payment_ids or upto <= 0:
            return states
        streams = [f"payment-{p}" for p in payment_ids]
        async for rec in self.store.read_streams(streams, to_position=upto):
            pid = rec.stream.removeprefix("payment-")
            after = payment_projection.apply(states.get(pid), rec)
            if after is not None:
                states[pid] = after
        return states

    async def _prefetch(self, events: Sequence[tuple[int, Any]], checkpoint: int) -> None:
        """Load into the cache the persisted states the events will change."""
        if checkpoint == 0:
            return
        world, states, name = self._world, self.store.states, self.name
        accounts: set[str] = set()
        payments: set[str] = set()
        channels: set[str] = set()
        merchants: set[str] = set()
        for _, event in events:
            kind = type(event)
            if kind in _ACCOUNT_SLIMS:
                accounts.add(event.account_id)
            elif kind is slim.PaymentRequested:
                payments.add(event.payment_id)
                accounts.add(event.account_id)
            elif kind is ChannelStatusChanged:
                channels.add(event.channel)
            elif kind is ChannelPolicySet:
                merchants.add(event.merchant)
            elif kind is not UnknownEvent:
                payments.add(event.payment_id)
        fresh_payments = self._unseen("payment", payments)
        if fresh_payments:
            streams = [f"payment-{p}" for p in fresh_payments]
            world.load_payments(
                [rec async for rec in self.store.read_streams(streams, to_position=checkpoint)]
            )
        for pid in payments:
            found = world.payments.get(pid)
            if found is not None:
                accounts.add(found.account_id)
        fresh = self._unseen("account", accounts)
        if fresh:
            for row in (await states.get(name, "account", fresh)).values():
                world.load_row(row)
            for row in await states.grouped(name, "balance", fresh):
                world.load_row(row)
        for kind_name, keys in (("channel", channels), ("policy", merchants)):
            fresh = self._unseen(kind_name, keys)
            if fresh:
                for row in (await states.get(name, kind_name, fresh)).values():
                    world.load_row(row)
        if not self._shared_loaded:
            for row in await states.grouped(name, "balance", [""]):
                world.load_row(row)
            async for page in states.scan(name, "total"):
                for row in page:
                    world.load_row(row)
            self._shared_loaded = True

    # --- writing ----------------------------------------------------------------------------

    async def _commit(
        self, world: Working, position: int, expected: int | None, *, reset: bool
    ) -> bool:
        rows = written_rows(world, dirty_only=not reset)
        with anyio.CancelScope(shield=True):
            written = await self.store.states.commit(
                self.name,
                rows,
                position=position,
                version=PROJECTION_VERSION,
                expected=expected,
                reset=reset,
            )
        if written:
            world.clear_dirty()
        return written

    # --- catching up, rebuilding, following ------------------------------------------------

    async def _events(self, after: int, upto: int) -> list[tuple[int, Any]]:
        """The events after ``after`` up to ``upto``, decoded (slim where they can be)."""
        rows = await self.store.read_payloads(after + 1, upto)
        decode = slim.slim_of_row
        return [(row[0], decode(row[1], row[2], row[3], row[0])) for row in rows]

    async def catch_up(self, *, batch_size: int = 5000, to_position: int | None = None) -> int:
        """Apply every event after the checkpoint (up to ``to_position``), a batch per
        transaction; returns the new checkpoint.

        Raises :class:`UnknownEventTypeError` at an event of an unknown type, after writing the
        events before it (the checkpoint stays just before it).
        """
        async with self._turn:
            return await self._catch_up(batch_size, to_position)

    async def _catch_up(self, batch_size: int, to_position: int | None) -> int:
        while True:
            stored, checkpoint, foreign = await self._stand()
            if self._checkpoint != checkpoint or foreign:
                self._reset_cache()  # first run, someone else moved it, or a failed batch
            head = await self.store.head()
            upto = head if to_position is None else min(head, to_position)
            if checkpoint >= upto:
                self._checkpoint = checkpoint
                return checkpoint
            if checkpoint == 0 and upto > batch_size:
                done = await self._from_scratch(upto, stored)
                if done is not None:
                    return done
                continue  # another projector wrote first: start again from its checkpoint
            events = await self._events(checkpoint, min(upto, checkpoint + batch_size))
            await self._prefetch(events, checkpoint)
            world = self._world
            self._checkpoint = None  # the cache runs ahead of the rows until written
            error: UnknownEventTypeError | None = None
            last = checkpoint
            try:
                with _no_gc():
                    apply = world.apply_event
                    for position, event in events:
                        apply(event, position)
                        last = position
            except UnknownEventTypeError as e:
                error = e
            if last > checkpoint and not await self._commit(world, last, stored, reset=foreign):
                continue  # another projector wrote first: start again from its checkpoint
            self._checkpoint = last
            if len(world.payments) > _CACHE_LIMIT:
                self._reset_cache()
            if error is not None:
                raise error

    async def _from_scratch(self, upto: int, stored: int) -> int | None:
        """A catch-up with no rows to start from, of more than a batch: one pass like a
        rebuild's up to ``upto``, its rows written in one transaction if the checkpoint is
        still ``stored``; returns the new checkpoint, or None when another projector wrote
        first. Raises what a catch-up raises, after writing what came before it."""
        world = Working(track=False)
        with _no_gc():
            stopped = await self._fold_pages(world, upto, None)
            written = world.position > 0 and await self._commit(
                world, world.position, stored, reset=True
            )
        self._reset_cache()
        if world.position > 0 and not written:
            return None
        world.track = True
        self._world, self._checkpoint = world, world.position
        self._shared_loaded = True
        if len(world.payments) > _CACHE_LIMIT:
            self._reset_cache()
        if stopped is not None:
            raise stopped
        return world.position

    async def rebuild(self, progress: Progress | None = None) -> RebuildResult:
        """Fold every event from position 1 again; the new rows and checkpoint replace the old
        ones in one transaction."""
        async with self._turn:
            return await self._rebuild(progress)

    async def _rebuild(self, progress: Progress | None) -> RebuildResult:
        started = time.perf_counter()
        total = await self.store.head()
        world = Working(track=False)
        if progress is not None:
            progress(0, total)
        with _no_gc():
            stopped = await self._fold_pages(world, total, progress)
            await self._commit(world, world.position, None, reset=True)
        self._reset_cache()
        world.track = True  # the cache from now on: catch-ups write what they change
        self._world, self._checkpoint = world, world.position
        self._shared_loaded = True
        if stopped is not None:
            raise stopped
        return RebuildResult(
            events=world.position, seconds=time.perf_counter() - started, position=world.position
        )

    async def _fold_pages(
        self, world: Working, total: int, progress: Progress | None
    ) -> UnknownEventTypeError | None:
        """Fold positions 1 to ``total`` into ``world``, page by page, the next page read (in
        the store's own thread or server) while this one is folded; returns the error of an
        event of an unknown type, where the fold stopped. Any other error is raised as it is
        (a damaged row, a failed read), not in a group.

        A page comes as one JSON text (:meth:`EventStore.read_json_page`), decoded in one
        call; one that holds an older shape or an unknown type, row by row."""
        send, receive = anyio.create_memory_object_stream[tuple[int, int, str | None]](1)
        store = self.store
        failed: list[Exception] = []

        async def read() -> None:
            async with send:
                try:
                    low = 1
                    while low <= total:
                        high = min(total, low + _PAGE - 1)
                        await send.send((low, high, await store.read_json_page(low, high)))
                        low = high + 1
                except Exception as e:  # raised by the folding side, which stops reading
                    failed.append(e)

        stopped: UnknownEventTypeError | None = None
        async with anyio.create_task_group() as tg, receive:
            tg.start_soon(read)
            async for low, high, page in receive:
                try:
                    if page is None or not world.apply_page(page, low):
                        world.apply_rows(await store.read_payloads(low, high))
                except UnknownEventTypeError as e:
                    stopped = e
                except Exception as e:
                    failed.append(e)
                    break
                if progress is not None:
                    progress(world.position, total)
                if stopped is not None:
                    break
            tg.cancel_scope.cancel()
        if failed:
            raise failed[0]
        return stopped

    async def follow(self, *, batch_size: int = 5000, interval: float = 0.02) -> NoReturn:
        """Catch up, then follow every append (this process's or another's), forever.

        Catch-ups start at most every ``interval`` seconds: under a stream of appends each one
        takes what came meanwhile in one transaction, so the projections take the store's write
        lock from the appenders a bounded number of times per second.
        """
        while True:
            started = time.monotonic()
            position = await self.catch_up(batch_size=batch_size)
            await self.store.wait_for_append(position)
            await anyio.sleep(max(0.0, started + interval - time.monotonic()))

    # --- reading persisted rows ------------------------------------------------------------

    async def balances(self, account_id: str | None = None) -> list[Balance]:
        """The persisted balances (of one customer account's ledger accounts, if given), by
        ledger account and currency."""
        states, name = self.store.states, self.name
        if account_id is not None:
            rows = await states.grouped(name, "balance", [account_id])
        else:
            rows = [row async for page in states.scan(name, "balance") for row in page]
        found = [_BALANCE.decode(row.state) for row in rows]
        return sorted(found, key=lambda b: (b.ledger_account, b.currency))

    async def load_world(self) -> World:
        """Every persisted state, read back into a :class:`World` (for checks and tools)."""
        world = World()
        checkpoint = await self.checkpoint()
        payments: list[str] = []
        async for page in self.store.states.scan(self.name):
            for row in page:
                if row.kind == "payment":
                    payments.append(row.key)
                else:
                    load_row(world, row)
        world.payments.update(await self._payments(payments, checkpoint))
        world.position = checkpoint
        return world


class _Opening:
    """``Projector.open(store)``: awaitable, or an async context manager."""

    def __init__(self, cls: type[Projector], store: EventStore, name: str) -> None:
        self._cls = cls
        self._store = store
        self._name = name

    async def _open(self) -> Projector:
        self._store.states  # noqa: B018 - raises StoreError on a backend without derived state
        return self._cls(self._store, name=self._name)

    def __await__(self) -> Any:
        return self._open().__await__()

    async def __aenter__(self) -> Projector:
        return await self._open()

    async def __aexit__(self, *exc: object) -> None:
        return None


@asynccontextmanager
async def open_projections(store: EventStore) -> AsyncIterator[Projector]:
    """Catch the projections of ``store`` up and follow its appends in a background task
    while the block runs::

        async with open_store("ledger.db") as store, open_projections(store) as projector:
            ...  # appends; the projections follow them

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
