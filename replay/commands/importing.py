"""``payledger --db P import FILE``: append every event of a JSON Lines file, atomically."""

from __future__ import annotations

import argparse
import sys
from typing import Any, BinaryIO

import anyio

from ledger.codec import read_lines
from ledger.errors import FormatError, LedgerError
from ledger.postgres import is_postgres_url
from projections import Projector

from ..render import plural
from ._common import add_command, console, open_db, print_json, require_db


def register(sub: Any) -> None:
    parser = add_command(
        sub, "import", "append every event of a JSON Lines file atomically ('-': stdin)", run
    )
    parser.add_argument(
        "file",
        metavar="FILE",
        help="a JSON Lines file of events ('-': standard input); lines without an event_id get "
        "ids derived from the line, so importing the same file again adds nothing",
    )
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
    target = require_db(args)
    db = anyio.Path(target)
    is_file = not is_postgres_url(target) and target != ":memory:"
    existed = is_file and await db.exists()
    imported = False
    try:
        async with open_db(args, readonly=False) as store:
            result = await store.import_events(read_lines(handle, source, derive_ids=True))
            imported = True
            if not args.no_project:
                # Bring the read models up to date (the store's derived state, on every backend).
                async with Projector.open(store) as projector:
                    await projector.catch_up()
    except LedgerError:
        if is_file and not existed and not imported:
            # The import created this file and appended nothing: leave no empty store behind.
            for suffix in ("", "-wal", "-shm"):
                await anyio.Path(f"{db}{suffix}").unlink(missing_ok=True)
        raise
    finally:
        if handle is not sys.stdin.buffer:
            handle.close()
    if args.json:
        print_json(result)
    else:
        console.print(
            f"imported {plural(result.appended, 'event')}"
            + (
                f" (positions {result.first_position}-{result.last_position})"
                if result.appended
                else ""
            )
            + (f", skipped {result.skipped} already stored" if result.skipped else "")
        )
    return 0
