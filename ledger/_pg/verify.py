"""The integrity walk: positions, stream versions, the hash chain and the head (its position, its
hash and, from schema version 3, its running total of the amounts the projections add up).

The walk stops at the head read first, so appends committed meanwhile (each moves the head in
its own transaction) are not taken for rows written behind the store's back; rows beyond the
head as it is at the end were not appended by the store, and are named.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final

import msgspec

from ..store import GENESIS_HASH, SUMMED_TYPES, IntegrityReport, chain_hash
from .sql import unescape, unescape_optional

__all__ = ["verify"]

Fetch = Callable[[str, Sequence[Any]], Awaitable[list[Any]]]

_PAGE: Final = 5000
_WALK: Final = (
    "SELECT position, stream, version, event_id, correlation_id, causation_id, recorded_at, "
    "schema, data, hash, type FROM events WHERE position > $1 AND position <= $2 "
    f"ORDER BY position LIMIT {_PAGE}"
)
_BEYOND: Final = (
    "SELECT (SELECT position FROM ledger_head WHERE id = 1), (SELECT max(position) FROM events)"
)


class _Amount(msgspec.Struct):
    amount_minor: int = 0


_AMOUNT: Final = msgspec.json.Decoder(_Amount)


def _amount(data: str) -> int:
    """The ``amount_minor`` of an event's JSON (0 when it has none, or is not JSON: the hash
    check has named such a row already)."""
    try:
        return _AMOUNT.decode(data).amount_minor
    except msgspec.DecodeError:
        return 0


async def verify(fetch: Fetch, schema_version: int) -> IntegrityReport:
    """Walk the log through ``fetch`` (one statement, its rows) of a store at
    ``schema_version``."""
    summed_column = "summed_minor" if schema_version >= 3 else "NULL::bigint"
    head_rows = await fetch(
        f"SELECT position, hash, {summed_column} FROM ledger_head WHERE id = 1", ()
    )
    prev, expected, checked, summed = GENESIS_HASH, 1, 0, 0
    versions: dict[str, int] = {}

    def bad(position: int, reason: str) -> IntegrityReport:
        return IntegrityReport(
            ok=False,
            checked=checked,
            head_position=expected - 1,
            head_hash=prev.hex(),
            first_bad_position=position,
            reason=reason,
        )

    if not head_rows:
        return bad(1, "the store's head record is missing")
    head_position, head_hash, head_summed = head_rows[0]
    after = 0
    while True:
        rows = await fetch(_WALK, (after, head_position))
        for row in rows:
            position, stored_stream, version, eid, corr, caus, rec, schema, data, stored, kind = row
            stream = unescape(stored_stream)
            if position != expected:
                return bad(expected, f"position {expected} is missing (next is {position})")
            if version != versions.get(stream, 0) + 1:
                return bad(position, f"stream {stream!r} jumps to version {version}")
            digest = chain_hash(
                prev,
                position,
                stream,
                version,
                eid,
                unescape_optional(corr),
                unescape_optional(caus),
                rec,
                schema,
                data,
            )
            if digest != stored:
                return bad(position, "its hash does not match its content and the chain")
            versions[stream] = version
            if kind in SUMMED_TYPES:
                summed += _amount(data)
            prev, expected, checked = digest, expected + 1, checked + 1
        if len(rows) < _PAGE:
            break
        after = rows[-1][0]
    last = expected - 1
    if head_position > last:
        return bad(expected, f"the log ends at {last} but its head records {head_position}")
    ((head_now, max_position),) = await fetch(_BEYOND, ())
    if max_position is not None and head_now is not None and max_position > head_now:
        beyond = max(head_now, last) + 1
        return bad(beyond, f"events after the recorded head {head_now}")
    if bytes(head_hash) != prev:
        return bad(max(last, 1), "the head hash does not match the log")
    if head_summed is not None and head_summed != summed:
        return bad(
            max(last, 1),
            f"the head's summed amounts ({head_summed:,}) do not match the log's ({summed:,})",
        )
    return IntegrityReport(ok=True, checked=checked, head_position=last, head_hash=prev.hex())
