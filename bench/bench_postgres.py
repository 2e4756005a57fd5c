"""The PostgreSQL event store's figures (issue 10), each beside raw asyncpg in the same run.

1. **Group commit across a fleet**: 4 processes x 64 tasks, each task appending single events
   to its own stream with its expected version, durable (``synchronous_commit=on``), against
   raw asyncpg doing the same inserts from 4 processes x 64 tasks, each event committed in its
   own transaction through a pool of asyncpg's default size (10 connections per process).
   Target: at least 5x.
2. **The price of commit order**: 4 processes x 1 task, so that no append has a group to share:
   every append is one transaction, and the head row serialises them; against raw asyncpg, 4
   processes x 1 task committing in parallel. No target: it measures what serialised commits
   cost when group commit cannot help.
3. **Explain one payment** in a store of ``--large-events`` events (1,000,000; 50,000 with
   ``--quick``; 0 skips 3 and 4), in process: median under 20 ms, beside raw asyncpg reading the
   streams involved (:mod:`bench._pg_large`).
4. **Rebuild** every projection on PostgreSQL, beside the same rebuild on SQLite of the same
   log: at least half its events/s (:mod:`bench._pg_large`).

For figures 1 and 2 the baseline is fair, not a straw man: the same server, the same durability,
a table shaped like ``events`` (same columns, same unique constraints and indexes, a
``bigserial`` position), the same events encoded by msgspec with a SHA-256 each. It does less
than the store: no validation, no expected-version check, no hash chain, no head row, and its
positions may commit out of order (the very thing the store prevents).

The server: ``$PAYLEDGER_BENCH_POSTGRES_URL``, else ``$PAYLEDGER_TEST_POSTGRES_URL`` (a role
that may create databases), else a throwaway server started with ``.ci/postgres.sh`` and
stopped afterwards. Each repetition measures both sides, each in a new database.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit, urlunsplit

import anyio
import asyncpg
import msgspec

from ledger import open_store

from . import _pg_large
from ._pg_child import RAW_DDL
from ._util import Figure, Options, Target, scratch_dir

__all__ = ["SIZES", "Sizes", "run"]

TITLE: Final = "event store on PostgreSQL (baseline: raw asyncpg, not sqlite3)"
ROOT: Final = Path(__file__).resolve().parent.parent
SCRIPT: Final = ROOT / ".ci" / "postgres.sh"
PROCESSES: Final = 4


class Sizes(msgspec.Struct, frozen=True, kw_only=True):
    """Appends per task, for each figure."""

    fleet_calls: int
    """Figure 1: single-event appends per task (64 tasks per process)."""
    serial_calls: int
    """Figure 2: appends per process (one task each)."""


SIZES: Final = {
    "quick": Sizes(fleet_calls=8, serial_calls=100),
    "full": Sizes(fleet_calls=40, serial_calls=400),
}


@contextmanager
def _server(options: Options) -> Iterator[str]:
    """A server URL: from the environment, or a throwaway server of ``.ci/postgres.sh``."""
    url = os.environ.get("PAYLEDGER_BENCH_POSTGRES_URL") or os.environ.get(
        "PAYLEDGER_TEST_POSTGRES_URL"
    )
    if url:
        yield url
        return
    options.log("starting a throwaway PostgreSQL server (.ci/postgres.sh)")
    out = subprocess.run(
        ["bash", str(SCRIPT), "start"], check=True, capture_output=True, text=True
    ).stdout
    exports = dict(
        line.removeprefix("export ").split("=", 1) for line in out.splitlines() if "=" in line
    )
    directory = exports["PAYLEDGER_TEST_POSTGRES_DIR"].strip("'")
    try:
        yield exports["PAYLEDGER_TEST_POSTGRES_URL"].strip("'")
    finally:
        subprocess.run(["bash", str(SCRIPT), "stop", directory], check=False)


@asynccontextmanager
async def _database(server: str, *, raw: bool) -> AsyncIterator[str]:
    name = f"payledger_bench_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(server)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    url = urlunsplit(urlsplit(server)._replace(path=f"/{name}"))
    try:
        if raw:
            db = await asyncpg.connect(url)
            try:
                await db.execute(RAW_DDL)
            finally:
                await db.close()
        else:
            async with open_store(url):  # the schema, before the processes race for it
                pass
        yield url
    finally:
        with anyio.CancelScope(shield=True):
            conn = await asyncpg.connect(server)
            try:
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            finally:
                await conn.close()


def _fleet(kind: str, url: str, tasks: int, calls: int) -> float:
    """Events per second of ``PROCESSES`` child processes, from the first start to the last end."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "bench._pg_child", kind, url, str(tasks), str(calls)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(PROCESSES)
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None
            if proc.stdout.readline() != "ready\n":
                raise RuntimeError(f"a {kind} child did not start")
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        results = []
        for proc in procs:
            out, _ = proc.communicate(timeout=600)
            if proc.returncode != 0:
                raise RuntimeError(f"a {kind} child failed ({proc.returncode})")
            results.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    events = sum(r["events"] for r in results)
    seconds = max(r["end"] for r in results) - min(r["start"] for r in results)
    return float(events / seconds)


async def _measure(server: str, kind: str, tasks: int, calls: int) -> float:
    async with _database(server, raw=kind == "raw") as url:
        return await anyio.to_thread.run_sync(_fleet, kind, url, tasks, calls)


async def run(options: Options) -> list[Figure]:
    sizes = SIZES["quick" if options.quick else "full"]
    with _server(options) as server:
        fleet: tuple[list[float], list[float]] = ([], [])
        serial: tuple[list[float], list[float]] = ([], [])
        for rep in range(options.repeat):
            options.log(f"repetition {rep + 1}/{options.repeat}")
            for kind, samples in (("store", fleet[0]), ("raw", fleet[1])):
                samples.append(await _measure(server, kind, 64, sizes.fleet_calls))
            for kind, samples in (("store", serial[0]), ("raw", serial[1])):
                samples.append(await _measure(server, kind, 1, sizes.serial_calls))
            options.log(
                f"4x64: store {fleet[0][-1]:,.0f}/s, raw {fleet[1][-1]:,.0f}/s; "
                f"4x1: store {serial[0][-1]:,.0f}/s, raw {serial[1][-1]:,.0f}/s"
            )
        large: list[Figure] = []
        if options.large_events > 0:
            async with _database(server, raw=False) as url:
                with scratch_dir(options) as tmp:
                    store = await _pg_large.build(options, url, tmp)
                    large += await _pg_large.explain_figures(options, store)
                    large.append(await _pg_large.rebuild_figure(options, store))
    return [
        Figure.measured(
            "4 processes x 64 tasks, single-event durable appends",
            "events/s",
            fleet[0],
            fleet[1],
            target=Target(on="ratio", op=">=", threshold=5),
            note=(
                "baseline: raw asyncpg, each event committed in its own transaction (a pool of "
                "10 connections per process); the store group-commits each process's appends "
                "and serialises commits on the head row"
            ),
        ),
        Figure.measured(
            "4 processes x 1 task: one append per commit",
            "events/s",
            serial[0],
            serial[1],
            note=(
                "the price of commit order = position order: no group to share, so every "
                "append is a transaction serialised on the head row; the baseline commits in "
                "parallel"
            ),
        ),
        *large,
    ]
