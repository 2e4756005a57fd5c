"""``payledger stats``: payments by outcome, and failed payments counted by root-cause
category, by channel (of the last failed attempt) and by scenario, in one pass over the log.

``--json`` prints the document of :mod:`replay.stats`: ``{"payments", "succeeded", "failed",
"pending", "by_category", "by_channel", "by_scenario", ...}``.
"""

from __future__ import annotations

import argparse
from typing import Any

from ..render import render_stats
from ..stats import stats as collect
from ..terminal import progress_bar
from ._common import add_command, console, err_console, open_db, print_json


def register(sub: Any) -> None:
    add_command(sub, "stats", "failed payments counted by category, channel and scenario", run)


async def run(args: argparse.Namespace) -> int:
    async with open_db(args) as store:
        head = await store.head()
        with progress_bar(err_console, head, "counting payments") as tick:
            stats = await collect(store, tick)
    if args.json:
        print_json(stats)
    else:
        render_stats(console, stats)
    return 0
