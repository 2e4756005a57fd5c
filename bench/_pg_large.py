"""The read-model and replay figures of ``bench_postgres`` on a large store (not a benchmark by
itself).

One log of :func:`fixtures.generate.generate_chunks` (``--large-events``: 1,000,000 by default,
50,000 with ``--quick``) is imported with ``import_events`` into a new PostgreSQL database and
into an SQLite file, no projection caught up (as ``import --no-project`` leaves them).

3. :func:`replay.explain` of one failed payment on PostgreSQL, in process, in milliseconds: the
   median (and the 95th percentile) over random failed payments, a new sample each repetition.
   Target: median under 20 ms. The baseline is raw asyncpg on the same database reading, by the
   stream index, the streams of the payment, its account, its channel and its merchant's policy
   up to the failure, decoding each event with :data:`ledger.events.DECODER` (no fold, no search
   for the account's payments, no explanation): the reads of ``bench_replay``'s raw baseline.
4. :meth:`projections.Projector.rebuild` on PostgreSQL, in events/s, beside the same rebuild on
   the SQLite file of the same log (the baseline here is payledger on SQLite, not raw
   asyncpg), each repetition rebuilding both. Target: at least half the SQLite rate (ratio >=
   0.5).
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Final

import asyncpg
import msgspec

from fixtures.generate import generate_chunks
from ledger import open_store
from ledger.codec import read_lines
from ledger.events import DECODER
from projections import Projector
from replay import Explanation, explain

from ._util import Figure, Options, Target, timed

__all__ = ["Large", "build", "explain_figures", "rebuild_figure"]

_RAW_STREAM: Final = "SELECT data FROM events WHERE stream = $1 AND position <= $2 ORDER BY version"


class Large(msgspec.Struct, frozen=True):
    """The two stores of one log."""

    postgres: str
    sqlite: Path
    events: int
    failed: list[str]


class _Target(msgspec.Struct, frozen=True):
    """A failed payment and the streams the raw baseline reads for it."""

    bound: int
    streams: tuple[str, ...]


async def build(options: Options, url: str, tmp: Path) -> Large:
    """Generate the log, import it into the database at ``url`` and into an SQLite file."""
    count = options.large_events if options.large_events > 0 else 50_000
    log = tmp / "large.jsonl"
    failed: list[str] = []
    with timed() as elapsed, log.open("wb") as out:
        for chunk in generate_chunks(
            count, options.seed, on_failure=lambda pid, _category: failed.append(pid)
        ):
            out.write(chunk)
    options.log(f"generated {count:,} events ({len(failed):,} failed payments), {elapsed():.1f} s")
    sqlite = tmp / "large.db"
    for target in (url, str(sqlite)):
        with timed() as elapsed, log.open("rb") as lines:
            async with open_store(target, durability="normal") as store:
                await store.import_events(read_lines(lines, "large.jsonl"))
        where = "PostgreSQL" if target == url else "SQLite"
        options.log(f"import_events into {where}: {elapsed():.1f} s")
    log.unlink()
    return Large(url, sqlite, count, failed)


def _target(exp: Explanation) -> _Target:
    state = exp.state_at_failure
    if state is None:  # abandoned with no attempt to explain: the payment stream only
        return _Target(2**62, (f"payment-{exp.payment_id}",))
    return _Target(
        state.position,
        (
            f"payment-{exp.payment_id}",
            f"account-{exp.account_id}",
            f"channel-{state.channel.channel}",
            f"policy-{exp.merchant}",
        ),
    )


async def _raw_explain(conn: asyncpg.Connection[asyncpg.Record], target: _Target) -> None:
    for stream in target.streams:
        bound = 2**62 if stream.startswith("payment-") else target.bound
        for row in await conn.fetch(_RAW_STREAM, stream, bound):
            DECODER.decode(row[0])


@asynccontextmanager
async def _raw(url: str) -> AsyncIterator[asyncpg.Connection[asyncpg.Record]]:
    conn = await asyncpg.connect(url)
    try:
        yield conn
    finally:
        await conn.close()


def _p95(samples: Sequence[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


async def explain_figures(options: Options, large: Large) -> list[Figure]:
    rng = random.Random(options.seed)
    per_rep = 50 if options.quick else 200
    medians: list[float] = []
    p95s: list[float] = []
    raw_medians: list[float] = []
    raw_p95s: list[float] = []
    async with open_store(large.postgres, readonly=True) as store, _raw(large.postgres) as conn:
        for pid in rng.sample(large.failed, min(20, len(large.failed))):  # warm both up
            await _raw_explain(conn, _target(await explain(store, pid)))
        for rep in range(options.repeat):
            sample = rng.sample(large.failed, min(per_rep, len(large.failed)))
            times: list[float] = []
            raw_times: list[float] = []
            for pid in sample:
                start = time.perf_counter()
                exp = await explain(store, pid)
                times.append((time.perf_counter() - start) * 1000)
                target = _target(exp)
                start = time.perf_counter()
                await _raw_explain(conn, target)
                raw_times.append((time.perf_counter() - start) * 1000)
            medians.append(statistics.median(times))
            p95s.append(_p95(times))
            raw_medians.append(statistics.median(raw_times))
            raw_p95s.append(_p95(raw_times))
            options.log(
                f"explain on PostgreSQL, rep {rep + 1}: median {medians[-1]:.1f} ms, p95 "
                f"{p95s[-1]:.1f} ms, max {max(times):.1f} ms (raw median {raw_medians[-1]:.2f} ms)"
            )
    name = f"explain 1 payment, {large.events:,} events"
    return [
        Figure.measured(
            f"{name}: median",
            "ms",
            medians,
            raw_medians,
            better="lower",
            target=Target(on="value", op="<", threshold=20),
            note=(
                f"in process, {per_rep} random failed payments per repetition, no projection "
                "rows; raw: asyncpg reading the payment's, account's, channel's and policy's "
                "streams by the stream index + decode"
            ),
        ),
        Figure.measured(f"{name}: p95", "ms", p95s, raw_p95s, better="lower"),
    ]


async def _rebuild(target: str) -> float:
    async with open_store(target) as store, Projector.open(store) as projector:
        return (await projector.rebuild()).events_per_second


async def rebuild_figure(options: Options, large: Large) -> Figure:
    rates: list[float] = []
    sqlite_rates: list[float] = []
    for rep in range(options.repeat):
        sqlite_rates.append(await _rebuild(str(large.sqlite)))
        rates.append(await _rebuild(large.postgres))
        options.log(
            f"rebuild, rep {rep + 1}: PostgreSQL {rates[-1]:,.0f} events/s, "
            f"SQLite {sqlite_rates[-1]:,.0f} events/s"
        )
    return Figure.measured(
        f"rebuild, {large.events:,} events",
        "events/s",
        rates,
        sqlite_rates,
        target=Target(on="ratio", op=">=", threshold=0.5),
        note=(
            "every projection folded from position 1 and written in one transaction; "
            "baseline: the same rebuild of the same log on payledger's SQLite store"
        ),
    )
