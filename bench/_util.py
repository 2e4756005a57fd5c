"""What every benchmark module shares: options, figures, timing, medians and the table.

A *figure* is one measured number (payledger's), optionally beside the same work done by a
baseline (raw ``sqlite3``) in the same run, with the ratio between them and a target. Times are
repeated; a figure keeps every sample, and reports medians: machines are shared and noisy.
"""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal, TypeAlias

import msgspec

__all__ = [
    "Figure",
    "Options",
    "Target",
    "dir_size",
    "format_number",
    "machine",
    "median",
    "paired_ratio",
    "render_table",
    "scratch_dir",
    "timed",
]

Better: TypeAlias = Literal["higher", "lower"]


class Options(msgspec.Struct, frozen=True, kw_only=True):
    """How a benchmark run is configured (``python -m bench --help`` documents each)."""

    quick: bool = False
    """Small sizes: the whole run finishes in about a minute and a half."""
    repeat: int = 5
    """Repetitions of each timed measurement; figures report medians."""
    large_events: int = 1_000_000
    """Size of the large store (figure 4); 0 skips it. ``python -m bench --quick`` makes it
    50,000 unless ``--large-events`` is given."""
    tmpdir: str | None = None
    """Where temporary stores go (default: the system's temporary directory)."""
    seed: int = 20260214
    """Seed of the generated events: runs are comparable."""
    verbose: bool = True
    """Print progress lines to stderr while measuring."""

    def log(self, message: str) -> None:
        """A progress line on stderr (stdout is kept for the table or the JSON)."""
        if self.verbose:
            print(f"  .. {message}", file=sys.stderr, flush=True)


class Target(msgspec.Struct, frozen=True, kw_only=True):
    """What a figure should reach: ``ratio >= 3``, ``value >= 50000``, ``value < 150`` or
    ``value <= 2``."""

    on: Literal["ratio", "value"]
    op: Literal[">=", "<", "<="]
    threshold: float
    aim: bool = False
    """An aspiration rather than a requirement (shown as ``aim``; never fails the run)."""

    def met(self, figure: Figure) -> bool | None:
        number = figure.ratio if self.on == "ratio" else figure.value
        if number is None:
            return None
        if self.op == ">=":
            return number >= self.threshold
        return number < self.threshold if self.op == "<" else number <= self.threshold

    def describe(self, unit: str) -> str:
        what = "x raw" if self.on == "ratio" else f" {unit}"
        word = "aim " if self.aim else ""
        return f"{word}{self.op} {format_number(self.threshold)}{what}"


