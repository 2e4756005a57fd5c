"""The event store's figures (issue 2, "Speed"), each beside raw ``sqlite3`` doing the same work.

1. Durable single-event appends from 1, 8, 64 and 256 concurrent tasks (``open_store(path)``,
   durability ``full``) against raw ``sqlite3`` committing each event on its own with
   ``synchronous=FULL``: group commit should make the store at least 3x faster at 64 tasks.
   And (issue 13) against raw ``sqlite3`` writing the same events in the same groups the store's
   group commits form (64 or 256 rows, one fsync each) into a lean table (position, stream
   number, version, data, hash; one unique index): at least 0.5x at 64 tasks, 0.7x at 256.
2. Appending 1,000 events per call against one ``executemany`` per 1,000 rows in one
   transaction: at least half as fast.
3. ``read_all`` with decoding against ``SELECT`` + :data:`ledger.events.DECODER`: at least half as
   fast.
4. A large store (1,000,000 events in the full run): its size on disk, the time to read one
   stream, and the peak memory of a fresh process reading all of it (under 150 MB).

The baseline is fair, not a straw man: the same file system, ``journal_mode=WAL``, the store's own
``events`` table with its indexes (its DDL is copied from a freshly created store; the store's
triggers are left out), the same rows (msgspec-encoded JSON, a UUID event id, versions, a 32-byte
SHA-256), the same events, and the same durability (``synchronous=FULL``). The baseline also does
less than the store: no validation, no optimistic-concurrency check, no hash chain, no asyncio.
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any, Final

import anyio
import msgspec
from anyio.to_thread import run_sync

from ledger import ImportItem, open_store
from ledger.events import DECODER, Event, stream_of
from ledger.records import from_micros

from ._data import START, account_history, ledger_events, payment_flow
from ._raw import Lean, Raw, events_ddl
from ._util import Figure, Options, Target, dir_size, median, scratch_dir, timed

__all__ = ["SIZES", "Sizes", "run"]

TITLE: Final = "event store"


class Sizes(msgspec.Struct, frozen=True, kw_only=True):
    """How much work each figure does, per repetition."""

    single: dict[int, int]
    """Events appended by the store for each number of concurrent tasks."""
    lean: tuple[int, ...] = (64, 256)
    """The numbers of tasks also measured against the lean table in groups of as many rows."""
    raw_commits: int
    """Events committed one by one by the baseline."""
    batch_calls: int
    """Calls of 1,000 events each."""
    read_events: int
    """Events in the store that ``read_all`` reads."""
    stream_samples: int
    """Random streams read one by one from the large store."""


SIZES: Final = {
    "quick": Sizes(
        single={1: 300, 8: 1_500, 64: 4_000, 256: 8_000},
        raw_commits=400,
        batch_calls=10,
        read_events=20_000,
        stream_samples=100,
    ),
    "full": Sizes(
        single={1: 1_500, 8: 6_000, 64: 24_000, 256: 48_000},
        raw_commits=2_000,
        batch_calls=100,
        read_events=200_000,
        stream_samples=300,
    ),
}

_SELECT: Final = (
    "SELECT position, stream, version, type, schema, occurred_at, recorded_at, "
    "event_id, correlation_id, causation_id, data FROM events"
)
Planned = tuple[str, Event, int]
"""A stream, an event for it and the stream's version before it (the expected version)."""


# --- the raw sqlite3 baseline --------------------------------------------------------------


def _raw_read_all(path: Path) -> int:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        count = 0
        for row in conn.execute(f"{_SELECT} ORDER BY position"):
            DECODER.decode(row[10])
            count += 1
        return count
    finally:
        conn.close()


