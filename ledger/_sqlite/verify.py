"""``verify``: the hash-chain walk (positions, versions, hashes, the head) and SQLite's own
integrity check of the file, and, when the file is damaged, where.

Alteration through SQL (a row changed, deleted or inserted behind the store's back) is found by
the walk and named by its first bad position. Damage to the file (a page overwritten or cut
off) is found by the integrity check, or by the walk when a read fails or comes back short,
and is located by scanning each b-tree: the events table in key order (its first missing
position), each index against the table (the first position it lacks or holds too many).
Checks that need more than the log (the projection tables against a fold of the log, a later
task) register with :func:`add_check` and run after the rest has passed.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Final

from ..errors import DamagedStoreError
from ..store import GENESIS_HASH, SUMMED_TYPES, IntegrityReport, chain_hash
from .reads import Fetch, first_gap
from .schema import INDEX_FILTERS, OLD_INDEX_FILTERS, file_shortfall

__all__ = ["ExtraCheck", "add_check", "verify"]

ExtraCheck = Callable[[Fetch], Awaitable[IntegrityReport | None]]
"""A check run by ``verify`` once the log and the file have passed: given the read query
function, it returns a failed report, or None."""
_EXTRA: list[ExtraCheck] = []


def add_check(check: ExtraCheck) -> Callable[[], None]:
    """Run ``check`` in every later ``verify`` of an SQLite store (after the chain walk and the
    integrity check have passed); returns a function that removes it."""
    _EXTRA.append(check)
    return lambda: _EXTRA.remove(check)


_SUMMED_IN: Final = ", ".join(f"'{name}'" for name in sorted(SUMMED_TYPES))
_WALK: Final = (
    "SELECT position, stream, version, event_id, correlation_id, causation_id, "
    "recorded_at, schema, data, hash, "
    f"CASE WHEN type IN ({_SUMMED_IN}) AND json_valid(data) "
    "THEN json_extract(data, '$.amount_minor') END, {numbered} "
    "FROM events WHERE position > ? AND position <= ? ORDER BY position LIMIT 5000"
)
_NUMBERED: Final = (
    "stream_no, stream_no IS NOT NULL AND (SELECT name FROM streams WHERE id = stream_no) IS stream"
)
"""Schema 4: each event's stream number, and whether ``streams`` names its stream by it."""
_ROW_IN_INDEX: Final = re.compile(r"row (\d+) missing from index (\w+)")
_INDEX_NAMED: Final = re.compile(r"index (\w+)")


class _Walk:
    """The chain walk's progress, so a failure can say how far it got."""

    def __init__(self) -> None:
        self.prev = GENESIS_HASH
        self.expected = 1
        self.summed = 0

    def bad(self, position: int | None, reason: str, damaged: str | None = None) -> IntegrityReport:
        return IntegrityReport(
            ok=False,
            checked=self.expected - 1,
            head_position=self.expected - 1,
            head_hash=self.prev.hex(),
            first_bad_position=position,
            reason=reason,
            damaged=damaged,
        )


