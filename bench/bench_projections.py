"""The projections' figures (issues 3 and 13), each beside raw ``sqlite3`` in the same run.

1. ``rebuild`` of every projection (account, channel, policy, payment, balances), in events/s:
   :meth:`projections.Projector.rebuild` folds every event of the store from position 1 and
   writes every row and the checkpoint in one transaction. The baseline reads the same rows
   with plain ``sqlite3`` and decodes each with :data:`ledger.events.DECODER` (no fold, no
   write): what any rebuild must at least do. Target: at least half its rate (ratio >= 0.5).
2. The same rebuild of the large store (1,000,000 events in the full run) in a fresh process,
   beside the raw read and decode in another fresh process, and the rebuild's peak memory (the
   process's RSS high-water mark). Targets: ratio >= 0.5; under 150 MiB.
3. ``payledger import`` of a generated log of as many events (:mod:`fixtures.generate`, JSON
   Lines) into a new path, projections included, in a fresh process, against the same import
   with ``--no-project`` (the baseline here is payledger itself). Targets: at least 0.8 of its
   rate; bytes written at most twice the final store's size (``wchar`` of ``/proc/self/io``:
   every byte the process handed to a ``write`` call, journal and page rewrites included).
4. The state of one account as of a random position in the large store, in milliseconds:
   :func:`projections.account_at` on a store whose projection tables are caught up, for random
   accounts and positions. The baseline reads that account's own stream up to the position
   with plain ``sqlite3`` (less work: no payment streams, no fold). Target: under 50 ms.
5. Durable appends from 64 concurrent tasks while :func:`projections.open_projections` follows
   them live in the same process, against the same appends with no projection (the baseline
   here is the store itself, not raw sqlite3). Target: at least half the rate (ratio >= 0.5).
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
import subprocess
import sys
import time
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any, Final

import anyio
from anyio.to_thread import run_sync

from fixtures.generate import generate_chunks
from ledger import ImportItem, open_store
from ledger.events import DECODER, Event
from projections import Projector, account_at, open_projections

from ._data import START, ledger_events, payment_flow
from ._raw import read_decode, read_state_rows, write_state_rows
from ._util import Figure, Options, Target, dir_size, median, scratch_dir, timed

__all__ = ["run"]

TITLE: Final = "projections"


async def _build(path: Path, count: int, seed: int) -> None:
    async with open_store(path, durability="normal") as store:
        await store.import_events(
            ImportItem(stream=stream, event=event) for stream, event in ledger_events(count, seed)
        )


def _raw_account_stream(conn: sqlite3.Connection, account_id: str, position: int) -> int:
    rows = conn.execute(
        "SELECT data FROM events WHERE stream_no = (SELECT id FROM streams WHERE name = ?) "
        "AND position <= ? ORDER BY version",
        (f"account-{account_id}", position),
    ).fetchall()
    for (data,) in rows:
        DECODER.decode(data)
    return len(rows)


async def _rebuild_figure(options: Options, tmp: Path) -> list[Figure]:
    count = 20_000 if options.quick else 200_000
    path = tmp / "rebuild.db"
    options.log(f"rebuild: building a store of {count:,} events")
    await _build(path, count, options.seed)
    samples: list[float] = []
    baseline: list[float] = []
    async with open_store(path) as store, Projector.open(store) as projector:
        for i in range(options.repeat):
            result = await projector.rebuild()
            samples.append(result.events / result.seconds)
            with timed() as elapsed:
                n = read_decode(path)
            baseline.append(n / elapsed())
            options.log(f"rebuild {i + 1}/{options.repeat}: {samples[-1]:,.0f} events/s")
    ddl, rows = await run_sync(read_state_rows, path)
    ceiling: list[float] = []
    for i in range(options.repeat):
        target = tmp / f"rows-{i}.db"
        with timed() as elapsed:
            n = read_decode(path)
            write_state_rows(target, ddl, rows)
        ceiling.append(n / elapsed())
        _remove(tmp, target.name)
    return [
        Figure.measured(
            "rebuild every projection",
            "events/s",
            samples,
            baseline,
            better="higher",
            target=Target(on="ratio", op=">=", threshold=0.5),
            note=f"{count:,} events; baseline: sqlite3 SELECT + msgspec decode only",
        ),
        Figure.measured(
            "ceiling: raw read + decode + write of the rebuild's rows",
            "events/s",
            ceiling,
            baseline,
            better="higher",
            note=(
                f"not payledger: the baseline, then the {len(rows):,} rows the rebuild wrote "
                "inserted with plain sqlite3 into an empty ledger_states (one transaction, "
                "synchronous=FULL): a rebuild with a fold that took no time at all"
            ),
        ),
    ]


def _large_count(options: Options) -> int:
    return options.large_events if not options.quick else min(options.large_events, 50_000)


def _child(*argv: str) -> dict[str, Any]:
    """Run ``bench._child`` in a fresh interpreter and return its JSON report."""
    root = Path(__file__).resolve().parent.parent
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH")]))
    env.pop("PAYLEDGER_DB", None)
    done = subprocess.run(
        [sys.executable, "-m", "bench._child", *argv],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"bench._child {argv[0]} failed:\n{done.stderr}")
    report: dict[str, Any] = json.loads(done.stdout)
    return report


async def _large_rebuild_figures(options: Options, path: Path, count: int) -> list[Figure]:
    mib = 1024 * 1024
    rates: list[float] = []
    raw_rates: list[float] = []
    peaks: list[float] = []
    raw_peaks: list[float] = []
    for rep in range(min(options.repeat, 3)):
        report = await run_sync(_child, "rebuild", str(path))
        raw = await run_sync(_child, "read_decode", str(path))
        if report["events"] != count or raw["events"] != count:
            raise RuntimeError("the rebuild did not fold every event")
        rates.append(count / report["seconds"])
        raw_rates.append(count / raw["seconds"])
        peaks.append(report["rss_peak"] / mib)
        raw_peaks.append(raw["rss_peak"] / mib)
        options.log(
            f"rebuild of {count:,} events in a fresh process, rep {rep + 1}: "
            f"{rates[-1]:,.0f} events/s (raw {raw_rates[-1]:,.0f}), peak RSS {peaks[-1]:.1f} MiB"
        )
    label = f"rebuild, {count:,} events, fresh process"
    return [
        Figure.measured(
            label,
            "events/s",
            rates,
            raw_rates,
            target=Target(on="ratio", op=">=", threshold=0.5),
            note="raw: a fresh process doing sqlite3 SELECT + msgspec decode only",
        ),
        Figure.measured(
            f"{label}: peak RSS",
            "MiB",
            peaks,
            raw_peaks,
            better="lower",
            target=Target(on="value", op="<", threshold=150),
            note="RSS high-water mark (VmHWM) of the process; raw: the read and decode's",
        ),
    ]


def _remove(directory: Path, stem: str) -> None:
    for found in directory.glob(f"{stem}*"):
        found.unlink()


def _write_log(path: Path, count: int, seed: int) -> None:
    with path.open("wb") as out:
        for chunk in generate_chunks(count, seed):
            out.write(chunk)


async def _import_figures(options: Options, tmp: Path, count: int) -> list[Figure]:
    log = tmp / "import.jsonl"
    _write_log(log, count, options.seed)
    rates: list[float] = []
    plain_rates: list[float] = []
    ratios_written: list[float] = []
    written_to_disk: list[float] = []
    sizes: list[float] = []
    for rep in range(min(options.repeat, 3)):
        runs: dict[bool, dict[str, Any]] = {}
        for project in (False, True):
            db = tmp / f"import-{rep}-{int(project)}.db"
            flags = [] if project else ["--no-project"]
            argv = ["cli", "--db", str(db), "import", *flags, str(log)]
            report = await run_sync(partial(_child, *argv))
            if report["code"] != 0:
                raise RuntimeError(f"payledger import failed: {report}")
            size = dir_size(tmp, db.name)
            runs[project] = {**report, "size": size}
            if project:
                ratios_written.append(report["wchar"] / size)
                written_to_disk.append((report["write_bytes"] or 0) / size)
                sizes.append(size / (1024 * 1024))
            await run_sync(_remove, tmp, db.name)
        rates.append(count / runs[True]["seconds"])
        plain_rates.append(count / runs[False]["seconds"])
        options.log(
            f"payledger import of {count:,} events, rep {rep + 1}: {rates[-1]:,.0f} events/s "
            f"with projections, {plain_rates[-1]:,.0f} without; wrote {ratios_written[-1]:.2f}x "
            f"the store ({sizes[-1]:.0f} MiB)"
        )
    log.unlink()
    return [
        Figure.measured(
            f"payledger import, {count:,} events, with projections",
            "events/s",
            rates,
            plain_rates,
            target=Target(on="ratio", op=">=", threshold=0.8),
            note="a fresh process importing into a new path; baseline: the same with --no-project",
        ),
        Figure.measured(
            f"payledger import, {count:,} events, with projections: bytes written",
            "x store",
            ratios_written,
            better="lower",
            target=Target(on="value", op="<=", threshold=2),
            note=(
                "bytes the process handed to write() (wchar) over the final store's size "
                f"({median(sizes):.0f} MiB); to storage (write_bytes): "
                f"{median(written_to_disk):.2f}x"
            ),
        ),
    ]


async def _account_at_figure(options: Options, path: Path, count: int) -> Figure:
    rng = random.Random(options.seed)
    async with open_store(path) as store:
        async with Projector.open(store) as projector:
            options.log("account_at: catching the projections up")
            await projector.catch_up(batch_size=50_000)
        head = await store.head()
        conn = sqlite3.connect(path)
        try:
            accounts = [
                row[0].removeprefix("account-")
                for row in conn.execute(
                    "SELECT DISTINCT stream FROM events WHERE type = 'AccountOpened'"
                ).fetchall()
            ]
            samples: list[float] = []
            baseline: list[float] = []
            per_round = 20 if options.quick else 50
            for _ in range(options.repeat):
                for _ in range(per_round):
                    account_id = rng.choice(accounts)
                    position = rng.randrange(1, head + 1)
                    start = time.perf_counter()
                    await account_at(store, account_id, position=position)
                    samples.append((time.perf_counter() - start) * 1000)
                    start = time.perf_counter()
                    _raw_account_stream(conn, account_id, position)
                    baseline.append((time.perf_counter() - start) * 1000)
        finally:
            conn.close()
    ordered = sorted(samples)
    options.log(
        f"account_at: median {ordered[len(ordered) // 2]:.2f} ms, "
        f"max {ordered[-1]:.2f} ms over {len(ordered)} lookups"
    )
    return Figure.measured(
        "account state at a random position",
        "ms",
        samples,
        baseline,
        better="lower",
        target=Target(on="value", op="<", threshold=50),
        note=f"{count:,} events; baseline: sqlite3 reading the account's own stream",
    )


def _flows(count: int, seed: int) -> list[list[Event]]:
    """Payment flows of about ``count`` events in all (one stream each)."""
    rng = random.Random(seed)
    flows: list[list[Event]] = []
    total = 0
    while total < count:
        flow = payment_flow(rng, f"L{len(flows)}", f"A{len(flows) % 500}", START)
        flows.append(flow)
        total += len(flow)
    return flows


async def _append_flows(path: Path, flows: Sequence[list[Event]], follow: bool) -> float:
    """Events/s appended by 64 tasks, each event durable on its own; with a live follower."""
    events = sum(len(f) for f in flows)
    async with open_store(path) as store:

        async def worker(mine: Sequence[list[Event]]) -> None:
            for flow in mine:
                stream = f"payment-{flow[0].payment_id}"  # type: ignore[attr-defined]
                for event in flow:
                    await store.append(stream, [event])

        async def appends() -> float:
            with timed() as elapsed:
                async with anyio.create_task_group() as tg:
                    for i in range(64):
                        tg.start_soon(worker, flows[i::64])
            return events / elapsed()

        if not follow:
            return await appends()
        async with open_projections(store) as projector:
            rate = await appends()
            with anyio.fail_after(120):
                while await projector.checkpoint() < await store.head():  # noqa: ASYNC110
                    await anyio.sleep(0.01)
        return rate


async def _follow_figure(options: Options, tmp: Path) -> Figure:
    count = 2_000 if options.quick else 10_000
    samples: list[float] = []
    baseline: list[float] = []
    for i in range(options.repeat):
        flows = _flows(count, options.seed + i)
        baseline.append(await _append_flows(tmp / f"plain{i}.db", flows, follow=False))
        samples.append(await _append_flows(tmp / f"live{i}.db", flows, follow=True))
        options.log(
            f"live follow {i + 1}/{options.repeat}: {samples[-1]:,.0f} events/s "
            f"(without: {baseline[-1]:,.0f})"
        )
    return Figure.measured(
        "appends (64 tasks) with live projections",
        "events/s",
        samples,
        baseline,
        better="higher",
        target=Target(on="ratio", op=">=", threshold=0.5),
        note=f"{count:,} events; baseline: the same appends with no projection following",
    )


async def run(options: Options) -> list[Figure]:
    """Measure the figures of the module docstring."""
    figures: list[Figure] = []
    with scratch_dir(options) as tmp:
        figures.extend(await _rebuild_figure(options, tmp))
        count = _large_count(options)
        if count > 0:
            path = tmp / "large.db"
            options.log(f"building a store of {count:,} events")
            await _build(path, count, options.seed)
            figures.extend(await _large_rebuild_figures(options, path, count))
            figures.extend(await _import_figures(options, tmp, count))
            figures.append(await _account_at_figure(options, path, count))
        figures.append(await _follow_figure(options, tmp))
    return figures
