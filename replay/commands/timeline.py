"""``payledger timeline --payment ID | --account ID``: the events that bear on a payment (its
stream, its account's, its channels' and its merchant's policy stream, up to the payment's last
event, plus every event its explanation cites) or on an account (its stream and its payments'),
interleaved in position order. Human output marks the evidence of the explanation."""

from __future__ import annotations

import argparse
from typing import Any

from ..documents import event_document
from ..render import render_timeline
from ..timeline import account_timeline, payment_timeline
from ._common import add_command, console, currencies_of, non_empty, open_db, print_json


def register(sub: Any) -> None:
    parser = add_command(
        sub, "timeline", "the events that bear on a payment or an account, in order", run
    )
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--payment", metavar="ID", type=non_empty, help="a payment id")
    which.add_argument("--account", metavar="ID", type=non_empty, help="an account id")


async def run(args: argparse.Namespace) -> int:
    async with open_db(args) as store:
        if args.payment is not None:
            records, evidence = await payment_timeline(store, args.payment)
            title = f"timeline of payment {args.payment}"
        else:
            records, evidence = await account_timeline(store, args.account)
            title = f"timeline of account {args.account}"
        currencies = None if args.json else await currencies_of(store, records)
    if args.json:
        for rec in records:
            print_json(event_document(rec, evidence=rec.position in evidence))
    else:
        render_timeline(console, records, evidence, title, currencies)
    return 0