async def _walk(fetch: Fetch, walk: _Walk, schema_version: int) -> IntegrityReport | None:
    """The chain walk; None when it finds nothing wrong."""
    summed_column = "summed_minor" if schema_version >= 2 else "NULL"
    head_rows = await fetch(f"SELECT position, hash, {summed_column} FROM ledger_head", ())
    if not head_rows:
        return walk.bad(1, "the store's head record is missing")
    head_position, head_hash, head_summed = head_rows[0]
    versions: dict[str, int] = {}
    numbers: dict[str, int] = {}
    walk_sql = _WALK.format(numbered=_NUMBERED if schema_version >= 4 else "NULL, 1")
    after = 0
    while True:
        rows = await fetch(walk_sql, (after, head_position), walk.expected)
        for row in rows:
            position, stream, version, eid, corr, caus, rec, schema, data, stored, amount = row[:11]
            expected = walk.expected
            if position != expected:
                return walk.bad(expected, f"position {expected} is missing (next is {position})")
            if version != versions.get(stream, 0) + 1:
                return walk.bad(position, f"stream {stream!r} jumps to version {version}")
            number, named = row[11], row[12]
            if not named or numbers.setdefault(stream, number) != number:
                return walk.bad(
                    position,
                    f"its stream number ({number}) is not the number of stream {stream!r}",
                )
            digest = chain_hash(
                walk.prev, position, stream, version, eid, corr, caus, rec, schema, data
            )
            if digest != stored:
                return walk.bad(position, "its hash does not match its content and the chain")
            versions[stream] = version
            walk.summed += amount or 0
            walk.prev, walk.expected = digest, expected + 1
        if len(rows) < 5000:
            break
        after = rows[-1][0]
    last = walk.expected - 1
    if head_position > last:
        return walk.bad(
            walk.expected, f"the log ends at {last} but its head records {head_position}"
        )
    # One statement, one snapshot: rows beyond the head as it is now were not appended by
    # the store (an append moves the head in the same transaction).
    ((head_now, max_position),) = await fetch(
        "SELECT (SELECT position FROM ledger_head WHERE id = 1), "
        "(SELECT MAX(position) FROM events)",
        (),
    )
    if max_position is not None and head_now is not None and max_position > head_now:
        beyond = max(head_now, last) + 1
        return walk.bad(beyond, f"events after the recorded head {head_now}")
    if head_hash != walk.prev:
        return walk.bad(max(last, 1), "the head hash does not match the log")
    if head_summed is not None and head_summed != walk.summed:
        return walk.bad(
            max(last, 1),
            f"the head's summed amounts ({head_summed:,}) do not match the log's ({walk.summed:,})",
        )
    return None


async def _index_diff(fetch: Fetch, index: str, filters: dict[str, str]) -> tuple[int | None, str]:
    """The first position where ``index`` and the events table disagree, and what differs."""
    where = filters[index]
    try:
        listed = {
            row[0]
            for row in await fetch(f"SELECT position FROM events INDEXED BY {index} {where}", ())
        }
    except DamagedStoreError as e:
        return None, f"its pages cannot be read ({e.reason})"
    try:
        rows = await fetch(f"SELECT position FROM events NOT INDEXED {where}", ())
    except DamagedStoreError as e:
        return None, f"the events table cannot be read to compare with it ({e.reason})"
    stored = {row[0] for row in rows}
    differ = listed ^ stored
    if not differ:
        return None, ""
    first = min(differ)
    side = "lacks" if first in stored else "holds a stray entry for"
    return first, f"it {side} position {first} ({len(differ)} positions differ)"


async def _locate(
    fetch: Fetch, lines: list[str], head: int, filters: dict[str, str]
) -> list[tuple[int | None, str]]:
    """What the damage the integrity check reported touches: ``(first position, what)``."""
    found: list[tuple[int | None, str]] = []
    gap = await first_gap(fetch, head)
    if gap is not None:
        found.append((gap, "the events table"))
    named: dict[str, int | None] = {}
    for line in lines:
        for number, index in _ROW_IN_INDEX.findall(line):
            if index in filters:
                known = named.get(index)
                named[index] = int(number) if known is None else min(known, int(number))
        for index in _INDEX_NAMED.findall(line):
            if index in filters:
                named.setdefault(index, None)
    pages = gap is None and any("page" in line.lower() or "stopped" in line for line in lines)
    for index in filters:
        if index not in named and not pages:  # (indexes are not compared with a broken table)
            continue
        position, detail = await _index_diff(fetch, index, filters)
        known = named.get(index)
        if position is not None or detail or index in named:
            first = (
                min(p for p in (position, known) if p is not None)
                if (position is not None or known is not None)
                else None
            )
            found.append((first, f"index {index}" + (f": {detail}" if detail else "")))
    if "sqlite_autoindex_events_1" in filters and (  # schema 4: reads by stream go through it
        pages or any("streams" in line for line in lines)
    ):
        found.extend(await _streams_diff(fetch))
    return found


