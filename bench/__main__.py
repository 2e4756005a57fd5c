"""``python -m bench``: find the ``bench_*`` modules, run them, print one table (or JSON).

See the package docstring (``bench/__init__.py``) for the convention a module follows.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import inspect
import io
import json
import pkgutil
import sys
import time
import traceback
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import anyio
import msgspec

from ._util import Figure, Options, machine, render_table

__all__ = ["discover", "main"]

PREFIX = "bench_"


def discover() -> list[str]:
    """The names (without ``bench_``) of the benchmark modules in this package, sorted."""
    here = Path(__file__).resolve().parent
    return sorted(
        info.name.removeprefix(PREFIX)
        for info in pkgutil.iter_modules([str(here)])
        if info.name.startswith(PREFIX) and not info.ispkg
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="payledger's benchmarks, each figure beside raw sqlite3 in the same run.",
    )
    parser.add_argument(
        "names", nargs="*", metavar="NAME", help="benchmarks to run (bench_NAME.py; default all)"
    )
    parser.add_argument("--quick", action="store_true", help="small sizes: about 90 s")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.add_argument(
        "--repeat", type=int, help="repetitions per timed figure (default 5; 3 with --quick)"
    )
    parser.add_argument(
        "--large-events",
        type=int,
        help="events in the large store (default 1,000,000; 50,000 with --quick; 0 skips it)",
    )
    parser.add_argument("--tmpdir", help="directory for the temporary stores (default: system)")
    parser.add_argument("--seed", type=int, help="seed of the generated events")
    parser.add_argument(
        "--check", action="store_true", help="exit 1 when a figure misses its target"
    )
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    parser.add_argument("-q", "--silent", action="store_true", help="no progress lines")
    return parser


def _options(args: argparse.Namespace) -> Options:
    repeat = args.repeat if args.repeat is not None else (3 if args.quick else 5)
    if repeat < 1:
        raise SystemExit("python -m bench: --repeat must be at least 1")
    large = args.large_events
    if large is None:
        large = 50_000 if args.quick else 1_000_000
    kwargs: dict[str, Any] = {}
    if args.seed is not None:
        kwargs["seed"] = args.seed
    return Options(
        quick=args.quick,
        repeat=repeat,
        large_events=max(0, large),
        tmpdir=args.tmpdir,
        verbose=not args.silent,
        **kwargs,
    )


def _forwarded(args: argparse.Namespace) -> list[str]:
    """The flags a ``main(argv)`` module receives."""
    argv: list[str] = []
    if args.quick:
        argv.append("--quick")
    if args.json:
        argv.append("--json")
    for flag, value in (
        ("--repeat", args.repeat),
        ("--tmpdir", args.tmpdir),
        ("--large-events", args.large_events),
    ):
        if value is not None:
            argv += [flag, str(value)]
    return argv


def _as_figure(item: Any) -> Figure:
    if isinstance(item, Figure):
        return item
    return msgspec.convert(item, Figure)


class Outcome(msgspec.Struct, kw_only=True):
    """What one module produced."""

    name: str
    title: str
    seconds: float = 0.0
    figures: list[Figure] = msgspec.field(default_factory=list)
    output: Any = None
    error: str | None = None


def _run_module(
    name: str, module: ModuleType, options: Options, argv: list[str], capture: bool
) -> Outcome:
    outcome = Outcome(name=name, title=str(getattr(module, "TITLE", name)))
    run = getattr(module, "run", None)
    entry = getattr(module, "main", None)
    buffer = io.StringIO()
    redirect = contextlib.redirect_stdout(buffer) if capture else contextlib.nullcontext()
    start = time.perf_counter()
    try:
        with redirect:
            if run is not None and inspect.iscoroutinefunction(run):
                takes_options = bool(inspect.signature(run).parameters)
                result = anyio.run(run, options) if takes_options else anyio.run(run)
                if result is not None:
                    outcome.figures = [_as_figure(item) for item in result]
            elif entry is not None and callable(entry):
                if inspect.iscoroutinefunction(entry):
                    anyio.run(entry, argv)
                else:
                    entry(argv)
            else:
                raise TypeError(
                    f"bench/{PREFIX}{name}.py has neither `async def run(options)` nor "
                    "`def main(argv)`"
                )
    except (Exception, SystemExit) as e:
        if isinstance(e, SystemExit) and e.code in (0, None):
            pass
        else:
            outcome.error = "".join(traceback.format_exception(e)).rstrip()
    outcome.seconds = time.perf_counter() - start
    text = buffer.getvalue()
    if text:
        try:
            outcome.output = json.loads(text)
        except ValueError:
            outcome.output = text
    return outcome


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    available = discover()
    if args.list:
        for name in available:
            print(name)
        return 0
    unknown = [n for n in args.names if n.removeprefix(PREFIX) not in available]
    if unknown:
        print(
            f"python -m bench: no benchmark named {', '.join(unknown)} "
            f"(there are: {', '.join(available) or 'none'})",
            file=sys.stderr,
        )
        return 2
    names = [n.removeprefix(PREFIX) for n in args.names] or available
    options = _options(args)
    forwarded = _forwarded(args)
    started = datetime.now(UTC)
    mode = "quick" if options.quick else "full"
    command = "python -m bench " + " ".join(sys.argv[1:] if argv is None else argv)
    if not args.json:
        print(f"payledger benchmarks ({mode}, {options.repeat} repetitions; medians)")
        print("machine: " + ", ".join(f"{k} {v}" for k, v in machine().items()))
        print(f"command: {command.strip()}", flush=True)

    outcomes: list[Outcome] = []
    for name in names:
        if options.verbose:
            print(f"== {PREFIX}{name}", file=sys.stderr, flush=True)
        try:
            module = importlib.import_module(f"{__package__ or 'bench'}.{PREFIX}{name}")
        except Exception as e:
            outcomes.append(
                Outcome(name=name, title=name, error="".join(traceback.format_exception(e)))
            )
            continue
        outcome = _run_module(name, module, options, forwarded, capture=args.json)
        if options.verbose:
            print(f"== {PREFIX}{name}: {outcome.seconds:.1f} s", file=sys.stderr, flush=True)
        outcomes.append(outcome)

    missed = [
        f.name
        for o in outcomes
        for f in o.figures
        if f.target is not None and not f.target.aim and f.target.met(f) is False
    ]
    failed = [o.name for o in outcomes if o.error is not None]
    if args.json:
        document = {
            "started": started.isoformat(),
            "command": command.strip(),
            "mode": mode,
            "options": msgspec.to_builtins(options),
            "machine": machine(),
            "benchmarks": [
                {
                    "name": o.name,
                    "title": o.title,
                    "seconds": round(o.seconds, 3),
                    "figures": [f.to_json() for f in o.figures],
                    "output": o.output,
                    "error": o.error,
                }
                for o in outcomes
            ],
            "missed_targets": missed,
        }
        print(json.dumps(document, indent=2))
    else:
        sections = [(o.title, o.figures) for o in outcomes if o.figures]
        if sections:
            print()
            print(render_table(sections))
        for o in outcomes:
            if o.error is not None:
                print(f"\n{PREFIX}{o.name} failed:\n{o.error}", file=sys.stderr)
        total = sum(o.seconds for o in outcomes)
        verdict = f"missed targets: {', '.join(missed)}" if missed else "no target missed"
        if failed:
            verdict += f"; FAILED to run: {', '.join(failed)}"
        print(f"\n{len(outcomes)} benchmark(s) in {total:.0f} s; {verdict}")
    if failed:
        return 1
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    sys.exit(main())
