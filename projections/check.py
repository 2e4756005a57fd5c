"""Are the persisted projections what the log says? Rows edited behind the store's back (a
payment moved to another account, an account's state changed) are derived data nobody signs,
so ``verify`` folds the log up to the projections' checkpoint and compares every row with the
fold's, byte for byte, naming the first that differs."""

from __future__ import annotations

from collections.abc import AsyncIterator

import msgspec

from ledger.states import StateRow
from ledger.store import EventStore, record_from_row

from .fold import World
from .rows import NAME, PROJECTION_VERSION, rows_of

__all__ = ["ProjectionReport", "check_projections"]

_PAGE = 20_000


class ProjectionReport(msgspec.Struct, frozen=True, kw_only=True):
    """The outcome of :func:`check_projections`."""

    ok: bool
    checkpoint: int
    """The last position the rows include."""
    rows: int
    """Rows compared."""
    kind: str | None = None
    key: str | None = None
    """The first row that differs."""
    position: int | None = None
    """The position the differing row says it includes (the fold's, when the row is missing)."""
    reason: str | None = None


async def _stored(store: EventStore, name: str) -> AsyncIterator[StateRow]:
    async for page in store.states.scan(name):
        for row in page:
            yield row


async def check_projections(store: EventStore, *, name: str = NAME) -> ProjectionReport:
    """Compare the persisted rows with a fold of the log up to their checkpoint."""
    cp = await store.states.checkpoint(name)
    if cp.version is None:
        return ProjectionReport(ok=True, checkpoint=0, rows=0, reason="no projection rows")
    if cp.version != PROJECTION_VERSION:
        return ProjectionReport(
            ok=True,
            checkpoint=cp.position,
            rows=0,
            reason=f"rows of projection version {cp.version} are ignored until a rebuild",
        )
    head = await store.head()
    if cp.position > head:
        return ProjectionReport(
            ok=False,
            checkpoint=cp.position,
            rows=0,
            reason=f"the projections' checkpoint {cp.position} is past the head {head}",
        )
    world = World()
    low = 1
    while low <= cp.position:
        high = min(cp.position, low + _PAGE - 1)
        for row in await store.read_rows(low, high):
            world.apply(record_from_row(row))
        low = high + 1
    expected = rows_of(world, dirty_only=False)
    compared = 0
    stored = _stored(store, name)
    for want in [*expected, None]:
        got = await anext(stored, None)
        if want is None and got is None:
            break
        if got is None or (want is not None and (want.kind, want.key) < (got.kind, got.key)):
            assert want is not None
            return ProjectionReport(
                ok=False,
                checkpoint=cp.position,
                rows=compared,
                kind=want.kind,
                key=want.key,
                position=want.position,
                reason="missing: the log's fold has this row",
            )
        if want is None or (got.kind, got.key) < (want.kind, want.key):
            return ProjectionReport(
                ok=False,
                checkpoint=cp.position,
                rows=compared,
                kind=got.kind,
                key=got.key,
                position=got.position,
                reason="not in the log's fold",
            )
        if got != want:
            fields = [f for f in StateRow.__struct_fields__ if getattr(got, f) != getattr(want, f)]
            return ProjectionReport(
                ok=False,
                checkpoint=cp.position,
                rows=compared,
                kind=got.kind,
                key=got.key,
                position=got.position,
                reason=f"its {', '.join(fields)} differ from the log's fold",
            )
        compared += 1
    return ProjectionReport(ok=True, checkpoint=cp.position, rows=compared)