def _raw_read_streams(path: Path, streams: Sequence[str]) -> list[float]:
    """Seconds to read and decode each stream, one query each."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    sql = f"{_SELECT} WHERE stream_no = (SELECT id FROM streams WHERE name = ?) ORDER BY version"
    times = []
    try:
        for stream in streams:
            start = time.perf_counter()
            for row in conn.execute(sql, (stream,)).fetchall():
                DECODER.decode(row[10])
            times.append(time.perf_counter() - start)
    finally:
        conn.close()
    return times


# --- workloads -----------------------------------------------------------------------------


def _task_workloads(tasks: int, total: int, seed: int) -> list[list[Planned]]:
    """Each task's single-event appends: whole payments (their events in order) on streams of
    its own, with the expected version it knows. ``occurred_at`` follows the order the tasks
    append in (event *j* of task *t* at *j* x tasks + *t* ms), as when a service appends each
    event as it happens."""
    rng = random.Random(seed)
    per_task = max(1, total // tasks)
    workloads: list[list[Planned]] = []
    for task in range(tasks):
        events: list[Event] = []
        payment = 0
        while len(events) < per_task:
            payment += 1
            events += payment_flow(rng, f"S{seed}-{task}-{payment}", f"A{task}", START)
        planned: list[Planned] = []
        version = 0
        for j, event in enumerate(events[:per_task]):
            version = 0 if event.type == "PaymentRequested" else version + 1
            at = START + timedelta(milliseconds=j * tasks + task)
            event = msgspec.structs.replace(event, occurred_at=at)
            planned.append((stream_of(event), event, version))
        workloads.append(planned)
    return workloads


def _groups(workloads: list[list[Planned]]) -> list[list[tuple[str, Event]]]:
    """The groups the store's group commits form when every task appends at once: the *j*-th
    event of each task together."""
    longest = max(len(w) for w in workloads)
    return [[(w[j][0], w[j][1]) for w in workloads if j < len(w)] for j in range(longest)]


def _ceiling_groups(path: Path, ddl: list[str], groups: list[list[tuple[str, Event]]]) -> float:
    """Events/s of raw ``sqlite3`` writing ``groups`` into the store's own tables and indexes
    (time-ordered event ids, as the store gives), one fsync each: no validation, no
    concurrency check, no chain, no tree, no asyncio. No store with this schema can beat it."""
    raw = Raw(path, ddl, time_ordered_ids=True)
    try:
        with timed() as elapsed:
            count = raw.commit_groups(groups)
    finally:
        raw.close()
    return count / elapsed()


def _lean_groups(path: Path, groups: list[list[tuple[str, Event]]]) -> float:
    """Events/s of raw ``sqlite3`` writing ``groups`` into the lean table, one fsync each."""
    lean = Lean(path)
    try:
        with timed() as elapsed:
            count = lean.commit_groups(groups)
    finally:
        lean.close()
    return count / elapsed()


async def _store_single(path: Path, workloads: list[list[Planned]]) -> float:
    """Events/s of every task appending its events one call each, all tasks at once."""
    async with open_store(path) as store:

        async def worker(planned: list[Planned]) -> None:
            for stream, event, version in planned:
                await store.append(stream, [event], expected_version=version)

        with timed() as elapsed:
            async with anyio.create_task_group() as tg:
                for planned in workloads:
                    tg.start_soon(worker, planned)
    return sum(len(w) for w in workloads) / elapsed()


def _batches(calls: int, seed: int) -> list[tuple[str, list[Event]]]:
    rng = random.Random(seed)
    out = []
    for call in range(calls):
        account_id = f"B{seed}-{call}"
        events = account_history(rng, account_id, 1000)
        out.append((stream_of(events[0]), events))
    return out


def _items(count: int, seed: int, streams: list[str] | None = None) -> Iterator[ImportItem]:
    for line, (stream, event) in enumerate(ledger_events(count, seed), 1):
        if streams is not None:
            streams.append(stream)
        yield ImportItem(stream=stream, event=event, line=line)


async def _build(path: Path, count: int, seed: int, streams: list[str] | None = None) -> float:
    """Fill a store with ``count`` generated events via ``import_events``; returns events/s."""
    async with open_store(path) as store:
        with timed() as elapsed:
            result = await store.import_events(_items(count, seed, streams))
    if result.appended != count:
        raise RuntimeError(f"imported {result.appended} events, expected {count}")
    return count / elapsed()


# --- the figures ---------------------------------------------------------------------------


async def _single_appends(options: Options, sizes: Sizes, ddl: list[str]) -> list[Figure]:
    store_rates: dict[int, list[float]] = {n: [] for n in sizes.single}
    raw_rates: list[float] = []
    lean_rates: dict[int, list[float]] = {n: [] for n in sizes.lean if n in sizes.single}
    ceiling_rates: dict[int, list[float]] = {n: [] for n in lean_rates}
    bare_rates: dict[int, list[float]] = {n: [] for n in lean_rates}
    bare_ddl = [sql for sql in ddl if not sql.lstrip().upper().startswith("CREATE INDEX")]
    for rep in range(options.repeat):
        with scratch_dir(options) as tmp:
            seed = options.seed + rep
            raw_items = [(s, e) for s, e, _ in _task_workloads(1, sizes.raw_commits, seed)[0]]
            raw = Raw(tmp / "raw.db", ddl)
            try:
                with timed() as elapsed:
                    await run_sync(raw.commit_each, raw_items)
            finally:
                raw.close()
            raw_rates.append(len(raw_items) / elapsed())
            for tasks, total in sizes.single.items():
                workloads = _task_workloads(tasks, total, seed)
                if tasks in lean_rates:  # back to back with the store, same events
                    groups = _groups(workloads)
                    rate = await run_sync(_lean_groups, tmp / f"lean-{tasks}.db", groups)
                    lean_rates[tasks].append(rate)
                    rate = await run_sync(_ceiling_groups, tmp / f"ceiling-{tasks}.db", ddl, groups)
                    ceiling_rates[tasks].append(rate)
                    rate = await run_sync(
                        _ceiling_groups, tmp / f"bare-{tasks}.db", bare_ddl, groups
                    )
                    bare_rates[tasks].append(rate)
                rate = await _store_single(tmp / f"store-{tasks}.db", workloads)
                store_rates[tasks].append(rate)
        options.log(
            f"single-event appends, rep {rep + 1}: raw {raw_rates[-1]:,.0f}/s, "
            + ", ".join(f"{n} tasks {r[-1]:,.0f}/s" for n, r in store_rates.items())
            + "; lean raw in the same groups: "
            + ", ".join(f"{n} rows {r[-1]:,.0f}/s" for n, r in lean_rates.items())
            + "; raw into the store's schema: "
            + ", ".join(f"{n} rows {r[-1]:,.0f}/s" for n, r in ceiling_rates.items())
        )
    figures = []
    for tasks, rates in store_rates.items():
        target = Target(on="ratio", op=">=", threshold=3) if tasks == 64 else None
        figures.append(
            Figure.measured(
                f"durable 1-event appends, {tasks} task{'s' if tasks > 1 else ''}",
                "events/s",
                rates,
                raw_rates,
                target=target,
                note=(
                    "raw: one synchronous=FULL commit per event, same table and indexes"
                    if tasks == 64
                    else ""
                ),
            )
        )
    lean_targets = {64: 0.5, 256: 0.7}
    for tasks, rates in lean_rates.items():
        threshold = lean_targets.get(tasks)
        figures.append(
            Figure.measured(
                f"durable 1-event appends, {tasks} tasks vs lean table",
                "events/s",
                store_rates[tasks],
                rates,
                target=None
                if threshold is None
                else Target(on="ratio", op=">=", threshold=threshold),
                note=(
                    f"raw: the same events in the same {tasks}-row groups, one synchronous=FULL "
                    "commit each, into (position, stream number, version, data, hash) with one "
                    "unique (stream number, version) index; rows encoded and hashed (SHA-256 of "
                    "the data) in the timed loop"
                ),
            )
        )
    for tasks, rates in ceiling_rates.items():
        figures.append(
            Figure.measured(
                f"ceiling: raw into the store's schema, {tasks}-row groups vs lean table",
                "events/s",
                rates,
                lean_rates[tasks],
                note=(
                    "not payledger: raw sqlite3 writing the same groups (one fsync each) into the "
                    "store's own events and streams tables with all their indexes, rows built the "
                    "cheap way; the most any store with this schema can reach against the lean "
                    "table, before validation, the hash chain, the Merkle tree and asyncio"
                ),
            )
        )
        figures.append(
            Figure.measured(
                f"ceiling without secondary indexes, {tasks}-row groups vs lean table",
                "events/s",
                bare_rates[tasks],
                lean_rates[tasks],
                note=(
                    "not payledger: the same, with the store's tables but none of the indexes "
                    "its reads use (by time, correlation, account, rare type): only the unique "
                    "event id, (stream number, version) and stream name"
                ),
            )
        )
    figures.append(
        Figure.measured(
            "durable 1-event appends, 64 tasks (aim)",
            "events/s",
            store_rates[64],
            target=Target(on="value", op=">=", threshold=50_000, aim=True),
        )
    )
    return figures


async def _batch_appends(options: Options, sizes: Sizes, ddl: list[str]) -> Figure:
    store_rates: list[float] = []
    raw_rates: list[float] = []
    for rep in range(options.repeat):
        batches = _batches(sizes.batch_calls, options.seed + rep)
        count = sum(len(events) for _, events in batches)
        with scratch_dir(options) as tmp:
            raw = Raw(tmp / "raw.db", ddl)
            try:
                with timed() as elapsed:
                    await run_sync(raw.commit_batches, batches)
            finally:
                raw.close()
            raw_rates.append(count / elapsed())
            async with open_store(tmp / "store.db") as store:
                with timed() as elapsed:
                    for stream, events in batches:
                        await store.append(stream, events, expected_version=0)
            store_rates.append(count / elapsed())
        options.log(
            f"1,000-event appends, rep {rep + 1}: raw {raw_rates[-1]:,.0f}/s, "
            f"store {store_rates[-1]:,.0f}/s"
        )
    return Figure.measured(
        "append 1,000 events per call",
        "events/s",
        store_rates,
        raw_rates,
        target=Target(on="ratio", op=">=", threshold=0.5),
        note="raw: one executemany of 1,000 rows per transaction, synchronous=FULL",
    )


async def _read_all(options: Options, sizes: Sizes) -> list[Figure]:
    count = sizes.read_events
    store_rates: list[float] = []
    raw_rates: list[float] = []
    with scratch_dir(options) as tmp:
        path = tmp / "read.db"
        build_rate = await _build(path, count, options.seed)
        options.log(f"built a {count:,}-event store at {build_rate:,.0f} events/s")
        await run_sync(_raw_read_all, path)  # warm the page cache for both sides
        for rep in range(options.repeat):
            with timed() as elapsed:
                read = await run_sync(_raw_read_all, path)
            raw_rates.append(read / elapsed())
            async with open_store(path, readonly=True) as store:
                read = 0
                with timed() as elapsed:
                    async for _ in store.read_all():
                        read += 1
            if read != count:
                raise RuntimeError(f"read_all gave {read} events, expected {count}")
            store_rates.append(count / elapsed())
            options.log(
                f"read_all, rep {rep + 1}: raw {raw_rates[-1]:,.0f}/s, "
                f"store {store_rates[-1]:,.0f}/s"
            )
    return [
        Figure.measured(
            f"read_all + decode, {count:,} events",
            "events/s",
            store_rates,
            raw_rates,
            target=Target(on="ratio", op=">=", threshold=0.5),
            note="raw: SELECT of the same columns + ledger.events.DECODER on data",
        )
    ]


def _child(kind: str, path: Path) -> dict[str, Any]:
    """Run ``bench._child`` in a fresh interpreter and return its JSON report."""
    root = Path(__file__).resolve().parent.parent
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, "-m", "bench._child", kind, str(path)],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"bench._child {kind} failed:\n{done.stderr}")
    report: dict[str, Any] = json.loads(done.stdout)
    return report


_ZONES: Final = {
    "near the start": (0.0, 0.01),
    "mid-log": (0.45, 0.55),
    "near the head": (0.99, 1.0),
}
"""Where in the log's time span ``position_at`` is asked, as shares of it."""
_NAIVE_POSITION_AT: Final = "SELECT max(position) FROM events WHERE occurred_at <= ?"


