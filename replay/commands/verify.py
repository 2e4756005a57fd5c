"""``payledger --db P verify``: check the hash chain and the gapless positions."""

from __future__ import annotations

import argparse
from typing import Any

from ._common import add_command, console, open_db, print_json


def register(sub: Any) -> None:
    add_command(sub, "verify", "check the store's integrity (hash chain, gapless positions)", run)


async def run(args: argparse.Namespace) -> int:
    async with open_db(args) as store:
        report = await store.verify()
    if args.json:
        print_json(report)
    elif report.ok:
        console.print(
            f"[green]ok[/green]: {report.checked} events, positions 1-{report.head_position} "
            f"gap-free, hash chain intact\nhead {report.head_hash}"
        )
    else:
        console.print(
            f"[red]ALTERED[/red]: first bad position {report.first_bad_position}: "
            f"{report.reason} ({report.checked} events checked before it)"
        )
    return 0 if report.ok else 1
