"""``payledger --db P rebuild``: rebuild every projection from position 1, with a progress bar,
then print the count and events/s. The only reading command that writes: projection tables,
never events (the store itself is opened read-only)."""

from __future__ import annotations

import argparse
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from projections import Projector

from ..render import plural
from ._common import add_command, console, err_console, open_db, print_json

__all__ = ["register", "run"]


def register(sub: Any) -> None:
    add_command(sub, "rebuild", "rebuild every projection from the first event", run)


async def run(args: argparse.Namespace) -> int:
    async with open_db(args, readonly=False) as store, Projector.open(store) as projector:
        if args.json:
            result = await projector.rebuild()
        else:
            with Progress(
                TextColumn("rebuilding projections"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=err_console,
                transient=True,
            ) as bar:
                task = bar.add_task("rebuild", total=None)

                def progress(done: int, total: int) -> None:
                    bar.update(task, completed=done, total=total)

                result = await projector.rebuild(progress)
    if args.json:
        print_json(
            {
                "events": result.events,
                "position": result.position,
                "seconds": round(result.seconds, 6),
                "events_per_second": round(result.events_per_second, 1),
            }
        )
    else:
        console.print(
            f"rebuilt every projection from {plural(result.events, 'event')} "
            f"in {result.seconds:.2f} s ({result.events_per_second:,.0f} events/s)"
        )
    return 0
