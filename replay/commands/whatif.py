"""``payledger whatif PAYMENT_ID --channel C [--attempt N]``: replay a failed attempt against
the same historical state with another channel, check by check."""

from __future__ import annotations

import argparse
from typing import Any

from ..render import render_whatif
from ..whatif import whatif
from ._common import add_command, console, open_db, print_json


def register(sub: Any) -> None:
    parser = add_command(
        sub, "whatif", "would another channel have worked for a failed attempt?", run
    )
    parser.add_argument("payment_id", metavar="PAYMENT_ID")
    parser.add_argument("--channel", required=True, help="the channel to try instead")
    parser.add_argument(
        "--attempt", type=int, metavar="N", help="the attempt to replay (default: the last failed)"
    )


async def run(args: argparse.Namespace) -> int:
    async with open_db(args) as store:
        result = await whatif(store, args.payment_id, args.channel, attempt=args.attempt)
    if args.json:
        print_json(result)
    else:
        render_whatif(console, result)
    return 0
