"""``payledger audit [--stream S] [--type T] [--since TS] [--until TS] [--correlation ID]
[--limit N]``: the events matching every filter, in position order (JSON Lines with
``--json``).

Every value goes to SQL as a bound parameter: quotes, ``%``, NUL or a 10 kB string are data.
Values are checked before the store is opened: ``--type`` is a catalogue type, the timestamps
carry a zone (a date alone is its midnight UTC), ``--limit`` is at least 1 (an audit that can
print nothing is a mistake, and "0 events" would read as "nothing matched"), and no filter is
empty.
"""

from __future__ import annotations

import argparse
from typing import Any

from ledger.store import Record

from ..documents import event_document
from ..render import render_audit
from ..terminal import parse_timestamp
from ._common import (
    add_command,
    at_least,
    console,
    currencies_of,
    event_type,
    non_empty,
    open_db,
    print_json,
)


def register(sub: Any) -> None:
    parser = add_command(sub, "audit", "the events matching every filter, in position order", run)
    parser.add_argument("--stream", metavar="S", type=non_empty, help="one stream, e.g. account-A1")
    parser.add_argument(
        "--type",
        metavar="T",
        action="append",
        dest="types",
        type=event_type,
        help="an event type of the catalogue, e.g. PaymentDeclined (repeatable: any of them)",
    )
    parser.add_argument(
        "--since",
        metavar="TS",
        help="occurred at or after TS: RFC 3339 with a zone (2026-03-01T09:00:00Z) or a date "
        "(its midnight UTC)",
    )
    parser.add_argument(
        "--until", metavar="TS", help="occurred at or before TS (same forms as --since)"
    )
    parser.add_argument("--correlation", metavar="ID", type=non_empty, help="a correlation id")
    parser.add_argument("--limit", metavar="N", type=at_least(1), help="at most N events (N >= 1)")


async def run(args: argparse.Namespace) -> int:
    since = None if args.since is None else parse_timestamp(args.since, "--since")
    until = None if args.until is None else parse_timestamp(args.until, "--until")
    async with open_db(args) as store:
        records = store.query(
            stream=args.stream,
            types=args.types,
            since=since,
            until=until,
            correlation_id=args.correlation,
        )
        found: list[Record] = []
        count = 0
        async for rec in records:
            if args.limit is not None and count >= args.limit:
                break
            count += 1
            if args.json:
                print_json(event_document(rec))
            else:
                found.append(rec)
        aclose = getattr(records, "aclose", None)
        if aclose is not None:
            await aclose()
        if not args.json:
            currencies = await currencies_of(store, found)
    if not args.json:
        render_audit(console, found, currencies)
    return 0
