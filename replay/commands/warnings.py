"""``payledger --db P warnings [--since T] [--json] [--follow]``: the early warnings of the log
(:mod:`gateway.warnings`): credit deteriorations of accounts with pending or recent car-loan
payments, and channels turning degraded, down or maintenance or failing more often.

``--json`` prints JSON Lines, one warning a line: ``{"kind", "severity", "subject", "summary",
"position", "occurred_at", "payments"}``. ``--follow`` keeps watching for new events until
interrupted.
"""

from __future__ import annotations

import argparse
from typing import Any

from rich.markup import escape

from gateway.warnings import Warning, warnings

from ..terminal import parse_timestamp
from ._common import add_command, console, open_db, print_json

_STYLE = {"critical": "bold red", "warning": "yellow", "info": "cyan"}


def register(sub: Any) -> None:
    parser = add_command(
        sub,
        "warnings",
        "early warnings: credit deteriorations around car-loan payments, channel trouble",
        run,
    )
    parser.add_argument(
        "--since",
        metavar="T",
        help="only warnings raised by events that occurred at or after T (RFC 3339 with a "
        "zone, e.g. 2026-03-01T09:00:00Z, or a date: its midnight UTC)",
    )
    parser.add_argument(
        "--follow", action="store_true", help="keep watching for new events until interrupted"
    )


def _line(w: Warning) -> str:
    style = _STYLE.get(w.severity, "")
    when = w.occurred_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    return (
        f"{when} [{style}]{w.severity:<8}[/{style}] {w.kind:<21} {escape(w.subject):<20} "
        f"{escape(w.summary)} [dim](position {w.position})[/dim]"
    )


async def run(args: argparse.Namespace) -> int:
    since = None if args.since is None else parse_timestamp(args.since, "--since")
    count = 0
    async with open_db(args) as store:
        stream = warnings(store, since=since, follow=args.follow)
        try:
            async for warning in stream:
                count += 1
                if args.json:
                    print_json(warning)
                else:
                    console.print(_line(warning), soft_wrap=True)
        finally:
            await stream.aclose()  # type: ignore[attr-defined]
    if not args.json and count == 0:
        console.print("no warnings")
    return 0
