"""What the read models and the replay read, one statement each (:class:`ledger.store.EventStore`'s
``read_rows``, ``read_payloads``, ``stream_bounds``, ``last_event`` and ``payments_of``), every
one bounded by the committed head read in the same statement.

The plans, as ``EXPLAIN`` shows them on a store of a million events:

- ``read_rows``: a range of the primary key (``position``); the rows of the skipped types are
  filtered out as they are read, and the kept streams are a hashed subplan, not a list scanned
  for every row.
- ``stream_bounds`` with ``types``: the streams come from ``events_by_type`` (type, position),
  then each stream's first and last positions from two seeks on its ``(stream, version)``
  index. Without ``types`` every stream of the prefix is wanted, so one pass over the table
  groups them (a caller asking for every payment reads the whole log anyway).
- ``last_event``: one seek on ``(stream, version)``, backwards.
- ``read_streams`` (time travel's read of an account and its payments): a seek on
  ``(stream, version)`` per stream, each bounded to a page, merged by position. (Asked as one
  condition, ``stream = ANY(...)`` with the position range, the planner may AND the stream
  index with the whole primary key range, because the head bound read in the statement has no
  value at planning time: tens of milliseconds on a million events instead of a fraction of one.)
- ``payments_of``: the partial index ``events_requested_account`` (schema version 2), by the
  request's account id and position.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterable, Sequence
from typing import Any, Final, cast

import msgspec

from ..store import CURRENT_SHAPE, PAYLOAD_COLUMNS, PayloadRow, RawRow, Record
from .schema import REQUESTED_ACCOUNT
from .sql import ESC, HEAD_BOUND, MAX_POSITION, SELECT, escape, record, unescape

__all__ = [
    "last_event",
    "payments_of",
    "raw_rows",
    "read_json_page",
    "read_payloads",
    "read_rows",
    "read_streams",
    "stream_bounds",
]

Fetch = Callable[[str, Sequence[Any]], Awaitable[list[Any]]]

_READ: Final = (
    f"{SELECT} WHERE position >= $1 AND position <= $2 AND {HEAD_BOUND} ORDER BY position"
)
_READ_FILTERED: Final = (
    f"{SELECT} WHERE position >= $1 AND position <= $2 AND {HEAD_BOUND} "
    "AND (type <> ALL($3::text[]) OR stream IN (SELECT unnest($4::text[]))) ORDER BY position"
)
_BOUNDS: Final = (
    "SELECT stream, min(position), max(position) FROM events "
    f"WHERE starts_with(stream, $1) AND position <= $2 AND {HEAD_BOUND} GROUP BY stream"
)
_BOUNDS_OF_TYPES: Final = f"""
SELECT h.stream,
       (SELECT e.position FROM events e WHERE e.stream = h.stream ORDER BY e.version LIMIT 1),
       (SELECT e.position FROM events e WHERE e.stream = h.stream AND e.position <= h.bound
         ORDER BY e.version DESC LIMIT 1)
FROM (SELECT DISTINCT stream, least($2, (SELECT position FROM ledger_head WHERE id = 1)) AS bound
        FROM events
       WHERE type = ANY($3::text[]) AND starts_with(stream, $1) AND position <= $2
         AND {HEAD_BOUND}) h