def _raw_position_at(path: Path, moments: Sequence[int]) -> list[float]:
    """Seconds of the one-statement query for each moment (microseconds), plain sqlite3."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        times = []
        for moment in moments:
            start = time.perf_counter()
            conn.execute(_NAIVE_POSITION_AT, (moment,)).fetchone()
            times.append(time.perf_counter() - start)
        return times
    finally:
        conn.close()


async def _position_at(options: Options, path: Path, label: str) -> list[Figure]:
    """``position_at`` (what ``state --as-of`` asks first) for moments in three parts of the
    log's time span, beside the one-statement query (``max(position) ... occurred_at <= ?``)."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        low, high = conn.execute("SELECT min(occurred_at), max(occurred_at) FROM events").fetchone()
    finally:
        conn.close()
    rng = random.Random(options.seed)
    figures = []
    async with open_store(path, readonly=True) as store:
        for zone, (a, b) in _ZONES.items():
            moments = [int(low + (high - low) * rng.uniform(a, b)) for _ in range(20)]
            store_ms: list[float] = []
            raw_ms: list[float] = []
            for _ in range(options.repeat):
                raw = await run_sync(_raw_position_at, path, moments)
                raw_ms.append(median(raw) * 1000)
                times = []
                for moment in moments:
                    start = time.perf_counter()
                    await store.position_at(from_micros(moment))
                    times.append(time.perf_counter() - start)
                store_ms.append(median(times) * 1000)
            figures.append(
                Figure.measured(
                    f"{label}: position_at, a moment {zone}",
                    "ms",
                    store_ms,
                    raw_ms,
                    better="lower",
                    note=(
                        f"median over {len(moments)} moments (what state --as-of asks first); "
                        "raw: the one statement SELECT max(position) ... WHERE occurred_at <= ?"
                    ),
                )
            )
    return figures


