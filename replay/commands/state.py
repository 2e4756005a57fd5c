"""``payledger --db P state --account ID [--at POSITION] [--as-of TIMESTAMP]``: an account's
projected state then (CONTRACT section 4): credit status, limit, used, held, available, score,
overdue."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any

from rich.table import Table

from ledger.errors import NotFoundError
from projections import AccountState, account_at

from ._common import add_command, console, open_db, print_json

__all__ = ["register", "run", "state_document"]


def _position(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a position (an integer >= 0)") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a position (an integer >= 0)")
    return value


def _timestamp(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an RFC 3339 timestamp (e.g. 2026-03-01T09:00:00Z)"
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def register(sub: Any) -> None:
    parser = add_command(sub, "state", "an account's projected state at a position or time", run)
    parser.add_argument("--account", metavar="ID", required=True, help="the account id")
    parser.add_argument(
        "--at", metavar="POSITION", type=_position, help="the last global position to include"
    )
    parser.add_argument(
        "--as-of",
        metavar="TIMESTAMP",
        type=_timestamp,
        help="include the events that occurred at or before this RFC 3339 time",
    )


def state_document(state: AccountState) -> dict[str, Any]:
    """The ``state --json`` document of CONTRACT section 4."""
    return {
        "account_id": state.account_id,
        "position": state.position,
        "score": state.score,
        "credit": {
            product: {
                "status": line.status,
                "limit_minor": line.limit_minor,
                "used_minor": line.used_minor,
                "held_minor": line.held_minor,
                "available_minor": line.available_minor,
                "overdue_minor": line.overdue_minor,
            }
            for product, line in sorted(state.credit.items())
        },
    }


def _minor(amount: int) -> str:
    sign = "-" if amount < 0 else ""
    whole, fen = divmod(abs(amount), 100)
    return f"{sign}{whole:,}.{fen:02d}"


async def run(args: argparse.Namespace) -> int:
    async with open_db(args) as store:
        state = await account_at(store, args.account, position=args.at, as_of=args.as_of)
    if state is None:
        when = ""
        if args.at is not None:
            when = f" at position {args.at}"
        if args.as_of is not None:
            when += f" as of {args.as_of.isoformat().replace('+00:00', 'Z')}"
        raise NotFoundError(f"account {args.account!r}: no events{when}")
    if args.json:
        print_json(state_document(state))
        return 0
    score = "-" if state.score is None else str(state.score)
    console.print(
        f"account [bold]{state.account_id}[/bold] at position {state.position}: score {score}"
        + (f" (set at position {state.score_position})" if state.score_position else "")
    )
    if not state.credit:
        console.print("no credit lines")
        return 0
    table = Table(show_header=True, header_style="bold")
    for column in ("product", "status", "limit", "used", "held", "available", "overdue"):
        table.add_column(column, justify="left" if column in ("product", "status") else "right")
    for product, line in sorted(state.credit.items()):
        status = line.status if line.status == "active" else f"[red]{line.status}[/red]"
        if line.status_position is not None:
            status += f" (@{line.status_position})"
        table.add_row(
            product,
            status,
            f"{_minor(line.limit_minor)} {line.currency}",
            _minor(line.used_minor),
            _minor(line.held_minor),
            _minor(line.available_minor),
            _minor(line.overdue_minor),
        )
    console.print(table)
    return 0
