"""SQLite schema 4 (stream numbers, the partial index of rare types) and the migration of older
stores. A store written by an older payledger (made here by :func:`old_stores.downgrade`, from a
store of this one: no binary files) reads as it is when opened read-only, is migrated when first
opened for writing, verifies before and after, keeps its Merkle tree and its summed amounts, and
gives the same answers and the same export, line for line. An export imported into a new store
of any backend exports back line for line, with the same head hash: the chain hashes do not
depend on the storage layout. Every read by stream or by rare type goes through an index."""

from __future__ import annotations

import re
import shutil
import sqlite3
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest
from backends import Backend
from logs import build
from old_stores import downgrade
from store_contract import opened

from ledger import ImportItem, open_store
from ledger.codec import encode_record, read_lines
from ledger.events import Event, stream_of
from ledger.sqlite import SCHEMA_VERSION, SQLiteEventStore
from ledger.store import EventStore
from ledger.tree import check_tree, log_root

pytestmark = pytest.mark.anyio

EVENTS = build([(i * 7 % 20, i * 7919 % 10_000) for i in range(900)])
RARE = ("PaymentDeclined", "PaymentAbandoned")
COMMON = ("PaymentRequested", "PaymentSettled")


async def _fill(path: Path) -> None:
    """Single appends (some with correlation ids), concurrent appends on many streams (group
    commits), and an import with explicit ids, in the log's order per stream."""
    third = len(EVENTS) // 3
    async with open_store(path) as store:
        for i, event in enumerate(EVENTS[:third]):
            await store.append(
                stream_of(event), [event], correlation_id=f"c-{i % 4}" if i % 3 == 0 else None
            )
        by_stream: dict[str, list[Event]] = {}
        for event in EVENTS[third : 2 * third]:
            by_stream.setdefault(stream_of(event), []).append(event)

        async def one(events: list[Event]) -> None:
            for event in events:
                await store.append(stream_of(event), [event])

        async with anyio.create_task_group() as tg:
            for events in by_stream.values():
                tg.start_soon(one, events)
        items = [
            ImportItem(
                stream=stream_of(e),
                event=e,
                event_id=f"00000000-0000-7000-8000-{i:012d}" if i % 2 else None,
            )
            for i, e in enumerate(EVENTS[2 * third :])
        ]
        await store.import_events(items)


async def _export(path: Path, *, readonly: bool = True) -> list[bytes]:
    async with open_store(path, readonly=readonly) as store:
        return [encode_record(r) async for r in store.read_all()]