async def _large_store(options: Options, count: int, sizes: Sizes) -> list[Figure]:
    mb = 1024 * 1024
    with scratch_dir(options) as tmp:
        path = tmp / "large.db"
        streams: list[str] = []
        options.log(f"building a {count:,}-event store with import_events ...")
        build_rate = await _build(path, count, options.seed, streams)
        size = dir_size(tmp, "large.db")
        options.log(f"built at {build_rate:,.0f} events/s: {size / mb:,.1f} MiB")
        distinct = sorted(set(streams))
        del streams
        rng = random.Random(options.seed)
        sample = [rng.choice(distinct) for _ in range(sizes.stream_samples)]
        lengths: list[int] = []

        store_ms: list[float] = []
        raw_ms: list[float] = []
        await run_sync(_raw_read_all, path)  # warm the page cache
        async with open_store(path, readonly=True) as store:
            for rep in range(options.repeat):
                times = await run_sync(_raw_read_streams, path, sample)
                raw_ms.append(sorted(times)[len(times) // 2] * 1000)
                times = []
                for stream in sample:
                    start = time.perf_counter()
                    records = [r async for r in store.read_stream(stream)]
                    times.append(time.perf_counter() - start)
                    if rep == 0:
                        lengths.append(len(records))
                store_ms.append(sorted(times)[len(times) // 2] * 1000)
        mean_len = sum(lengths) / len(lengths)

        peaks: list[float] = []
        raw_peaks: list[float] = []
        rates: list[float] = []
        raw_rates: list[float] = []
        befores: list[float] = []
        for rep in range(min(options.repeat, 3)):
            raw_report = await run_sync(_child, "raw", path)
            report = await run_sync(_child, "store", path)
            if report["events"] != count or raw_report["events"] != count:
                raise RuntimeError("the reading process did not read every event")
            peaks.append(report["rss_peak"] / mb)
            befores.append(report["rss_before"] / mb)
            raw_peaks.append(raw_report["rss_peak"] / mb)
            rates.append(count / report["seconds"])
            raw_rates.append(count / raw_report["seconds"])
            options.log(
                f"read_all in a fresh process, rep {rep + 1}: peak RSS {peaks[-1]:.1f} MiB "
                f"(raw {raw_peaks[-1]:.1f} MiB), {rates[-1]:,.0f} events/s"
            )
        label = f"{count:,}-event store"
        moments = await _position_at(options, path, label)
    return [
        *moments,
        Figure(
            name=f"{label}: build with import_events",
            unit="events/s",
            value=build_rate,
            samples=[build_rate],
            note=f"{len(distinct):,} streams, generated by bench/_data.py",
        ),
        Figure(
            name=f"{label}: size on disk",
            unit="MiB",
            value=size / mb,
            better="lower",
            samples=[size / mb],
        ),
        Figure(
            name=f"{label}: bytes per event",
            unit="B",
            value=size / count,
            better="lower",
            samples=[size / count],
            note="file after close (WAL checkpointed): data JSON, ids, SHA-256 chain, indexes",
        ),
        Figure.measured(
            f"{label}: read one stream",
            "ms",
            store_ms,
            raw_ms,
            better="lower",
            note=(
                f"median over {len(sample)} random streams ({mean_len:.1f} events on average); "
                "raw: SELECT ... WHERE stream_no = (its number in streams) + decode"
            ),
        ),
        Figure.measured(
            f"{label}: read_all in a fresh process",
            "events/s",
            rates,
            raw_rates,
        ),
        Figure.measured(
            f"{label}: peak RSS reading all",
            "MiB",
            peaks,
            raw_peaks,
            better="lower",
            target=Target(on="value", op="<", threshold=150),
            note=(
                f"RSS high-water (VmHWM) of a fresh process doing only the read; "
                f"{min(befores):.1f} MiB before the first event (interpreter, imports, open)"
            ),
        ),
    ]


async def run(options: Options) -> list[Figure]:
    """Every figure of the event store, measured under ``options``."""
    sizes = SIZES["quick" if options.quick else "full"]
    large = options.large_events
    with scratch_dir(options) as tmp:
        ddl = await events_ddl(tmp)
    figures = await _single_appends(options, sizes, ddl)
    figures.append(await _batch_appends(options, sizes, ddl))
    figures.extend(await _read_all(options, sizes))
    if large > 0:
        figures.extend(await _large_store(options, large, sizes))
    return figures
