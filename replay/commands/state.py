"""``payledger --db P state --account ID [--at POSITION] [--as-of TIMESTAMP]``: an account's
projected state then (CONTRACT section 4): credit status, limit, used, held, available, score,
overdue."""

from __future__ import annotations

import argparse
from typing import Any

from rich.markup import escape
from rich.table import Table

from ledger.errors import NotFoundError
from projections import account_at

from ..documents import state_document
from ..render import money
from ..terminal import parse_timestamp
from ._common import add_command, console, non_empty, open_db, print_json

__all__ = ["register", "run"]


def _position(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a position (an integer >= 0)") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a position (an integer >= 0)")
    return value


def register(sub: Any) -> None:
    parser = add_command(sub, "state", "an account's projected state at a position or time", run)
    parser.add_argument(
        "--account", metavar="ID", required=True, type=non_empty, help="the account id"
    )
    parser.add_argument(
        "--at", metavar="POSITION", type=_position, help="the last global position to include"
    )
    parser.add_argument(
        "--as-of",
        metavar="TIMESTAMP",
        help="include the events that occurred at or before this moment (RFC 3339 with a zone, "
        "e.g. 2026-03-01T09:00:00Z, or a date: its midnight UTC)",
    )


async def run(args: argparse.Namespace) -> int:
    as_of = None if args.as_of is None else parse_timestamp(args.as_of, "--as-of")
    async with open_db(args) as store:
        state = await account_at(store, args.account, position=args.at, as_of=as_of)
    if state is None:
        when = ""
        if args.at is not None:
            when = f" at position {args.at}"
        if as_of is not None:
            when += f" as of {as_of.isoformat().replace('+00:00', 'Z')}"
        raise NotFoundError(f"account {args.account!r}: no events{when}")
    if args.json:
        print_json(state_document(state))
        return 0
    score = "-" if state.score is None else str(state.score)
    console.print(
        f"account [bold]{escape(state.account_id)}[/bold] at position {state.position}: "
        f"score {score}"
        + (f" (set at position {state.score_position})" if state.score_position else "")
    )
    if not state.credit:
        console.print("no credit lines")
        return 0
    table = Table(show_header=True, header_style="bold")
    for column in ("product", "status", "limit", "used", "held", "available", "overdue"):
        table.add_column(
            column,
            justify="left" if column in ("product", "status") else "right",
            overflow="fold",
        )
    for product, line in sorted(state.credit.items()):
        status = escape(line.status) if line.status == "active" else f"[red]{line.status}[/red]"
        if line.status_position is not None:
            status += f" (@{line.status_position})"
        table.add_row(
            escape(product),
            status,
            money(line.limit_minor, line.currency),
            money(line.used_minor, line.currency),
            money(line.held_minor, line.currency),
            money(line.available_minor, line.currency),
            money(line.overdue_minor, line.currency),
        )
    console.print(table)
    return 0
