"""What the command modules share: the store option, JSON output, the consoles, and the checks
of option values that argparse runs before a command reads or writes anything (a bad value is
exit 2 and one line naming the option)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from typing import Any

import msgspec

from ledger import EventStore, open_store
from ledger.errors import StoreError
from ledger.events import CATALOGUE
from ledger.store import Record

from ..render import Currencies
from ..terminal import OutputConsole

__all__ = [
    "add_command",
    "at_least",
    "console",
    "currencies_of",
    "err_console",
    "event_type",
    "non_empty",
    "open_db",
    "print_json",
    "require_db",
]

# As wide as the terminal on a terminal, unbounded elsewhere: piped output is never wrapped or cut.
console = OutputConsole(highlight=False)
err_console = OutputConsole(stderr=True, highlight=False)
_JSON = msgspec.json.Encoder()


def add_command(sub: Any, name: str, help: str, handler: Any) -> argparse.ArgumentParser:
    """Add a command that accepts the global options after its name too."""
    parser: argparse.ArgumentParser = sub.add_parser(
        name, help=help, description=help, parents=[sub.common]
    )
    parser.set_defaults(handler=handler)
    return parser


def require_db(args: argparse.Namespace) -> str:
    if not args.db:
        raise StoreError("no store given: pass --db PATH (or set PAYLEDGER_DB)")
    return str(args.db)


@asynccontextmanager
async def open_db(args: argparse.Namespace, *, readonly: bool = True) -> AsyncIterator[EventStore]:
    """The store named by ``--db``; reading commands open it read-only."""
    async with open_store(require_db(args), readonly=readonly) as store:
        yield store


def print_json(doc: Any) -> None:
    """One JSON document (or one JSON Lines line) on stdout."""
    sys.stdout.buffer.write(_JSON.encode(doc) + b"\n")
    sys.stdout.flush()


# --- option values -------------------------------------------------------------------------


def _shown(text: str) -> str:
    return repr(text if len(text) <= 60 else text[:57] + "...")


def non_empty(text: str) -> str:
    """An id or a name: anything but the empty string."""
    if not text:
        raise argparse.ArgumentTypeError("must not be empty")
    return text


def at_least(minimum: int) -> Callable[[str], int]:
    """A whole number no smaller than ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{_shown(text)} is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum} (got {value})")
        return value

    return parse


def event_type(text: str) -> str:
    """An event type of the catalogue (``ledger.events.CATALOGUE``)."""
    if text not in CATALOGUE:
        raise argparse.ArgumentTypeError(
            f"{_shown(text)} is not an event type (one of {', '.join(sorted(CATALOGUE))})"
        )
    return text


# --- money in listings ---------------------------------------------------------------------


async def currencies_of(store: EventStore, records: Iterable[Record]) -> Currencies:
    """The currencies of the amounts of ``records``: learnt from the records, and for the
    others from their payment's stream or their account's (a few short reads)."""
    known = Currencies()
    records = list(records)
    for rec in records:
        known.learn(rec.event)
    wanted = {s for rec in records if (s := known.source(rec.event)) is not None}
    for stream in sorted(wanted):
        async for rec in store.read_stream(stream):
            known.learn(rec.event)
    return known
