"""``payledger audit [--stream S] [--type T] [--since TS] [--until TS] [--correlation ID]``: the
events matching every filter, in position order (JSON Lines with ``--json``).

Every value goes to SQL as a bound parameter: quotes, ``%``, NUL or a 10 kB string are data.
"""

from __future__ import annotations

import argparse
from typing import Any

from ledger.store import Record

from ..render import parse_timestamp, record_doc, render_audit
from ._common import add_command, console, open_db, print_json


def register(sub: Any) -> None:
    parser = add_command(sub, "audit", "the events matching every filter, in position order", run)
    parser.add_argument("--stream", metavar="S", help="one stream, e.g. account-A1")
    parser.add_argument(
        "--type", metavar="T", action="append", dest="types", help="an event type (repeatable)"
    )
    parser.add_argument("--since", metavar="TS", help="occurred at or after (RFC 3339)")
    parser.add_argument("--until", metavar="TS", help="occurred at or before (RFC 3339)")
    parser.add_argument("--correlation", metavar="ID", help="a correlation id")
    parser.add_argument("--limit", metavar="N", type=int, help="at most N events")


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
                print_json(record_doc(rec))
            else:
                found.append(rec)
        aclose = getattr(records, "aclose", None)
        if aclose is not None:
            await aclose()
    if not args.json:
        render_audit(console, found)
    return 0