async def _streams_diff(fetch: Fetch) -> list[tuple[int | None, str]]:
    """Where the ``streams`` table and its index by name disagree: the first position of the
    first stream affected (a stream whose name cannot be found is read as empty)."""
    try:
        stored = {tuple(row) for row in await fetch("SELECT name, id FROM streams NOT INDEXED", ())}
    except DamagedStoreError as e:
        return [(None, f"the streams table: its pages cannot be read ({e.reason})")]
    try:
        by_name = "SELECT name, id FROM streams INDEXED BY sqlite_autoindex_streams_1"
        listed = {tuple(row) for row in await fetch(by_name, ())}
    except DamagedStoreError as e:
        return [(None, f"index sqlite_autoindex_streams_1: its pages cannot be read ({e.reason})")]
    differ = listed ^ stored
    if not differ:
        return []
    first = min(number for _, number in differ)
    rows = await fetch("SELECT min(position) FROM events WHERE stream_no = ?", (first,))
    position = rows[0][0] if rows else None
    return [
        (
            position,
            f"index sqlite_autoindex_streams_1: it and the streams table disagree on stream "
            f"number {first} ({len(differ)} streams differ)",
        )
    ]


async def _damage(
    fetch: Fetch, path: str, head: int, filters: dict[str, str]
) -> tuple[int | None, str, str] | None:
    """``(first position affected, what is damaged, what SQLite said)``, or None."""
    shortfall = file_shortfall(path)
    try:
        lines = [str(row[0]) for row in await fetch("PRAGMA integrity_check(20)", ())]
    except DamagedStoreError as e:
        lines = [f"the integrity check stopped: {e.reason}"]
    if lines == ["ok"] and shortfall is None:
        return None
    said = "; ".join(line.replace("\n", "; ") for line in lines[:3])
    said = said if len(said) <= 200 else said[:200] + " ..."

    located = await _locate(fetch, lines, head, filters)
    parts = [what for _, what in located]
    if shortfall is not None:
        size, promised = shortfall
        parts.insert(
            0, f"the file is cut short ({size:,} bytes of the {promised:,} its header promises)"
        )
    if not parts:
        parts.append("pages outside the events and their indexes (every event reads whole)")
    positions = [p for p, _ in located if p is not None]
    return (min(positions) if positions else None), "; ".join(parts), said


async def verify(fetch: Fetch, path: str, schema_version: int) -> IntegrityReport:
    """Walk the chain, then run SQLite's integrity check (see the module docstring)."""
    walk = _Walk()
    try:
        report = await _walk(fetch, walk, schema_version)
        read_failed: int | None = None
    except DamagedStoreError as e:
        report, read_failed = None, e.position
    head = walk.expected - 1
    try:
        ((recorded,),) = await fetch("SELECT position FROM ledger_head WHERE id = 1", ())
        head = max(head, int(recorded))
    except (DamagedStoreError, ValueError, TypeError):
        pass
    filters = INDEX_FILTERS if schema_version >= 4 else OLD_INDEX_FILTERS
    damage = await _damage(fetch, path, head, filters)
    if damage is None and read_failed is not None:
        damage = (read_failed, "the events table", "a read of the events failed")
    if damage is None:
        if report is not None:
            return report
        for check in _EXTRA:
            found = await check(fetch)
            if found is not None:
                return found
        return IntegrityReport(
            ok=True, checked=walk.expected - 1, head_position=head, head_hash=walk.prev.hex()
        )
    position, what, said = damage
    first = position  # located in the b-trees: more precise than where a read stopped
    if first is None:
        first = read_failed
    if first is None and report is not None:
        first = report.first_bad_position
    where = f"from position {first}" if first is not None else "no position can be named"
    return walk.bad(
        first,
        f"the file is damaged ({where}): {what} (SQLite's integrity check: {said})",
        damaged=what,
    )
