"""``payledger --db P export [FILE]``: every event in position order, as JSON Lines.

FILE goes through :mod:`replay.output`: checked before the store is opened (never the store
itself, another payledger store or a directory), written through a temporary file renamed over
it at the end (a regular file) or directly (``-``, a pipe, a device).
"""

from __future__ import annotations

import argparse
from typing import Any

from ledger.codec import encode_record

from ..output import check_output, open_output
from ._common import add_command, open_db, require_db


def register(sub: Any) -> None:
    parser = add_command(sub, "export", "write every event in position order as JSON Lines", run)
    parser.add_argument(
        "file",
        metavar="FILE",
        nargs="?",
        default="-",
        help="where to write: a new or existing file, a pipe or a device ('-' or none: stdout)",
    )


async def run(args: argparse.Namespace) -> int:
    target = check_output(args.file, option="export", db=require_db(args))
    async with open_db(args) as store:
        with open_output(target) as out:
            async for record in store.read_all():
                out.write(encode_record(record))
    return 0
