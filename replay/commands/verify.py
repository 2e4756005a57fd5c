"""``payledger --db P verify``: check the hash chain and the gapless positions."""

from __future__ import annotations

import argparse
from typing import Any

from rich.markup import escape

from ..render import plural
from ._common import add_command, console, open_db, print_json


def register(sub: Any) -> None:
    add_command(sub, "verify", "check the store's integrity (hash chain, gapless positions)", run)


async def run(args: argparse.Namespace) -> int:
    async with open_db(args) as store:
        report = await store.verify()
    if args.json:
        print_json(report)
    elif report.ok:
        positions = f"positions 1-{report.head_position}" if report.head_position else "no events"
        console.print(
            f"[green]ok[/green]: {plural(report.checked, 'event')}, {positions} gap-free, "
            f"hash chain intact\nhead {report.head_hash}"
        )
    else:
        console.print(
            f"[red]ALTERED[/red]: first bad position {report.first_bad_position}: "
            f"{escape(report.reason or 'unknown reason')} "
            f"({plural(report.checked, 'event')} checked before it)"
        )
    return 0 if report.ok else 1
