"""A subscription for embedding services: every recorded event from a position, in position
order, then each new one as it is appended (by this process or another one), never skipping one.

Positions are gap-free and assigned in commit order, so reading on from the last position seen
after each wake-up cannot miss an event.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from ledger.store import EventStore, Record

__all__ = ["subscribe"]


async def subscribe(
    store: EventStore, from_position: int = 1, *, page_size: int = 1000
) -> AsyncIterator[Record]:
    """Yield every event from ``from_position`` on, then wait for new ones, forever.

    Keep your own projection by remembering the last position you applied (in the same
    transaction as your rows) and resuming from the next one::

        from projections import subscribe

        async with open_store("ledger.db", readonly=True) as store:
            async for record in subscribe(store, from_position=my_checkpoint + 1):
                await my_projection.apply(record)  # record.position, .stream, .event, ...

    Stop it by leaving the loop (``break``) or cancelling the task (e.g. within
    ``anyio.move_on_after``).
    """
    position = max(1, from_position) - 1  # the last position yielded
    while True:
        records = store.read_all(from_position=position + 1, page_size=page_size)
        try:
            async for record in records:
                yield record
                position = record.position
        finally:
            close = getattr(records, "aclose", None)
            if close is not None:
                await close()
        await store.wait_for_append(position)