async def _answers(store: EventStore) -> dict[str, Any]:
    """What every read by stream, type, time or account answers (positions)."""

    async def positions(records: Any) -> list[int]:
        return [r.position async for r in records]

    streams = sorted({stream_of(e) for e in EVENTS})
    payments = [s for s in streams if s.startswith("payment-")]
    channels = [s for s in streams if s.startswith("channel-")]
    accounts = sorted({getattr(e, "account_id", "") for e in EVENTS} - {""})
    middle = EVENTS[len(EVENTS) // 2].occurred_at
    out: dict[str, Any] = {
        "streams": {s: await positions(store.read_stream(s)) for s in streams[::7]},
        "from_version": await positions(store.read_stream(payments[0], 2)),
        "versions": [await store.stream_version(s) for s in streams[::5]],
        "missing": await positions(store.read_stream("payment-none")),
        "read_streams": await positions(store.read_streams(payments[:9], to_position=700)),
        "rare": await positions(store.query(types=RARE)),
        "common": await positions(store.query(types=COMMON, from_position=100)),
        "stream_and_type": await positions(store.query(stream=payments[3], types=COMMON)),
        "correlation": await positions(store.query(correlation_id="c-1")),
        "since": await positions(store.query(since=middle, until=middle + timedelta(hours=1))),
        "bounds": await store.stream_bounds("payment-"),
        "bounds_rare": await store.stream_bounds("payment-", types=RARE, to_position=800),
        "last": [await store.last_event(c, to_position=500) for c in channels],
        "payments_of": [await store.payments_of(a) for a in accounts],
        "position_at": await store.position_at(middle),
        "rows": await store.read_rows(1, 400, skip_types=COMMON, keep_streams=payments[:4]),
    }
    return out


@pytest.mark.parametrize("version", [3, 2, 1])
async def test_an_older_store_reads_as_it_is_then_migrates_keeping_every_answer(
    tmp_path: Path, version: int
) -> None:
    db = tmp_path / "ledger.db"
    await _fill(db)
    async with open_store(db, readonly=True) as store:
        answers = await _answers(store)
        report = await store.verify()
        assert report.ok, report
        size, root = await log_root(store)
    exported = await _export(db)
    assert len(exported) == len(EVENTS)
    conn = sqlite3.connect(db)
    (summed,) = conn.execute("SELECT summed_minor FROM ledger_head").fetchone()
    conn.close()

    downgrade(db, version)
    async with open_store(db, readonly=True) as store:  # read as it is
        assert isinstance(store, SQLiteEventStore)
        assert store.schema_version == version
        assert (await store.verify()) == report
        assert await _answers(store) == answers
    assert await _export(db) == exported

    async with open_store(db) as store:  # migrated when first opened for writing
        assert isinstance(store, SQLiteEventStore)
        assert store.schema_version == SCHEMA_VERSION
        assert (await store.verify()) == report
        assert await _answers(store) == answers
        assert (await check_tree(store)).ok
        assert await log_root(store) == (size, root)
    assert await _export(db, readonly=False) == exported
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
        assert conn.execute("SELECT summed_minor FROM ledger_head").fetchone() == (summed,)
        first_seen = [
            row[0]
            for row in conn.execute(
                "SELECT stream FROM events GROUP BY stream ORDER BY min(position)"
            )
        ]
        assert [row[0] for row in conn.execute("SELECT name FROM streams ORDER BY id")] == (
            first_seen
        )
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        assert "events_by_type" not in tables
        assert {"streams", "events_by_rare_type", "streams_no_update"} <= tables
    finally:
        conn.close()

    async with open_store(db) as store:  # appends go on: versions, the tree, the head
        stream = stream_of(EVENTS[0])
        version_now = await store.stream_version(stream)
        more = [e for e in EVENTS if stream_of(e) == stream][:1]
        result = await store.append(stream, more, expected_version=version_now)
        assert result.version == version_now + 1
        fresh = opened("after-the-migration")
        await store.append(stream_of(fresh), [fresh], expected_version=0)
        assert (await store.verify()).ok
        assert (await check_tree(store)).ok


async def test_a_migration_is_atomic_and_done_once(tmp_path: Path) -> None:
    """A second writer opening the store meanwhile finds it migrated (under SQLite's lock), and
    a migration that fails leaves the old store as it was."""
    db = tmp_path / "ledger.db"
    await _fill(db)
    exported = await _export(db)
    downgrade(db, 3)
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE streams_v4 (x)")  # an object the rebuild does not expect ...
    conn.execute("CREATE VIEW events_v4 AS SELECT 1")  # ... in the rebuilt table's way
    conn.commit()
    conn.close()
    with pytest.raises(Exception, match="events_v4"):
        async with open_store(db):
            pass
    async with open_store(db, readonly=True) as store:
        assert isinstance(store, SQLiteEventStore)
        assert store.schema_version == 3
        assert (await store.verify()).ok
    assert await _export(db) == exported
    conn = sqlite3.connect(db)
    conn.execute("DROP VIEW events_v4")
    conn.commit()
    conn.close()

    async def writer() -> None:
        async with open_store(db) as store:
            assert (await store.verify()).ok

    async with anyio.create_task_group() as tg:
        for _ in range(3):
            tg.start_soon(writer)
    assert await _export(db) == exported


async def test_an_export_imports_into_every_backend_and_exports_back_line_for_line(
    tmp_path: Path, backend: Backend
) -> None:
    db = tmp_path / "ledger.db"
    await _fill(db)
    downgrade(db, 3)
    before = await _export(db)
    async with open_store(db) as store:
        head = (await store.verify()).head_hash
    assert await _export(db) == before
    async with backend.place() as place, place.open() as store:
        result = await store.import_events(read_lines(before, "export.jsonl"))
        assert result.appended == len(before)
        assert [encode_record(r) async for r in store.read_all()] == before
        report = await store.verify()
        assert report.ok
        assert report.head_hash == head


_FULL_SCAN = re.compile(r"\bSCAN (events|e|streams|s)\b")


async def test_every_read_by_stream_type_time_or_account_uses_an_index(tmp_path: Path) -> None:
    """Each statement the reads of :func:`_answers` run is planned on an index of the events
    or streams table (a search, never a scan of either), but the census's deliberate count."""
    db = tmp_path / "ledger.db"
    await _fill(db)
    async with open_store(db, readonly=True) as store:
        assert isinstance(store, SQLiteEventStore)
        seen: list[tuple[str, Sequence[Any]]] = []
        fetch: Callable[..., Awaitable[list[Any]]] = store._fetch

        async def recording(sql: str, params: Sequence[Any], position: int = 1) -> list[Any]:
            seen.append((sql, params))
            return await fetch(sql, params, position)

        store._fetch = recording  # type: ignore[method-assign]
        await _answers(store)
        store._fetch = fetch  # type: ignore[method-assign,assignment]
        planned = 0
        for sql, params in seen:
            if "NOT INDEXED" in sql or ("ledger_head" in sql and "events" not in sql):
                continue
            plan = [str(row[3]) for row in await fetch(f"EXPLAIN QUERY PLAN {sql}", params)]
            assert not any(_FULL_SCAN.search(line) for line in plan), (sql, plan)
            planned += 1
        assert planned >= 15


async def test_damage_to_the_streams_index_is_named_with_its_first_position(
    tmp_path: Path,
) -> None:
    """Reads by stream find its number through ``streams``' index by name: a page of it
    overwritten is a finding that names the index and the first position of a stream it no
    longer finds."""
    db = tmp_path / "ledger.db"
    await _fill(db)
    copy = tmp_path / "damaged.db"
    shutil.copyfile(db, copy)
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        ((page,),) = conn.execute(
            "SELECT pageno FROM dbstat WHERE name = 'sqlite_autoindex_streams_1' "
            "AND pagetype = 'leaf' ORDER BY pageno LIMIT 1"
        ).fetchall()
        (page_size,) = conn.execute("PRAGMA page_size").fetchone()
    finally:
        conn.close()
    with copy.open("r+b") as f:  # two bytes of a name near the end of the page
        f.seek(page * page_size - 60)
        f.write(b"zz")
    async with open_store(copy, readonly=True) as store:
        report = await store.verify()
    assert not report.ok
    assert report.damaged is not None
    assert report.damaged.startswith("index sqlite_autoindex_streams_1"), report
    assert report.first_bad_position is not None
