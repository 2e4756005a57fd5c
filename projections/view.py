"""A live read model for a service: every projection in memory, kept in step with the log.

The router reads its decisions from a :class:`StateView`; anything that must act on the current
state of accounts, channels and policies can use one the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Final

import anyio
import anyio.lowlevel

from ledger.events import Event
from ledger.store import AppendResult, EventStore, Record

from .fold import World
from .state import AccountState, ChannelState, PaymentState, PolicyState

__all__ = ["StateView"]

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


class StateView:
    """The projections' state, kept in step with the log by applying new events.

    :meth:`refresh` applies every event appended since the last refresh. Concurrent callers
    share one refresh: a caller returns once a refresh that *read the log after it called* has
    finished, so what it reads includes everything committed before it called. A refresh yields
    once before it reads, so the callers ready to run at that moment share it. Events this
    process appended and reported with :meth:`note` are applied from memory; only the gaps
    between them (other writers' events) are read from the store.
    """

    def __init__(self, store: EventStore) -> None:
        self.store = store
        self.world: World = World()
        self._started = 0
        self._finished = 0
        self._running: anyio.Event | None = None
        self._joinable = False
        self._noted: dict[int, Record] = {}

    def note(self, stream: str, events: Sequence[Event], result: AppendResult) -> None:
        """Remember events this process appended, so a refresh need not read them back."""
        if result.duplicate or len(result.positions) != len(events):
            return
        first_version = result.version - len(events) + 1
        for i, (event, position) in enumerate(zip(events, result.positions, strict=True)):
            if position > self.world.position:
                self._noted[position] = Record(
                    position, stream, first_version + i, event, "", _EPOCH
                )

    def _drain(self) -> None:
        noted = self._noted
        world = self.world
        while noted:
            record = noted.pop(world.position + 1, None)
            if record is None:
                return
            world.apply(record)

    async def refresh(self) -> None:
        """Apply every event committed before this call (shared with concurrent callers)."""
        # A refresh that reads the log after this call must have finished: the one running,
        # if it has not begun reading yet, or the next one.
        wanted = self._started if self._joinable else self._started + 1
        while self._finished < wanted:
            running = self._running
            if running is not None:
                await running.wait()  # one at a time; then look again
                continue
            self._started += 1
            number = self._started
            done = self._running = anyio.Event()
            try:
                # Let the callers that are ready to run now join this refresh before it reads.
                self._joinable = True
                await anyio.lowlevel.checkpoint()
                self._joinable = False
                await self._catch_up()
                self._finished = number
            finally:
                self._joinable = False
                self._running = None
                done.set()  # wakes every waiter at once

    async def _catch_up(self) -> None:
        self._drain()
        head = await self.store.head()
        while self.world.position < head:
            start = self.world.position + 1
            later = [p for p in self._noted if p > start]
            gap_end = min(min(later) - 1, head) if later else head
            async for record in self.store.read_all(start, to_position=gap_end):
                self.world.apply(record)
            if self.world.position < gap_end:  # pragma: no cover - the log ends early
                break
            self._drain()
        for position in [p for p in self._noted if p <= self.world.position]:
            del self._noted[position]
        self.world.clear_dirty()

    def account(self, account_id: str) -> AccountState | None:
        return self.world.account(account_id)

    def channel(self, channel: str) -> ChannelState:
        return self.world.channel(channel)

    def policy(self, merchant: str) -> PolicyState:
        return self.world.policy(merchant)

    def payment(self, payment_id: str) -> PaymentState | None:
        return self.world.payment(payment_id)
