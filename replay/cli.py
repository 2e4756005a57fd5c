"""The ``payledger`` command line (CONTRACT section 4).

Each command is a module of :mod:`replay.commands` with a ``register(subparsers)`` function that
adds its parser and sets ``handler`` to an ``async (args) -> int``; they are found by name, so a
new command is a new module. Global options (``--db``, ``--json``) go before or after the
command. Exit codes: 0 success, 1 a finding (verify failed, payment not found), 2 bad usage or
bad input, 130 interrupted (Ctrl-C).

Every error is one line on stderr, ``payledger: ...``, never a traceback: a usage error, a
:class:`ledger.LedgerError`, an ``OSError`` (a file the user named) and an interrupt. The
console script starts in :mod:`payledger_entry`, which handles Ctrl-C before this module (and
everything it imports) loads.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import pkgutil
import signal
import sys
from collections.abc import Sequence
from types import FrameType
from typing import Any, NoReturn

import anyio

from ledger.errors import IntegrityError, LedgerError, NotFoundError

from . import commands

EXIT_OK = 0
EXIT_FINDING = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

__all__ = ["EXIT_FINDING", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_USAGE", "build_parser", "main"]


def _one_line(text: str) -> str:
    """``text`` on one line: line breaks and other control characters become spaces."""
    return " ".join("".join(c if c.isprintable() else " " for c in text).split())


def _say(message: str) -> None:
    """Print ``payledger: message`` on stderr, as one line."""
    with contextlib.suppress(OSError, ValueError):  # no stderr: the exit code still tells
        print(f"payledger: {_one_line(message)}", file=sys.stderr, flush=True)


class _Parser(argparse.ArgumentParser):
    """argparse, with its usage errors on one line (and ``--help`` to learn more)."""

    def error(self, message: str) -> NoReturn:
        command = self.prog.removeprefix("payledger").strip()
        where = f"{command}: " if command else ""
        _say(f"{where}{message} (see `{self.prog} --help`)")
        raise SystemExit(EXIT_USAGE)


def _global_options(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    default_db = argparse.SUPPRESS if suppress else os.environ.get("PAYLEDGER_DB")
    default_json = argparse.SUPPRESS if suppress else False
    parser.add_argument(
        "--db",
        metavar="PATH",
        default=default_db,
        help="the store: a file path (SQLite) or a PostgreSQL URL "
        "(postgresql://user@host:5432/dbname); every command works on both "
        "(default: $PAYLEDGER_DB)",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        default=default_json,
        help="machine-readable output: one JSON document, or JSON Lines for listings",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="payledger",
        description="An event-sourced payment ledger that explains why a payment failed.",
    )
    _global_options(parser, suppress=False)
    common = _Parser(add_help=False)
    _global_options(common, suppress=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    sub.common = common  # type: ignore[attr-defined]  # commands pass it as a parent
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        module.register(sub)
    return parser


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    found: list[BaseException] = []
    for e in group.exceptions:
        found.extend(_leaves(e) if isinstance(e, BaseExceptionGroup) else [e])
    return found


def _os_error(e: OSError) -> str:
    what = e.strerror or str(e) or type(e).__name__
    names = [str(n) for n in (e.filename, e.filename2) if n is not None]
    return f"{' -> '.join(names)}: {what}" if names else what


def _report(e: BaseException) -> int | None:
    """Print the one line an error deserves and return the exit code (None: not ours)."""
    if isinstance(e, BaseExceptionGroup):  # a task group's failure: report its first error
        for leaf in _leaves(e):
            code = _report(leaf)
            if code is not None:
                return code
        return None
    if isinstance(e, KeyboardInterrupt):
        _say("interrupted")
        return EXIT_INTERRUPTED
    if isinstance(e, BrokenPipeError):  # `payledger export | head`: the reader has enough
        _silence_stdout()
        return EXIT_OK
    if isinstance(e, NotFoundError | IntegrityError):
        _say(str(e))
        return EXIT_FINDING
    if isinstance(e, LedgerError):
        _say(str(e) or type(e).__name__)
        return EXIT_USAGE
    if isinstance(e, OSError):  # a file the user named: unreadable, unwritable, missing
        _say(_os_error(e))
        return EXIT_USAGE
    return None


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so that the interpreter's last flush meets no closed pipe."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def _ignore_late_interrupt(signum: int, frame: FrameType | None) -> None:
    """Ctrl-C once the command has finished: its work is done and said, so the event loop's
    teardown (the threads it joins, the loop it closes) runs to its end instead of breaking
    off with a ``KeyboardInterrupt`` and an unclosed loop's traceback at exit."""


async def _command(args: argparse.Namespace) -> int:
    code: int = await args.handler(args)
    with contextlib.suppress(ValueError):  # not the main thread: the host handles signals
        signal.signal(signal.SIGINT, _ignore_late_interrupt)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``payledger``; returns (and, as a console script, exits with) the exit code."""
    previous: Any = signal.getsignal(signal.SIGINT)
    try:
        args = build_parser().parse_args(argv)
        code: int = anyio.run(_command, args)
        sys.stdout.flush()
    except SystemExit:
        raise
    except BaseException as e:
        reported = _report(e)
        if reported is None:
            raise
        return reported
    finally:
        if signal.getsignal(signal.SIGINT) is _ignore_late_interrupt:
            with contextlib.suppress(ValueError):
                signal.signal(signal.SIGINT, previous)
    return code


def run() -> None:
    """Run ``payledger`` with ``sys.argv`` and exit with its exit code (``python -m replay``;
    the console script goes through :func:`payledger_entry.run`)."""
    sys.exit(main())
