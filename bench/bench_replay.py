"""The replay engine's figures (issues 4 and 13), each beside raw ``sqlite3`` in the same run.

Every figure is measured on two stores holding the same log of ``fixtures.generate``
(``--large-events``, 1,000,000 by default; 100,000 with ``--quick`` or ``--large-events 0``): one
whose projection tables are caught up (the normal state after ``payledger import``) and one
imported with ``--no-project`` (no projection tables: :func:`projections.account_at` must then
find the account's payments in the log itself). Users have both. A third store, of a quarter of
the log, shows how one explanation's time grows with the log.

1. :func:`replay.explain` of one failed payment, in process, in milliseconds: the median
   and the 95th percentile over random failed payments (a new sample each repetition). Target:
   under 5 ms. The baseline reads, with plain ``sqlite3`` and the stream index, the streams
   of the payment, its account, its channel and its merchant's policy up to the failure, and
   decodes each event with :data:`ledger.events.DECODER` (no fold, no search for the account's
   payments, no explanation). The 95th percentile is measured on the quarter-size store too:
   flat as the log grows means the large store's within half again of the small one's (aim).
2. The whole ``payledger --db P explain ID`` command, wall time of a fresh process (interpreter
   start, imports, opening the store, the explanation and its rendering). Target: under one
   second. The baseline is a fresh ``python`` doing the raw reads of figure 1.
3. :func:`replay.explain_failed` over the whole store, in payments/s: the payments the log
   holds (its ``PaymentRequested`` events) over the seconds of the pass that explains every
   failed one. Target: at least 20,000 payments/s. The baseline is a raw ``SELECT`` of every
   row (the columns a record has) with :data:`~ledger.events.DECODER` on each event: any pass
   over the log does at least that. The failed payments explained per second are reported
   beside it (no target: they are about a tenth of the payments).
4. ``payledger --db P explain --failed --json`` as a fresh process writing every explanation
   (JSON Lines) to a pipe, in payments/s of the log. Target, at 1,000,000 events: at least
   20,000 payments/s (at most three runs, one with ``--quick``).
"""

from __future__ import annotations

import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Final

import msgspec

from fixtures.generate import generate_chunks
from ledger import open_store
from ledger.events import DECODER
from projections import Projector
from replay import Explanation, explain, explain_failed

from ._util import Figure, Options, Target, scratch_dir, timed

__all__ = ["run"]

TITLE: Final = "replay"

_ROOT: Final = Path(__file__).resolve().parent.parent
_COLUMNS: Final = (
    "position, stream, version, type, schema, occurred_at, recorded_at, "
    "event_id, correlation_id, causation_id, data"
)
_RAW_STREAM: Final = (
    f"SELECT {_COLUMNS} FROM events WHERE stream_no = (SELECT id FROM streams WHERE name = ?) "
    "AND position <= ? ORDER BY version"
)
_RAW_CHILD: Final = f"""
import sqlite3, sys
from ledger.events import DECODER
path, bound, *streams = sys.argv[1:]
conn = sqlite3.connect(f"file:{{path}}?mode=ro", uri=True)
for stream in streams:
    for row in conn.execute({_RAW_STREAM!r}, (stream, int(bound))):
        DECODER.decode(row[10])
conn.close()
"""


class _Target(msgspec.Struct, frozen=True):
    """A failed payment and the streams the raw baseline reads for it."""

    payment_id: str
    bound: int
    """The position just before the last failed attempt failed."""
    streams: tuple[str, ...]


class _Store(msgspec.Struct, frozen=True):
    label: str
    path: Path


# --- building the stores -------------------------------------------------------------------


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_ROOT), env.get("PYTHONPATH")]))
    env.pop("PAYLEDGER_DB", None)
    env["NO_COLOR"] = "1"
    return env


def _payledger() -> list[str]:
    """The ``payledger`` command of this interpreter's environment."""
    script = Path(sys.executable).with_name("payledger")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from replay.cli import run; run()"]


def _run(argv: Sequence[str]) -> float:
    """Run a command to completion, its output to a pipe; returns its wall time in seconds."""
    start = time.perf_counter()
    done = subprocess.run(
        list(argv), cwd=_ROOT, env=_env(), capture_output=True, check=False, text=True
    )
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stderr}")
    return elapsed


def _write_log(path: Path, count: int, seed: int) -> list[str]:
    """The generated log as JSON Lines at ``path``; returns its failed payments."""
    failed: list[str] = []
    with path.open("wb") as out:
        for chunk in generate_chunks(
            count, seed, on_failure=lambda pid, _category: failed.append(pid)
        ):
            out.write(chunk)
    return failed