class Figure(msgspec.Struct, kw_only=True):
    """One reported number, with its baseline, ratio and target.

    ``value`` and ``baseline`` are medians of ``samples`` and ``baseline_samples``. ``ratio`` is
    how many times better payledger is than the baseline (for a ``higher`` figure
    value/baseline, for a ``lower`` one baseline/value), taken as the median of the
    per-repetition ratios: each repetition measures both back to back, so a noisy moment hits
    both sides of its ratio.
    """

    name: str
    unit: str
    value: float
    better: Better = "higher"
    baseline: float | None = None
    ratio: float | None = None
    target: Target | None = None
    samples: list[float] = msgspec.field(default_factory=list)
    baseline_samples: list[float] = msgspec.field(default_factory=list)
    note: str = ""

    @property
    def passed(self) -> bool | None:
        """``None`` when the figure has no target or the target is only an aim."""
        if self.target is None or self.target.aim:
            return None
        return self.target.met(self)

    @classmethod
    def measured(
        cls,
        name: str,
        unit: str,
        samples: Sequence[float],
        baseline_samples: Sequence[float] = (),
        *,
        better: Better = "higher",
        target: Target | None = None,
        note: str = "",
    ) -> Figure:
        """A figure from repeated samples (and the baseline's, paired by repetition)."""
        baseline = median(baseline_samples) if baseline_samples else None
        ratio = paired_ratio(samples, baseline_samples, better) if baseline_samples else None
        return cls(
            name=name,
            unit=unit,
            value=median(samples),
            better=better,
            baseline=baseline,
            ratio=ratio,
            target=target,
            samples=list(samples),
            baseline_samples=list(baseline_samples),
            note=note,
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = msgspec.to_builtins(self)
        out["passed"] = self.passed
        if self.target is not None:
            out["target_met"] = self.target.met(self)
        return out


def median(samples: Sequence[float]) -> float:
    if not samples:
        raise ValueError("no samples")
    return float(statistics.median(samples))


def paired_ratio(samples: Sequence[float], baseline: Sequence[float], better: Better) -> float:
    """The median of the per-repetition ratios (payledger over baseline, "times better")."""
    if len(samples) != len(baseline):
        # Unpaired (different repetition counts): the ratio of the medians.
        a, b = median(samples), median(baseline)
        return a / b if better == "higher" else b / a
    ratios = [
        a / b if better == "higher" else b / a for a, b in zip(samples, baseline, strict=True)
    ]
    return median(ratios)


@contextlib.contextmanager
def timed() -> Iterator[Callable[[], float]]:
    """``with timed() as elapsed: ...`` then ``elapsed()`` is the block's wall time in seconds."""
    start = time.perf_counter()
    end: float | None = None

    def elapsed() -> float:
        return (end if end is not None else time.perf_counter()) - start

    try:
        yield elapsed
    finally:
        end = time.perf_counter()


@contextlib.contextmanager
def scratch_dir(options: Options, prefix: str = "payledger-bench-") -> Iterator[Path]:
    """A temporary directory, removed afterwards whatever happens."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=options.tmpdir))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def dir_size(path: Path, stem: str) -> int:
    """Bytes on disk of an SQLite database ``stem`` in ``path`` with its -wal and -shm files."""
    return sum(p.stat().st_size for p in path.glob(f"{stem}*") if p.is_file())


def format_number(x: float) -> str:
    """``48,213``, ``3.2``, ``0.41``: readable in a table."""
    if x == 0:
        return "0"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    if abs(x) >= 100:
        return f"{x:.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    if abs(x) >= 1:
        return f"{x:.2f}"
    return f"{x:.3g}"


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    return {
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "msgspec": msgspec.__version__,
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
    }


def render_table(sections: Sequence[tuple[str, Sequence[Figure]]]) -> str:
    """A plain-text table: figure, payledger, raw sqlite3, ratio, target, result."""
    header = ("figure", "payledger", "raw sqlite3", "ratio", "target", "result")
    rows: list[tuple[str, ...]] = []
    for title, figures in sections:
        rows.append((f"[{title}]", "", "", "", "", ""))
        for f in figures:
            value = f"{format_number(f.value)} {f.unit}"
            base = "" if f.baseline is None else f"{format_number(f.baseline)} {f.unit}"
            ratio = "" if f.ratio is None else f"{f.ratio:.2f}x"
            target = "" if f.target is None else f.target.describe(f.unit)
            if f.target is None:
                result = ""
            else:
                met = f.target.met(f)
                result = (
                    "n/a"
                    if met is None
                    else ("PASS" if met else "MISS" if f.target.aim else "FAIL")
                )
                if f.target.aim and met:
                    result = "met"
            rows.append((f"  {f.name}", value, base, ratio, target, result))
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = [
            c.rjust(w) if i < 3 else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells[1:], widths[1:], strict=True))
        ]
        return "  ".join([first, *rest]).rstrip()

    rule = "  ".join("-" * w for w in widths)
    out = [line(header), rule]
    out.extend(line(r) for r in rows)
    out.append("")
    out.append(
        "ratio: payledger's speed relative to raw sqlite3 doing the same work in the same run "
        "(> 1: payledger is faster); the median of the per-repetition ratios."
    )
    notes = [(f.name, f.note) for _, figures in sections for f in figures if f.note]
    out.extend(f"* {name}: {note}" for name, note in notes)
    return "\n".join(out)
