"""What the command modules share: the store option, JSON output, the console."""

from __future__ import annotations

import argparse
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import msgspec
from rich.console import Console

from ledger import EventStore, open_store
from ledger.errors import StoreError

__all__ = ["add_command", "console", "err_console", "open_db", "print_json"]

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)
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
