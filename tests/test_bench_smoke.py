"""Every benchmark runs: each ``bench/bench_*.py`` module (found by ``bench.__main__.discover``,
so a new one is covered without touching this file) is run by ``python -m bench NAME --json``
at the smallest sizes the CLI offers (``--quick --repeat 1 --large-events 2000``; ``bench_replay``
keeps its own quick size), in a fresh process, and must finish without an error and report
figures that hold numbers. About 40 s in all on a 2-core machine.

Nothing here looks at a figure's speed or its target: speed is measured by the benchmarks
themselves, never by a timed assertion in a test (machines are shared and noisy). A figure
only has to be there, with positive finite samples, and its baseline where it has one.

``bench_postgres`` runs against the test server (``PAYLEDGER_TEST_POSTGRES_URL``, started by
``.ci/postgres.sh``); with ``PAYLEDGER_REQUIRE_POSTGRES=1`` and no server it fails, never skips
(:func:`pg_support.server_url`). ``bench_eventsourcing`` needs the ``eventsourcing`` library
(in the ``test`` extra): without it the module reports no figure, and the test fails.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Final

import msgspec
import pytest
from pg_support import server_url

from bench.__main__ import discover
from bench._util import Figure

ROOT: Final = Path(__file__).resolve().parent.parent
BENCHMARKS: Final = discover()

POSTGRES: Final = frozenset({"postgres"})
"""The benchmarks that need a PostgreSQL server (given the test server's URL)."""

LARGE_EVENTS: Final = 2_000
"""``--large-events``: the large stores at a size that still holds failed payments to explain
and proofs to build."""

SMOKE_ARGS: Final = ("--quick", "--repeat", "1", "--large-events", str(LARGE_EVENTS), "--json")


def test_the_benchmarks_are_found() -> None:
    assert BENCHMARKS, "bench.__main__.discover() found no bench/bench_*.py module"
    assert set(BENCHMARKS) >= POSTGRES, f"POSTGRES names a benchmark that is gone: {POSTGRES}"


def _env(name: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.pop("PAYLEDGER_DB", None)
    env["NO_COLOR"] = "1"
    if name in POSTGRES:
        # the test server: never a server the benchmark starts itself, nor another one named
        # by a PAYLEDGER_BENCH_POSTGRES_URL of the caller's
        env["PAYLEDGER_BENCH_POSTGRES_URL"] = server_url()
    return env


def _run(name: str, tmp: Path) -> tuple[dict[str, Any], str, int]:
    """``python -m bench NAME`` at the smoke sizes: its JSON document, what to show when it
    fails (its stderr: the progress lines and any traceback) and its exit status."""
    done = subprocess.run(
        [sys.executable, "-m", "bench", name, *SMOKE_ARGS, "--tmpdir", str(tmp)],
        cwd=ROOT,
        env=_env(name),
        capture_output=True,
        text=True,
        check=False,
    )
    log = f"python -m bench {name} exited {done.returncode}; stderr:\n{done.stderr[-6000:]}"
    try:
        document = json.loads(done.stdout)
    except ValueError:
        pytest.fail(f"{log}\nstdout is not one JSON document:\n{done.stdout[-3000:]}")
    assert isinstance(document, dict), log
    return document, log, done.returncode


def _positive(x: float) -> bool:
    return math.isfinite(x) and x > 0


def _check_figure(name: str, fig: Figure) -> None:
    where = f"figure {fig.name!r} of bench_{name}"
    assert fig.name.strip(), f"{where}: no name"
    assert fig.unit.strip(), f"{where}: no unit"
    assert fig.samples, f"{where}: no sample"
    assert all(_positive(s) for s in fig.samples), f"{where}: samples {fig.samples}"
    assert _positive(fig.value), f"{where}: value {fig.value}"
    if fig.baseline_samples or fig.baseline is not None or fig.ratio is not None:
        assert fig.baseline is not None, f"{where}: no baseline"
        assert fig.baseline_samples, f"{where}: a baseline of no sample"
        assert all(_positive(s) for s in fig.baseline_samples), (
            f"{where}: baseline samples {fig.baseline_samples}"
        )
        assert _positive(fig.baseline), f"{where}: baseline {fig.baseline}"
        assert fig.ratio is not None, f"{where}: a baseline but no ratio"
        assert _positive(fig.ratio), f"{where}: ratio {fig.ratio}"
    if fig.target is not None and fig.target.on == "ratio":
        assert fig.baseline is not None, f"{where}: a target on the ratio, but no baseline"


@pytest.mark.slow
@pytest.mark.parametrize("name", BENCHMARKS)
def test_benchmark_runs_and_reports_figures(name: str, tmp_path: Path) -> None:
    document, log, status = _run(name, tmp_path)
    (outcome,) = document["benchmarks"]
    assert outcome["name"] == name, log
    if outcome["error"] is not None:
        pytest.fail(f"bench_{name} raised:\n{outcome['error']}\n\n{log}")
    assert status == 0, log
    assert document["mode"] == "quick", log
    assert document["options"]["repeat"] == 1, log
    assert document["options"]["large_events"] == LARGE_EVENTS, log
    assert outcome["figures"], (
        f"bench_{name} reported no figure; its output: {outcome['output']!r}\n\n{log}"
    )
    figures = [msgspec.convert(item, Figure) for item in outcome["figures"]]
    for fig in figures:
        _check_figure(name, fig)
    names = [fig.name for fig in figures]
    assert len(set(names)) == len(names), f"bench_{name}: figures of the same name: {names}"
    leftovers = sorted(p.name for p in tmp_path.iterdir())
    assert not leftovers, f"bench_{name} left {leftovers} in --tmpdir (use bench.scratch_dir)"
