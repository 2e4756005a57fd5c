"""The read queries. Reads of the whole log promise every position and keep the promise or
raise :class:`DamagedStoreError`: a page that comes back short, a position that jumps, a
version that skips, a row that cannot be read or decoded. Filtered reads (a set of streams, a
query) cannot know what they should find; :func:`census` is their guard: the events table's
b-tree must hold exactly the positions 1 to the head.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any, Final, Protocol

from ..errors import DamagedStoreError
from ..records import read_backwards
from ..store import Record, record_from_row, to_micros
from .layout import Layout

__all__ = [
    "BACKWARDS",
    "BY_TIME",
    "ROW_COST",
    "SELECT",
    "Fetch",
    "census",
    "first_gap",
    "position_at",
    "query_clauses",
    "read_filtered",
    "read_range",
    "read_versions",
    "short_read",
]

SELECT: Final = (
    "SELECT position, stream, version, type, schema, occurred_at, recorded_at, "
    "event_id, correlation_id, causation_id, data FROM events"
)
_RANGE: Final = f"{SELECT} WHERE position >= ? AND position <= ? ORDER BY position"


class Fetch(Protocol):
    """Rows of one read query; ``position``: the first position the read needs (named if the
    file turns out to be damaged)."""

    def __call__(
        self, sql: str, params: Sequence[Any], position: int = 1
    ) -> Awaitable[list[Any]]: ...


def short_read(position: int, found: int | None) -> DamagedStoreError:
    detail = f"the read jumped to position {found}" if found is not None else "it is missing"
    return DamagedStoreError(
        position,
        f"position {position} cannot be read from the events table ({detail}); "
        "nothing is answered from part of the log: run `payledger verify`",
    )


async def read_range(
    fetch: Fetch,
    head: Callable[[], Awaitable[int]],
    from_position: int,
    to_position: int | None,
    page_size: int,
) -> AsyncIterator[Record]:
    """Every position from ``from_position`` to ``to_position`` (or to the head, followed
    while it moves), each exactly once, in order."""
    position = max(1, from_position)
    end = await head()
    if to_position is not None:
        end = min(end, to_position)
    while True:
        while position <= end:
            high = min(end, position + page_size - 1)
            rows = await fetch(_RANGE, (position, high), position)
            for row in rows:
                if row[0] != position:
                    raise short_read(position, row[0])
                yield record_from_row(row)
                position += 1
            if position <= high:
                raise short_read(position, None)
        if to_position is not None and end >= to_position:
            return
        now = await head()
        if now <= end:
            return
        end = now if to_position is None else min(now, to_position)


async def read_versions(
    fetch: Fetch, layout: Layout, stream: str, from_version: int, to_position: int | None
) -> AsyncIterator[Record]:
    """The events of one stream, versions ``from_version``, ``from_version + 1``, ... with no
    version skipped (a skip is damage: versions are gap-free)."""
    sql = f"{SELECT} WHERE {layout.stream_is} AND version >= ?"
    if to_position is not None:
        sql += " AND position <= ?"
    sql += " ORDER BY version LIMIT 1000"
    version = max(1, from_version)
    while True:
        params: list[Any] = [stream, version]
        if to_position is not None:
            params.append(to_position)
        rows = await fetch(sql, params)
        for row in rows:
            if row[2] != version:
                raise DamagedStoreError(
                    row[0],
                    f"stream {stream!r} jumps from version {version - 1} to {row[2]} "
                    f"(position {row[0]}): the events table is damaged or altered",
                )
            yield record_from_row(row)
            version += 1
        if len(rows) < 1000:
            return


async def read_filtered(
    fetch: Fetch,
    where: str,
    params: Sequence[Any],
    from_position: int,
    to_position: int | None,
    page_size: int = 1000,
) -> AsyncIterator[Record]:
    """The events matching ``where``, in position order, page by page."""
    clauses = [where] if where else []
    clauses.append("position >= ?")
    if to_position is not None:
        clauses.append("position <= ?")
    sql = f"{SELECT} WHERE {' AND '.join(clauses)} ORDER BY position LIMIT {int(page_size)}"
    position = max(1, from_position)
    while True:
        bound = [*params, position] + ([to_position] if to_position is not None else [])
        rows = await fetch(sql, bound, position)
        for row in rows:
            yield record_from_row(row)
        if len(rows) < page_size:
            return
        position = rows[-1][0] + 1


async def first_gap(fetch: Fetch, upto: int) -> int | None:
    """The first position up to ``upto`` the events table's b-tree does not give back (a
    scan of its keys only, in key order), or None. Where a page cannot be read, smaller and
    smaller reads close in on the first position that cannot."""
    expected, limit = 1, 20000
    while expected <= upto:
        try:
            rows = await fetch(
                "SELECT position FROM events NOT INDEXED WHERE position >= ? "
                f"ORDER BY position LIMIT {limit}",
                (expected,),
                expected,
            )
        except DamagedStoreError:
            if limit == 1:
                return expected
            limit = max(1, limit // 8)
            continue
        for (position,) in rows:
            if position != expected:
                return expected
            expected += 1
            if expected > upto:
                return None
        if len(rows) < limit:
            return expected
    return None


_CENSUS: Final = (
    "SELECT (SELECT position FROM ledger_head WHERE id = 1), "
    "(SELECT count(*) FROM events NOT INDEXED), (SELECT max(position) FROM events)"
)


async def census(fetch: Fetch) -> int:
    """Check that the events table holds exactly the positions 1 to the head (a count of its
    b-tree's cells: every leaf page is visited, no row is decoded); returns the head. Raises
    :class:`DamagedStoreError` naming the first position missing."""
    try:
        ((head, count, last),) = await fetch(_CENSUS, ())
    except DamagedStoreError as e:
        gap = await first_gap(fetch, 2**62)
        raise DamagedStoreError(
            gap or e.position,
            f"the events table cannot be read whole ({e.reason})",
        ) from e
    head = int(head or 0)
    if count == head and (last or 0) == head:
        return head
    gap = await first_gap(fetch, head)
    if gap is None:
        gap = head + 1
    raise DamagedStoreError(
        gap,
        f"the events table holds {count} rows up to position {last}, but the log's head is "
        f"{head}: position {gap} is missing; nothing is answered from part of the log "
        "(run `payledger verify`)",
    )


def query_clauses(
    layout: Layout,
    stream: str | None,
    types: Sequence[str] | None,
    since: datetime | None,
    until: datetime | None,
    correlation_id: str | None,
) -> tuple[str, list[Any]]:
    """The ``WHERE`` of :meth:`EventStore.query` and its parameters (every value bound)."""
    clauses: list[str] = []
    params: list[Any] = []
    if stream is not None:
        clauses.append(layout.stream_is)
        params.append(stream)
    if types:
        in_types, type_params = layout.types_in(types)
        clauses.append(in_types)
        params.extend(type_params)
    if since is not None:
        clauses.append("occurred_at >= ?")
        params.append(to_micros(since))
    if until is not None:
        clauses.append("occurred_at <= ?")
        params.append(to_micros(until))
    if correlation_id is not None:
        clauses.append("correlation_id = ?")
        params.append(correlation_id)
    return " AND ".join(clauses), params


_ENDS: Final = (
    "SELECT (SELECT occurred_at FROM events WHERE position = (SELECT min(position) FROM events)), "
    "(SELECT occurred_at FROM events WHERE position = (SELECT max(position) FROM events)), "
    "(SELECT max(position) FROM events)"
)
BACKWARDS: Final = "SELECT max(position) FROM events NOT INDEXED WHERE occurred_at <= ?"
"""The table read from the head down to the first row that qualifies: the cost grows with the
rows after the answer."""
BY_TIME: Final = "SELECT max(position + 0) FROM events WHERE occurred_at <= ?"
"""The index by time read up to the moment (``+ 0`` keeps SQLite from reading the table
backwards instead): the cost grows with the events before the answer, a few bytes each."""
ROW_COST: Final = 4
"""About how many entries of the index by time one table row read backwards costs (a row
holds the event's data; an entry a time and a position)."""


async def position_at(fetch: Fetch, moment: datetime) -> int:
    """The last position whose event occurred at or before ``moment`` (0 if none).

    ``occurred_at`` need not follow positions (late events, imports), so both ways of reading
    give the exact answer; which is cheaper depends on where the moment falls. Logs are mostly
    in time order, so the first and last events' times place it: near the head the table is
    read backwards, further back the index by time forwards. A moment at or after the last
    event's is answered with the head at once (:func:`ledger.records.read_backwards`)."""
    bound = to_micros(moment)
    first, last, head = (await fetch(_ENDS, ()))[0]
    if head is None:
        return 0
    if last <= bound:
        return int(head)
    sql = BACKWARDS if read_backwards(first, last, head, bound, ROW_COST) else BY_TIME
    value = (await fetch(sql, (bound,)))[0][0]
    return int(value) if value is not None else 0