async def _build(options: Options, tmp: Path, count: int) -> tuple[list[_Store], list[str]]:
    log = tmp / "log.jsonl"
    with timed() as elapsed:
        failed = _write_log(log, count, options.seed)
    options.log(
        f"generated {count:,} events ({len(failed):,} failed payments) in {elapsed():.1f} s"
    )
    bare = tmp / "bare.db"
    seconds = _run([*_payledger(), "--db", str(bare), "import", "--no-project", str(log)])
    options.log(f"payledger import --no-project: {seconds:.1f} s")
    log.unlink()
    projected = tmp / "projected.db"
    shutil.copyfile(bare, projected)  # closed by the import: one file, WAL checkpointed
    with timed() as elapsed:
        async with open_store(projected) as store, Projector.open(store) as projector:
            await projector.catch_up()
    options.log(f"projections caught up (as payledger import does) in {elapsed():.1f} s")
    stores = [
        _Store("projections caught up", projected),
        _Store("no projection tables", bare),
    ]
    return stores, failed


# --- the raw baseline ----------------------------------------------------------------------


def _target(exp: Explanation) -> _Target:
    state = exp.state_at_failure
    if state is None:  # abandoned with no attempt to explain: the payment stream only
        return _Target(exp.payment_id, 2**62, (f"payment-{exp.payment_id}",))
    return _Target(
        exp.payment_id,
        state.position,
        (
            f"payment-{exp.payment_id}",
            f"account-{exp.account_id}",
            f"channel-{state.channel.channel}",
            f"policy-{exp.merchant}",
        ),
    )


def _raw_explain(conn: sqlite3.Connection, target: _Target) -> None:
    for stream in target.streams:
        bound = 2**62 if stream.startswith("payment-") else target.bound
        for row in conn.execute(_RAW_STREAM, (stream, bound)):
            DECODER.decode(row[10])


