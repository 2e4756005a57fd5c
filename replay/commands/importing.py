"""``payledger --db P import FILE``: append every event of a JSON Lines file, atomically."""

from __future__ import annotations

import argparse
import sys
from typing import Any, BinaryIO

from ledger import SQLiteEventStore
from ledger.codec import read_lines
from ledger.errors import FormatError
from projections import Projector

from ._common import add_command, console, open_db, print_json


def register(sub: Any) -> None:
    parser = add_command(
        sub, "import", "append every event of a JSON Lines file atomically ('-': stdin)", run
    )
    parser.add_argument("file", metavar="FILE")
    parser.add_argument(
        "--no-project",
        action="store_true",
        help="append only; leave the projection tables to a later `rebuild` or catch-up",
    )


async def run(args: argparse.Namespace) -> int:
    source = "<stdin>" if args.file == "-" else args.file
    # Open the input before the store, so that a missing file leaves no new store behind.
    if args.file == "-":
        handle: BinaryIO = sys.stdin.buffer
    else:
        try:
            handle = open(args.file, "rb")  # noqa: SIM115, ASYNC230 - streamed in the import
        except OSError as e:
            raise FormatError(0, f"cannot read the file: {e.strerror}", source=source) from e
    try:
        async with open_db(args, readonly=False) as store:
            result = await store.import_events(read_lines(handle, source))
            if not args.no_project and isinstance(store, SQLiteEventStore):
                # Bring the read models up to date so `state` and `explain` read them, not the log.
                async with Projector.open(store) as projector:
                    await projector.catch_up()
    finally:
        if handle is not sys.stdin.buffer:
            handle.close()
    if args.json:
        print_json(result)
    else:
        console.print(
            f"imported {result.appended} events"
            + (
                f" (positions {result.first_position}-{result.last_position})"
                if result.appended
                else ""
            )
            + (f", skipped {result.skipped} already stored" if result.skipped else "")
        )
    return 0
