"""The verifiable log's figures (issue 14, "Speed"), each beside a baseline in the same run.

1. Durable single-event appends from 64 tasks on SQLite with the Merkle tree kept (the store as
   it ships: each group commit hashes its leaves, inserts the completed nodes from level 6 and
   rewrites the frontier in the head) against **the same store without the tree**. The
   baseline is made here only, never by an option: a fresh store whose head holds no frontier
   (``ledger_head.frontier`` set to NULL behind the store's back) appends exactly as before but
   grows no tree, since the planner grows one only from a frontier. Target: at least 0.9x.
   Each repetition measures both on fresh files, in alternating order, after a warm-up round
   that is not counted.
2. An inclusion proof of a random event in a store of ``--large-events`` events (1,000,000 by
   default, built from :func:`fixtures.generate.generate_chunks`), in process, through
   :func:`ledger.tree.inclusion`: the median and the 95th percentile, in milliseconds. Target:
   under 5 ms for both. The baseline is plain ``sqlite3`` making the same reads (the plan's
   stored nodes in one query, its leaf ranges in one query each) and building the same proof
   with the same code (:func:`ledger.merkle.build_inclusion_proof`): what the async store
   costs on top of the reads.
3. A consistency proof between two random sizes of the same store (no target), the same way.
4. Signing a checkpoint of the whole large store without leaves (:func:`ledger.sign_log`,
   O(log n) reads) and folding all its chain hashes as ``verify --checkpoint`` does
   (:func:`ledger.tree.folded_root`), the fold beside raw ``sqlite3`` reading the same hashes
   into :func:`ledger.merkle.merkle_root`.
"""

from __future__ import annotations

import random
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Final

import anyio

from fixtures.generate import generate_chunks
from ledger import open_store, sign_log
from ledger.checkpoint import generate_key
from ledger.codec import read_lines
from ledger.merkle import (
    NodeId,
    build_consistency_proof,
    build_inclusion_proof,
    consistency_plan,
    inclusion_plan,
    merkle_root,
)
from ledger.tree import TREE_THRESHOLD, consistency, folded_root, inclusion

from ._util import Figure, Options, Target, scratch_dir, timed
from .bench_store import Planned, _task_workloads

__all__ = ["run"]

TITLE: Final = "verifiable log"
_ROOT: Final = Path(__file__).resolve().parent.parent
_TASKS: Final = 64


# --- 1. appends with and without the tree ------------------------------------------------------


def _drop_tree(path: Path) -> None:
    """Make a fresh store grow no tree: its head holds no frontier (the baseline only)."""
    conn = sqlite3.connect(path)
    try:
        conn.execute("UPDATE ledger_head SET frontier = NULL WHERE id = 1")
        conn.commit()
    finally:
        conn.close()


def _tree_rows(path: Path) -> tuple[int, bool]:
    conn = sqlite3.connect(path)
    try:
        (nodes,) = conn.execute("SELECT count(*) FROM ledger_tree").fetchone()
        (frontier,) = conn.execute("SELECT frontier FROM ledger_head").fetchone()
        return int(nodes), frontier is not None
    finally:
        conn.close()


async def _appends(path: Path, workloads: list[list[Planned]], *, tree: bool) -> float:
    async with open_store(path):
        pass
    if not tree:
        _drop_tree(path)
    async with open_store(path) as store:

        async def worker(planned: list[Planned]) -> None:
            for stream, event, version in planned:
                await store.append(stream, [event], expected_version=version)

        with timed() as elapsed:
            async with anyio.create_task_group() as tg:
                for planned in workloads:
                    tg.start_soon(worker, planned)
    nodes, kept = _tree_rows(path)
    if (nodes > 0 or kept) != tree:
        raise RuntimeError(f"the store {'grew no' if tree else 'grew a'} tree")
    return sum(len(w) for w in workloads) / elapsed()


async def _append_figure(options: Options) -> Figure:
    total = 4_000 if options.quick else 24_000
    kept: list[float] = []
    bare: list[float] = []
    with scratch_dir(options) as tmp:  # a round not counted: the file system and caches warm
        warm = _task_workloads(_TASKS, 2_000, options.seed - 1)
        for tree in (True, False):
            await _appends(tmp / f"warm-{tree}.db", warm, tree=tree)
    for rep in range(options.repeat):
        workloads = _task_workloads(_TASKS, total, options.seed + rep)
        with scratch_dir(options) as tmp:
            order = [True, False] if rep % 2 == 0 else [False, True]
            for tree in order:
                rate = await _appends(tmp / f"tree-{tree}.db", workloads, tree=tree)
                (kept if tree else bare).append(rate)
        options.log(f"appends, rep {rep + 1}: tree {kept[-1]:,.0f}/s, no tree {bare[-1]:,.0f}/s")
    return Figure.measured(
        f"durable 1-event appends, {_TASKS} tasks, tree kept",
        "events/s",
        kept,
        bare,
        target=Target(on="ratio", op=">=", threshold=0.9),
        note="baseline: the same store growing no tree (its head's frontier nulled), same run",
    )


# --- 2-4. the large store ----------------------------------------------------------------------


def _lines(count: int, seed: int) -> Iterator[bytes]:
    for chunk in generate_chunks(count, seed):
        yield from chunk.splitlines()


async def _build(path: Path, count: int, seed: int) -> int:
    async with open_store(path) as store:
        result = await store.import_events(read_lines(_lines(count, seed)))
        return result.appended