def _raw_pass(path: Path) -> float:
    """Seconds to select every row (a record's columns) and decode every event."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        with timed() as elapsed:
            for row in conn.execute(f"SELECT {_COLUMNS} FROM events ORDER BY position"):
                DECODER.decode(row[10])
        return elapsed()
    finally:
        conn.close()


def _payments(path: Path) -> int:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        row = conn.execute("SELECT count(*) FROM events WHERE type = 'PaymentRequested'").fetchone()
        return int(row[0])
    finally:
        conn.close()


def _p95(samples: Sequence[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


# --- the figures ---------------------------------------------------------------------------


async def _explain_one(
    options: Options, store: _Store, failed: Sequence[str], per_rep: int
) -> tuple[list[Figure], list[_Target]]:
    rng = random.Random(options.seed)
    medians: list[float] = []
    p95s: list[float] = []
    raw_medians: list[float] = []
    raw_p95s: list[float] = []
    targets: list[_Target] = []
    conn = sqlite3.connect(f"file:{store.path}?mode=ro", uri=True)
    try:
        async with open_store(store.path, readonly=True) as es:
            for rep in range(options.repeat):
                sample = rng.sample(list(failed), min(per_rep, len(failed)))
                times: list[float] = []
                raw_times: list[float] = []
                for pid in sample:
                    start = time.perf_counter()
                    exp = await explain(es, pid)
                    times.append((time.perf_counter() - start) * 1000)
                    target = _target(exp)
                    start = time.perf_counter()
                    _raw_explain(conn, target)
                    raw_times.append((time.perf_counter() - start) * 1000)
                    if rep == 0:
                        targets.append(target)
                medians.append(statistics.median(times))
                p95s.append(_p95(times))
                raw_medians.append(statistics.median(raw_times))
                raw_p95s.append(_p95(raw_times))
                options.log(
                    f"explain, {store.label}, rep {rep + 1}: median {medians[-1]:.1f} ms, "
                    f"p95 {p95s[-1]:.1f} ms, max {max(times):.1f} ms "
                    f"(raw median {raw_medians[-1]:.2f} ms)"
                )
    finally:
        conn.close()
    under = Target(on="value", op="<", threshold=5)
    note = (
        f"{len(sample)} random failed payments per repetition; raw: sqlite3 reading the "
        "payment's, account's, channel's and policy's streams by stream index + decode"
    )
    return [
        Figure.measured(
            f"explain 1 payment, {store.label}: median",
            "ms",
            medians,
            raw_medians,
            better="lower",
            target=under,
            note=note,
        ),
        Figure.measured(
            f"explain 1 payment, {store.label}: p95",
            "ms",
            p95s,
            raw_p95s,
            better="lower",
            target=under,
        ),
    ], targets


def _explain_command(options: Options, store: _Store, targets: Sequence[_Target]) -> Figure:
    rng = random.Random(options.seed + 1)
    runs = max(3, options.repeat)
    samples: list[float] = []
    raw: list[float] = []
    for _ in range(runs):
        target = rng.choice(list(targets))
        samples.append(_run([*_payledger(), "--db", str(store.path), "explain", target.payment_id]))
        raw.append(
            _run(
                [
                    sys.executable,
                    "-c",
                    _RAW_CHILD,
                    str(store.path),
                    str(target.bound),
                    *target.streams,
                ]
            )
        )
    options.log(
        f"payledger explain ID, {store.label}: "
        + ", ".join(f"{s:.2f}" for s in samples)
        + f" s (raw {statistics.median(raw):.2f} s)"
    )
    return Figure.measured(
        f"payledger explain ID, {store.label}",
        "s",
        samples,
        raw,
        better="lower",
        target=Target(on="value", op="<", threshold=1.0),
        note=(
            f"wall time of a fresh process, {runs} random failed payments; raw: a fresh "
            "python doing the raw reads of the in-process figure"
        ),
    )


async def _explain_all(options: Options, store: _Store, count: int) -> list[Figure]:
    payments = _payments(store.path)
    rates: list[float] = []
    failed_rates: list[float] = []
    raw_rates: list[float] = []
    raw_failed_rates: list[float] = []
    failed = 0
    async with open_store(store.path, readonly=True) as es:
        for rep in range(options.repeat):
            raw_seconds = _raw_pass(store.path)
            failed = 0
            with timed() as elapsed:
                async for _ in explain_failed(es):
                    failed += 1
            rates.append(payments / elapsed())
            failed_rates.append(failed / elapsed())
            raw_rates.append(payments / raw_seconds)
            raw_failed_rates.append(failed / raw_seconds)
            options.log(
                f"explain_failed, {store.label}, rep {rep + 1}: {elapsed():.2f} s, "
                f"{rates[-1]:,.0f} payments/s, {failed_rates[-1]:,.0f} failed/s "
                f"(raw read {raw_seconds:.2f} s)"
            )
    return [
        Figure.measured(
            f"explain --failed, {store.label}",
            "payments/s",
            rates,
            raw_rates,
            target=Target(on="value", op=">=", threshold=20_000),
            note=(
                f"{count:,} events, {payments:,} payments, {failed:,} failed: payments in the "
                "log per second of explain_failed; raw: SELECT of every row + DECODER"
            ),
        ),
        Figure.measured(
            f"explain --failed, {store.label}: failed explained",
            "payments/s",
            failed_rates,
            raw_failed_rates,
        ),
    ]


def _explain_all_command(options: Options, store: _Store, count: int) -> Figure:
    payments = _payments(store.path)
    rates: list[float] = []
    raw: list[float] = []
    for _ in range(1 if options.quick else min(3, options.repeat)):
        seconds = _run([*_payledger(), "--db", str(store.path), "explain", "--failed", "--json"])
        rates.append(payments / seconds)
        raw.append(payments / _raw_pass(store.path))
    options.log(
        f"payledger explain --failed --json, {store.label}: "
        + ", ".join(f"{payments / r:.2f}" for r in rates)
        + " s"
    )
    return Figure.measured(
        f"payledger explain --failed --json, {store.label}",
        "payments/s",
        rates,
        raw,
        # (the target is for a million events: on a small log the process's start dominates)
        target=Target(on="value", op=">=", threshold=20_000) if count >= 1_000_000 else None,
        note="wall time of a fresh process writing every explanation to a pipe",
    )


async def _explain_growth(
    options: Options, tmp: Path, count: int, per_rep: int, large_p95: Figure
) -> list[Figure]:
    """Figure 1's 95th percentile on a store of a quarter of the log, and the growth."""
    small = max(20_000, count // 4)
    log = tmp / "small.jsonl"
    failed = _write_log(log, small, options.seed)
    path = tmp / "small.db"
    _run([*_payledger(), "--db", str(path), "import", str(log)])
    log.unlink()
    store = _Store(f"projections caught up, {small:,} events", path)
    figures, _ = await _explain_one(options, store, failed, per_rep)
    small_p95 = figures[1]
    growth = [a / b for a, b in zip(large_p95.samples, small_p95.samples, strict=True)]
    return [
        small_p95,
        Figure.measured(
            f"explain 1 payment: p95 at {count:,} over p95 at {small:,} events",
            "x",
            growth,
            better="lower",
            target=Target(on="value", op="<", threshold=1.5, aim=True),
            note="flat as the log grows: 1 is flat; per repetition, the same sample size",
        ),
    ]


async def run(options: Options) -> list[Figure]:
    """Measure the figures of the module docstring."""
    count = 100_000 if options.quick or options.large_events <= 0 else options.large_events
    per_rep = 50 if options.quick else 200
    figures: list[Figure] = []
    with scratch_dir(options) as tmp:
        options.log(f"replay: building two stores of {count:,} events")
        stores, failed = await _build(options, tmp, count)
        for store in stores:
            one, targets = await _explain_one(options, store, failed, per_rep)
            figures.extend(one)
            figures.append(_explain_command(options, store, targets))
            if store is stores[0]:
                figures.extend(await _explain_growth(options, tmp, count, per_rep, one[1]))
        for store in stores:
            figures.extend(await _explain_all(options, store, count))
            figures.append(_explain_all_command(options, store, count))
    return figures
