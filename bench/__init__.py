"""payledger's benchmarks: each figure printed beside raw ``sqlite3`` doing the same work.

Run them with ``make bench`` or ``python -m bench`` from the repository root::

    python -m bench                  # every benchmark, full sizes (several minutes)
    python -m bench --quick          # small sizes: about 90 s
    python -m bench store --json     # only bench_store.py, as one JSON document
    python -m bench --list           # the benchmarks found

Figures are medians over ``--repeat`` repetitions, and ratios are medians of per-repetition
ratios (each repetition measures payledger and its baseline back to back): machines are shared
and noisy, so quote ratios and medians, not single runs.

The convention for a benchmark module
-------------------------------------
``python -m bench`` finds every module ``bench/bench_<name>.py`` (in name order) and runs the
ones named on its command line (``<name>``, or all when none is named). A module exposes one of:

``async def run(options: bench.Options) -> list[bench.Figure]`` (preferred)
    Measure and return the figures; the runner prints every module's figures in one table (or
    JSON). Honour ``options.quick`` (the whole quick run must stay near 90 s),
    ``options.repeat`` (take medians over that many repetitions) and ``options.seed``; put files
    only in ``with bench.scratch_dir(options) as tmp:`` (removed afterwards); print progress
    with ``options.log(...)`` (stderr: stdout is the report). Build figures with
    ``bench.Figure.measured(name, unit, samples, baseline_samples, better=..., target=...)``.
    ``async def run()`` without parameters is accepted too, and a ``run`` returning ``None`` is
    taken to have printed its own report.

``def main(argv: list[str]) -> None`` (or ``async def main``)
    Run and print its own report. ``argv`` carries the runner's flags that were set:
    ``--quick``, ``--json``, and ``--repeat N``, ``--tmpdir DIR``, ``--large-events N`` when
    given, so parse it with ``argparse``'s ``parse_known_args``. With ``--json`` it should print
    one JSON value: the runner embeds it in its document (anything else is embedded as text).

A module may set ``TITLE: str`` (its heading in the table; default: its name). A module that
raises is reported and the others still run; the exit status is then 1 (also, with ``--check``,
when a figure misses its target). Modules whose names do not start with ``bench_`` (``_util``,
``_data``, ``_child``) are helpers and never run by themselves.

``make test`` runs every module once (``tests/test_bench_smoke.py``): ``--quick --repeat 1
--large-events 2000 --json`` in a fresh process, which must end without an error and report
figures with positive numbers (and their baselines). Keep a module's run at those sizes to a few
seconds; the test never looks at a figure's speed or target.
"""

from __future__ import annotations

from ._util import Figure as Figure
from ._util import Options as Options
from ._util import Target as Target
from ._util import scratch_dir as scratch_dir

__all__ = ["Figure", "Options", "Target", "scratch_dir"]