def _build_apart(path: Path, count: int, seed: int) -> int:
    """Build the store in a child process, so that the one measuring holds none of the
    build's memory (as a service or a command reading a store it did not just fill)."""
    code = (
        "import anyio, sys; from pathlib import Path; from bench.bench_vlog import _build; "
        "print(anyio.run(_build, Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(path), str(count), str(seed)],
        cwd=_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"building the large store failed:\n{done.stderr}")
    return int(done.stdout.strip())


def _p95(samples: Sequence[float]) -> float:
    return statistics.quantiles(samples, n=20, method="inclusive")[18]


class _Raw:
    """Plain ``sqlite3`` making a plan's reads, for the baseline."""

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)

    def nodes(self, ids: Sequence[NodeId]) -> dict[NodeId, bytes]:
        if not ids:
            return {}
        seek = "SELECT level, idx, hash FROM ledger_tree WHERE level = ? AND idx = ?"
        args = [x for node in ids for x in (node.level, node.index)]
        rows = self.conn.execute(" UNION ALL ".join([seek] * len(ids)), args).fetchall()
        return {NodeId(level, idx): bytes(h) for level, idx, h in rows}

    def leaves(self, ranges: Sequence[tuple[int, int]]) -> list[list[bytes]]:
        sql = "SELECT hash FROM events WHERE position BETWEEN ? AND ? ORDER BY position"
        return [[bytes(h) for (h,) in self.conn.execute(sql, (lo + 1, hi))] for lo, hi in ranges]

    def inclusion(self, position: int, size: int) -> None:
        plan = inclusion_plan(position - 1, size, TREE_THRESHOLD)
        build_inclusion_proof(plan, self.nodes(plan.nodes), self.leaves(plan.leaf_ranges))

    def consistency(self, old: int, new: int) -> None:
        plan = consistency_plan(old, new, TREE_THRESHOLD)
        build_consistency_proof(plan, self.nodes(plan.nodes), self.leaves(plan.leaf_ranges))

    def fold(self, size: int) -> bytes:
        sql = "SELECT hash FROM events WHERE position <= ? ORDER BY position"
        return merkle_root(bytes(h) for (h,) in self.conn.execute(sql, (size,)))

    def close(self) -> None:
        self.conn.close()


def _ms(seconds: Sequence[float]) -> list[float]:
    return [s * 1000 for s in seconds]


async def _large(options: Options) -> list[Figure]:
    count = options.large_events
    samples = 200 if options.quick else 1_000
    rng = random.Random(options.seed)
    with scratch_dir(options) as tmp:
        path = tmp / "large.db"
        with timed() as elapsed:
            size = await anyio.to_thread.run_sync(_build_apart, path, count, options.seed)
        options.log(f"built a {size:,}-event store in {elapsed():.0f} s")
        positions = [rng.randrange(1, size + 1) for _ in range(samples)]
        pairs = [tuple(sorted(rng.sample(range(1, size + 1), 2))) for _ in range(samples)]
        raw = _Raw(path)
        mine: list[float] = []
        theirs: list[float] = []
        steps: list[float] = []
        raw_steps: list[float] = []
        try:
            async with open_store(path, readonly=True) as store:
                for p in positions[:20]:  # warm both sides
                    await inclusion(store, p)
                    raw.inclusion(p, size)
                for p in positions:
                    start = time.perf_counter()
                    await inclusion(store, p)
                    mine.append(time.perf_counter() - start)
                    start = time.perf_counter()
                    raw.inclusion(p, size)
                    theirs.append(time.perf_counter() - start)
                for old, new in pairs:
                    start = time.perf_counter()
                    await consistency(store, old, new)
                    steps.append(time.perf_counter() - start)
                    start = time.perf_counter()
                    raw.consistency(old, new)
                    raw_steps.append(time.perf_counter() - start)
                signing: list[float] = []
                key = generate_key()
                for _ in range(options.repeat):
                    with timed() as took:
                        await sign_log(store, key)
                    signing.append(took())
                folds: list[float] = []
                raw_folds: list[float] = []
                for _ in range(1 if options.quick else min(3, options.repeat)):
                    with timed() as took:
                        root = await folded_root(store, size)
                    folds.append(size / took())
                    with timed() as took:
                        if raw.fold(size) != root:
                            raise RuntimeError("the raw fold differs from the store's")
                    raw_folds.append(size / took())
        finally:
            raw.close()
    label = f"{size:,}-event store"
    under5 = Target(on="value", op="<", threshold=5)
    options.log(f"proofs: median {statistics.median(mine) * 1000:.2f} ms")
    return [
        Figure.measured(
            f"{label}: inclusion proof, median",
            "ms",
            [statistics.median(_ms(mine))],
            [statistics.median(_ms(theirs))],
            better="lower",
            target=under5,
            note=f"{samples} random positions; baseline: plain sqlite3 making the same reads",
        ),
        Figure.measured(
            f"{label}: inclusion proof, p95",
            "ms",
            [_p95(_ms(mine))],
            [_p95(_ms(theirs))],
            better="lower",
            target=under5,
        ),
        Figure.measured(
            f"{label}: consistency proof, median",
            "ms",
            [statistics.median(_ms(steps))],
            [statistics.median(_ms(raw_steps))],
            better="lower",
        ),
        Figure.measured(
            f"{label}: sign a checkpoint (no leaves)", "ms", _ms(signing), better="lower"
        ),
        Figure.measured(
            f"{label}: fold every chain hash (verify --checkpoint)",
            "events/s",
            folds,
            raw_folds,
            note="baseline: plain sqlite3 reading the same hashes into the same fold",
        ),
    ]


async def run(options: Options) -> list[Figure]:
    figures = [await _append_figure(options)]
    if options.large_events > 0:  # --large-events 0 skips the large store
        figures += await _large(options)
    return figures
