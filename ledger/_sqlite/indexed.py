"""The reads the read models and the replay make through the store contract (instead of SQL of
their own): pages of raw rows (or of their payloads only, or as one JSON text), payment streams'
bounds, a stream's last event, an account's payments. Each is one statement on an index. A page
of the whole log keeps the promise of :mod:`.reads`: every position, or
:class:`DamagedStoreError`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection
from typing import Any, Final

import msgspec

from ..store import CURRENT_SHAPE, PAYLOAD_COLUMNS, PayloadRow, RawRow, Record, record_from_row
from .layout import Layout
from .reads import SELECT, Fetch, short_read
from .writer import in_clause

__all__ = [
    "account_events",
    "last_event",
    "payments_of",
    "read_json_page",
    "read_payloads",
    "read_rows",
    "stream_bounds",
]

_NO_END: Final = (1 << 63) - 1


def _after_prefix(prefix: str) -> str:
    """The least string above every string that starts with ``prefix`` (SQLite compares text
    by its UTF-8 bytes, which keeps code-point order)."""
    if not prefix:
        return chr(0x10FFFF) * 2
    last = ord(prefix[-1])
    if last >= 0x10FFFF:
        return _after_prefix(prefix[:-1])
    return prefix[:-1] + chr(last + 1 if last + 1 not in range(0xD800, 0xE000) else 0xE000)


async def read_rows(
    fetch: Fetch,
    from_position: int,
    to_position: int,
    head: int,
    *,
    skip_types: Collection[str] = (),
    keep_streams: Collection[str] = (),
) -> list[RawRow]:
    """One page of raw rows (see :meth:`ledger.store.EventStore.read_rows`); an unfiltered
    page holds every position of the range up to ``head`` or raises."""
    return await _page(fetch, SELECT, from_position, to_position, head, skip_types, keep_streams)


async def read_payloads(
    fetch: Fetch,
    head: Callable[[], Awaitable[int]],
    from_position: int,
    to_position: int,
    *,
    skip_types: Collection[str] = (),
    keep_streams: Collection[str] = (),
    with_stream: bool = False,
) -> list[PayloadRow]:
    """One page of payloads (see :meth:`ledger.store.EventStore.read_payloads`), with the
    promise of :func:`read_rows`. A whole page is one statement (a pass that reads ahead keeps
    one job in the reader's thread per page); only a page that comes back short asks for the
    head, then reads the positions the head says exist and the page lacked (appended after the
    first statement, or missing: damage)."""
    select = f"SELECT {PAYLOAD_COLUMNS}{', stream' if with_stream else ''} FROM events"
    low = max(1, from_position)
    rows = await _page(
        fetch, select, low, to_position, _NO_END, skip_types, keep_streams, whole=False
    )
    if skip_types or len(rows) >= to_position - low + 1:
        return rows
    end = min(to_position, await head())
    missing = low + len(rows)
    if missing <= end:
        rows += await _page(fetch, select, missing, end, end, (), ())
    return rows


_JSON_PAGE: Final = (
    f"SELECT count(*), min(position), max(position), sum(NOT ({CURRENT_SHAPE})), "
    "'[' || group_concat('[' || position || ',' || data || ']', ',') || ']' "
    "FROM (SELECT position, type, schema, data FROM events "
    "WHERE position >= ? AND position <= ? ORDER BY position)"
)
"""One page as one JSON text, made by SQLite: no Python object per row. (The aggregate takes
the rows in the subquery's order; the caller checks the positions it decodes all the same.)"""


async def read_json_page(
    fetch: Fetch, head: Callable[[], Awaitable[int]], from_position: int, to_position: int
) -> str | None:
    """One page as one JSON array (see :meth:`ledger.store.EventStore.read_json_page`). Like
    :func:`read_payloads`, a page that comes back short asks for the head, and reads again up
    to it (positions appended after the first statement, or missing: the row-by-row read then
    names the first missing one)."""
    low = max(1, from_position)
    end = to_position
    for last_try in (False, True):
        if end < low:
            return "[]"
        ((count, first, last, stale, text),) = await fetch(_JSON_PAGE, (low, end), low)
        if count == end - low + 1 and first == low and last == end:
            return None if stale else str(text)
        if last_try:
            break
        end = min(to_position, await head())
    select = f"SELECT {PAYLOAD_COLUMNS} FROM events"
    await _page(fetch, select, low, end, end, (), ())  # raises, naming the missing position
    raise short_read(low, None)  # (the rows came back meanwhile: a damaged file all the same)


async def _page(
    fetch: Fetch,
    select: str,
    from_position: int,
    to_position: int,
    head: int,
    skip_types: Collection[str],
    keep_streams: Collection[str],
    *,
    whole: bool = True,
) -> list[Any]:
    """The rows of ``select`` at positions ``from_position`` to ``to_position`` (at most
    ``head``), without ``skip_types`` unless of ``keep_streams``. Unfiltered, the positions
    must follow each other, and with ``whole`` reach the end of the range, or it raises."""
    low = max(1, from_position)
    high = min(to_position, head)
    if high < low:
        return []
    sql = f"{select} WHERE position >= ? AND position <= ?"
    params: list[Any] = [low, high]
    if skip_types:
        in_types, type_params = in_clause("type", skip_types)
        in_streams, stream_params = in_clause("stream", keep_streams)
        sql += f" AND (NOT {in_types} OR {in_streams})"
        params += [*type_params, *stream_params]
    rows: list[Any] = await fetch(sql + " ORDER BY position", params, low)
    if not skip_types:
        for expected, row in enumerate(rows, start=low):
            if row[0] != expected:
                raise short_read(expected, row[0])
        if whole and len(rows) != high - low + 1:
            raise short_read(low + len(rows), None)
    return rows


async def stream_bounds(
    fetch: Fetch,
    layout: Layout,
    prefix: str,
    *,
    types: Collection[str] | None = None,
    to_position: int | None = None,
) -> dict[str, tuple[int, int]]:
    end = _NO_END if to_position is None else to_position
    low, high = prefix, _after_prefix(prefix)
    if layout.numbered:
        return await _numbered_bounds(fetch, layout, low, high, types, end)
    if types is None:
        rows = await fetch(
            "SELECT stream, MIN(position), MAX(position) FROM events "
            "WHERE stream >= ? AND stream < ? AND position <= ? GROUP BY stream",
            (low, high, end),
        )
    else:
        in_types, type_params = in_clause("type", types)
        rows = await fetch(
            "SELECT h.stream, "
            "(SELECT MIN(e.position) FROM events e WHERE e.stream = h.stream), "
            "(SELECT e.position FROM events e WHERE e.stream = h.stream AND e.position <= ? "
            "ORDER BY e.version DESC LIMIT 1) "
            f"FROM (SELECT DISTINCT stream FROM events WHERE {in_types} AND position <= ? "
            "AND stream >= ? AND stream < ?) h",
            (end, *type_params, end, low, high),
        )
    return {str(stream): (int(first), int(last)) for stream, first, last in rows}


async def _numbered_bounds(
    fetch: Fetch,
    layout: Layout,
    low: str,
    high: str,
    types: Collection[str] | None,
    end: int,
) -> dict[str, tuple[int, int]]:
    """:func:`stream_bounds` on schema 4: the streams by name in ``streams``, their events by
    number (``CROSS JOIN`` keeps that order), those of some types through the partial index."""
    if types is None:
        rows = await fetch(
            "SELECT s.name, MIN(e.position), MAX(e.position) "
            "FROM streams s CROSS JOIN events e ON e.stream_no = s.id "
            "WHERE s.name >= ? AND s.name < ? AND e.position <= ? GROUP BY s.name",
            (low, high, end),
        )
    else:
        in_types, type_params = layout.types_in(types)
        rows = await fetch(
            "SELECT s.name, "
            "(SELECT MIN(e.position) FROM events e WHERE e.stream_no = h.stream_no), "
            "(SELECT e.position FROM events e WHERE e.stream_no = h.stream_no "
            "AND e.position <= ? ORDER BY e.version DESC LIMIT 1) "
            f"FROM (SELECT DISTINCT stream_no FROM events{layout.by_types(types)} "
            f"WHERE {in_types} AND position <= ? AND stream >= ? AND stream < ?) h "
            "CROSS JOIN streams s ON s.id = h.stream_no",
            (end, *type_params, end, low, high),
        )
    return {str(stream): (int(first), int(last)) for stream, first, last in rows}


async def last_event(
    fetch: Fetch, layout: Layout, stream: str, to_position: int | None
) -> Record | None:
    end = _NO_END if to_position is None else to_position
    rows = await fetch(
        f"{SELECT} WHERE {layout.stream_is} AND position <= ? ORDER BY version DESC LIMIT 1",
        (stream, end),
    )
    return record_from_row(rows[0]) if rows else None


async def account_events(
    fetch: Fetch,
    layout: Layout,
    account_id: str,
    types: Collection[str],
    to_position: int | None,
) -> list[PayloadRow]:
    """:meth:`ledger.store.EventStore.read_account_events`: the account's payments by the
    index of payment requests by account (:func:`payments_of`), then their events by the stream
    index, merged with the account's own stream by position, in one statement."""
    end = _NO_END if to_position is None else to_position
    payments = await payments_of(fetch, account_id, to_position)
    in_streams, stream_params = layout.streams_in([f"payment-{p}" for p in payments])
    in_types, type_params = in_clause("type", types)
    sql = (
        f"SELECT {PAYLOAD_COLUMNS} FROM events WHERE {layout.stream_is} AND position <= ? "
        "UNION ALL "
        f"SELECT {PAYLOAD_COLUMNS} FROM events WHERE {in_streams} AND position <= ? "
        f"AND ({in_types} OR NOT ({CURRENT_SHAPE})) ORDER BY 1"
    )
    params = (f"account-{account_id}", end, *stream_params, end, *type_params)
    rows: list[PayloadRow] = await fetch(sql, params)
    return rows


class _AccountOf(msgspec.Struct):
    account_id: str


_ACCOUNT_OF: Final = msgspec.json.Decoder(_AccountOf)


async def payments_of(fetch: Fetch, account_id: str, to_position: int | None) -> list[str]:
    """By the index of payment requests by account. SQLite's JSON functions cut text at a NUL
    character, so the index is asked for the id up to its first NUL and every row found is
    checked against the whole id."""
    end = _NO_END if to_position is None else to_position
    rows = await fetch(
        "SELECT stream, data FROM events WHERE type = 'PaymentRequested' "
        "AND json_extract(data, '$.account_id') = ? AND position <= ? ORDER BY position",
        (account_id.split("\x00", 1)[0], end),
    )
    found = []
    for stream, data in rows:
        try:
            if _ACCOUNT_OF.decode(data).account_id != account_id:
                continue
        except (msgspec.ValidationError, msgspec.DecodeError):
            continue  # not readable: reading the payment's stream says why
        found.append(str(stream).removeprefix("payment-"))
    return found
