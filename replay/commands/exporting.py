"""``payledger --db P export [FILE]``: every event in position order, as JSON Lines."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ledger.codec import encode_record

from ._common import add_command, open_db


def register(sub: Any) -> None:
    parser = add_command(sub, "export", "write every event in position order as JSON Lines", run)
    parser.add_argument("file", metavar="FILE", nargs="?", help="default: standard output")


async def run(args: argparse.Namespace) -> int:
    async with open_db(args) as store:
        if args.file in (None, "-"):
            out = sys.stdout.buffer
            async for record in store.read_all():
                out.write(encode_record(record))
            out.flush()
        else:
            tmp = args.file + ".partial"
            with open(tmp, "wb") as handle:  # noqa: ASYNC230 - a local file, written in pages
                async for record in store.read_all():
                    handle.write(encode_record(record))
            import os

            os.replace(tmp, args.file)
    return 0