"""
_LAST: Final = (
    f"{SELECT} WHERE stream = $1 AND position <= $2 AND {HEAD_BOUND} ORDER BY version DESC LIMIT 1"
)
_PAYMENTS: Final = (
    f"SELECT stream, data FROM events WHERE type = 'PaymentRequested' "
    f"AND {REQUESTED_ACCOUNT} = $1 AND position <= $2 AND {HEAD_BOUND} ORDER BY position"
)
_STREAMS_PAGE: Final = 1000
_STREAMS: Final = f"""
SELECT e.* FROM unnest($1::text[]) AS s(name) CROSS JOIN LATERAL (
    {SELECT} WHERE stream = s.name AND position >= $2 AND position <= $3 AND {HEAD_BOUND}
    ORDER BY version LIMIT {_STREAMS_PAGE}
) e ORDER BY e.position LIMIT {_STREAMS_PAGE}
"""
_ACCOUNT_OF: Final = msgspec.json.Decoder(dict[str, Any])


def _bound(to_position: int | None) -> int:
    return MAX_POSITION if to_position is None else max(0, min(int(to_position), MAX_POSITION))


def raw_rows(rows: list[Any]) -> list[RawRow]:
    """Rows selected as :data:`ledger._pg.sql.SELECT`, as :data:`ledger.store.RawRow`: the
    stream and the two ids unescaped. A row that needs nothing is returned as it came (an
    ``asyncpg.Record`` indexes, slices and unpacks like the tuple it stands for)."""
    out = cast(list[RawRow], rows)
    for i, row in enumerate(rows):
        stream, corr, caus = row[1], row[8], row[9]
        if ESC in stream or ESC in (corr or "") or ESC in (caus or ""):
            values = list(row)
            values[1] = unescape(stream)
            values[8] = None if corr is None else unescape(corr)
            values[9] = None if caus is None else unescape(caus)
            out[i] = tuple(values)
    return out


async def read_rows(
    fetch: Fetch,
    from_position: int,
    to_position: int,
    skip_types: Collection[str],
    keep_streams: Collection[str],
) -> list[RawRow]:
    low, high = max(1, int(from_position)), _bound(to_position)
    if low > high:
        return []
    if not skip_types:
        return raw_rows(await fetch(_READ, (low, high)))
    skip = sorted({escape(t) for t in skip_types})
    keep = sorted({escape(s) for s in keep_streams})
    return raw_rows(await fetch(_READ_FILTERED, (low, high, skip, keep)))


def _payloads_sql(with_stream: bool, filtered: bool) -> str:
    columns = PAYLOAD_COLUMNS + (", stream" if with_stream else "")
    where = f"position >= $1 AND position <= $2 AND {HEAD_BOUND}"
    if filtered:
        where += " AND (type <> ALL($3::text[]) OR stream IN (SELECT unnest($4::text[])))"
    return f"SELECT {columns} FROM events WHERE {where} ORDER BY position"


async def read_payloads(
    fetch: Fetch,
    from_position: int,
    to_position: int,
    skip_types: Collection[str],
    keep_streams: Collection[str],
    with_stream: bool,
) -> list[PayloadRow]:
    """:func:`read_rows` cut to ``(position, type, schema, data[, stream])``."""
    low, high = max(1, int(from_position)), _bound(to_position)
    if low > high:
        return []
    if not skip_types:
        rows = await fetch(_payloads_sql(with_stream, False), (low, high))
    else:
        skip = sorted({escape(t) for t in skip_types})
        keep = sorted({escape(s) for s in keep_streams})
        rows = await fetch(_payloads_sql(with_stream, True), (low, high, skip, keep))
    if not with_stream:
        return cast(list[PayloadRow], rows)
    out = cast(list[PayloadRow], rows)
    for i, row in enumerate(rows):
        if ESC in row[4]:
            out[i] = (*row[:4], unescape(row[4]))
    return out


_JSON_PAGE: Final = (
    f"SELECT count(*), count(*) FILTER (WHERE NOT ({CURRENT_SHAPE})), "
    "'[' || coalesce(string_agg('[' || position || ',' || data || ']', ',' ORDER BY position), "
    f"'') || ']' FROM events WHERE position >= $1 AND position <= $2 AND {HEAD_BOUND}"
)


async def read_json_page(fetch: Fetch, from_position: int, to_position: int) -> str | None:
    """A page as one JSON array, made by the server (see
    :meth:`ledger.store.EventStore.read_json_page`)."""
    low, high = max(1, int(from_position)), _bound(to_position)
    if low > high:
        return "[]"
    ((_, stale, text),) = await fetch(_JSON_PAGE, (low, high))
    return None if stale else str(text)


async def stream_bounds(
    fetch: Fetch, prefix: str, types: Collection[str] | None, to_position: int | None
) -> dict[str, tuple[int, int]]:
    end = _bound(to_position)
    if types is None:
        rows = await fetch(_BOUNDS, (escape(prefix), end))
    else:
        wanted = sorted({escape(t) for t in types})
        if not wanted:
            return {}
        rows = await fetch(_BOUNDS_OF_TYPES, (escape(prefix), end, wanted))
    return {unescape(stream): (int(first), int(last)) for stream, first, last in rows}


async def last_event(fetch: Fetch, stream: str, to_position: int | None) -> Record | None:
    rows = await fetch(_LAST, (escape(stream), _bound(to_position)))
    return record(rows[0]) if rows else None


async def read_streams(
    fetch: Fetch, streams: Iterable[str], from_position: int, to_position: int | None
) -> AsyncIterator[Record]:
    """The events of ``streams`` in position order, a page per statement. Within a stream,
    versions follow positions, so the first page of the merge is among the first page of each
    stream."""
    names = sorted({escape(s) for s in streams})
    if not names:
        return
    position, upper = max(1, int(from_position)), _bound(to_position)
    while position <= upper:
        rows = await fetch(_STREAMS, (names, position, upper))
        for row in rows:
            yield record(row)
        if len(rows) < _STREAMS_PAGE:
            return
        position = rows[-1][0] + 1


async def payments_of(fetch: Fetch, account_id: str, to_position: int | None) -> list[str]:
    # The index holds each id as its JSON text read with U+0000 as U+FFFD (see
    # ``schema.REQUESTED_ACCOUNT``): look the id up the same way, and when it holds a character
    # that lookup can confuse, keep the requests whose own account id is the one asked for.
    indexed = account_id.replace("\\u0000", "\\ufffd").replace("\x00", "\ufffd")
    exact = not any(c in account_id for c in ("\\", "\x00", "\ufffd"))
    rows = await fetch(_PAYMENTS, (indexed, _bound(to_position)))
    found: list[str] = []
    for stream, data in rows:
        if not exact and _ACCOUNT_OF.decode(data).get("account_id") != account_id:
            continue
        found.append(unescape(stream).removeprefix("payment-"))
    return found
