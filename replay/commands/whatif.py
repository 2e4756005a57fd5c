"""``payledger whatif PAYMENT_ID --channel C [--attempt N]``: replay a failed attempt against
the same historical state with another channel, check by check.

The channel must be one a payment can use: a channel of the router's default configuration, or
one the log knows (it has a ``channel-<name>`` stream, or the payment's routing decisions name
it). An unknown name would pass every check and say nothing.
"""

from __future__ import annotations

import argparse
from typing import Any

from gateway import RoutingConfig
from ledger.errors import LedgerError
from ledger.events import ChannelDecided, PaymentAttempted
from ledger.store import EventStore

from ..render import render_whatif
from ..what_if import whatif
from ._common import add_command, at_least, console, non_empty, open_db, print_json


def register(sub: Any) -> None:
    parser = add_command(
        sub, "whatif", "would another channel have worked for a failed attempt?", run
    )
    parser.add_argument(
        "payment_id", metavar="PAYMENT_ID", type=non_empty, help="the failed payment"
    )
    parser.add_argument(
        "--channel",
        required=True,
        type=non_empty,
        help="the channel to try instead, e.g. bank_card",
    )
    parser.add_argument(
        "--attempt",
        type=at_least(1),
        metavar="N",
        help="the attempt to replay (default: the last failed one)",
    )


async def known_channels(store: EventStore, payment_id: str) -> set[str]:
    """The channels a payment could have used: the router's defaults, the channels of the
    payment's own decisions and attempts."""
    known = set(RoutingConfig().channels)
    async for rec in store.read_stream(f"payment-{payment_id}"):
        event = rec.event
        if isinstance(event, ChannelDecided):
            known.update(c.channel for c in event.candidates)
        elif isinstance(event, PaymentAttempted):
            known.add(event.channel)
    return known


async def run(args: argparse.Namespace) -> int:
    async with open_db(args) as store:
        channel = args.channel
        if channel not in await known_channels(store, args.payment_id) and not (
            await store.stream_version(f"channel-{channel}")
        ):
            shown = channel if len(channel) <= 60 else channel[:57] + "..."
            raise LedgerError(
                f"--channel: no channel {shown!r}: neither a default channel "
                f"({', '.join(RoutingConfig().channels)}) nor one the log knows"
            )
        result = await whatif(store, args.payment_id, channel, attempt=args.attempt)
    if args.json:
        print_json(result)
    else:
        render_whatif(console, result)
    return 0
