"""The ``payledger`` command line (CONTRACT section 4).

Each command is a module of :mod:`replay.commands` with a ``register(subparsers)`` function that
adds its parser and sets ``handler`` to an ``async (args) -> int``; they are found by name, so a
new command is a new module. Global options (``--db``, ``--json``) go before or after the
command. Exit codes: 0 success, 1 a finding (verify failed, payment not found), 2 bad usage or
bad input. A :class:`ledger.LedgerError` is printed as one line, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
from collections.abc import Sequence

import anyio

from ledger.errors import IntegrityError, LedgerError, NotFoundError

from . import commands

__all__ = ["build_parser", "main"]

EXIT_OK = 0
EXIT_FINDING = 1
EXIT_USAGE = 2


def _global_options(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    default_db = argparse.SUPPRESS if suppress else os.environ.get("PAYLEDGER_DB")
    default_json = argparse.SUPPRESS if suppress else False
    parser.add_argument(
        "--db",
        metavar="PATH",
        default=default_db,
        help="the store file (default: $PAYLEDGER_DB)",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        default=default_json,
        help="machine-readable output: one JSON document, or JSON Lines for listings",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="payledger",
        description="An event-sourced payment ledger that explains why a payment failed.",
    )
    _global_options(parser, suppress=False)
    common = argparse.ArgumentParser(add_help=False)
    _global_options(common, suppress=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    sub.common = common  # type: ignore[attr-defined]  # commands pass it as a parent
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``payledger``; returns (and, as a console script, exits with) the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = anyio.run(args.handler, args)
    except BrokenPipeError:  # `payledger export | head`
        return EXIT_OK
    except (NotFoundError, IntegrityError) as e:
        print(f"payledger: {e}", file=sys.stderr)
        return EXIT_FINDING
    except LedgerError as e:
        print(f"payledger: {e}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as e:  # a file the user named: unreadable, unwritable, missing directory
        print(f"payledger: {e.filename or ''}: {e.strerror or e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("payledger: interrupted", file=sys.stderr)
        return 130
    return code


def run() -> None:
    sys.exit(main())
