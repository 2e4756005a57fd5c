"""``payledger stats``: payments by outcome, and failed payments counted by root-cause
category, by channel (of the last failed attempt) and by scenario, in one pass over the log.

``--json`` prints ``{"payments", "succeeded", "failed", "pending", "by_category", "by_channel",
"by_scenario"}``.
"""

from __future__ import annotations

import argparse
from typing import Any

from ledger.store import EventStore

from ..batch import explain_payments
from ..render import progress_bar, render_stats
from ._common import add_command, console, err_console, open_db, print_json


def register(sub: Any) -> None:
    add_command(sub, "stats", "failed payments counted by category, channel and scenario", run)


async def collect(store: EventStore, progress: Any = None) -> dict[str, Any]:
    """The statistics document (see the module docstring)."""
    counts = {"payments": 0, "succeeded": 0, "failed": 0, "pending": 0}
    by_category: dict[str, int] = {}
    by_channel: dict[str, int] = {}
    by_scenario: dict[str, int] = {}
    async for exp in explain_payments(store, progress=progress):
        counts["payments"] += 1
        counts[exp.outcome] = counts.get(exp.outcome, 0) + 1
        if exp.outcome != "failed":
            continue
        category = exp.root_cause.category if exp.root_cause is not None else "unknown"
        failed = [a for a in exp.attempts if a.cause is not None]
        channel = failed[-1].channel if failed else "none"
        by_category[category] = by_category.get(category, 0) + 1
        by_channel[channel] = by_channel.get(channel, 0) + 1
        by_scenario[exp.scenario] = by_scenario.get(exp.scenario, 0) + 1
    return {
        **counts,
        "by_category": dict(sorted(by_category.items())),
        "by_channel": dict(sorted(by_channel.items())),
        "by_scenario": dict(sorted(by_scenario.items())),
    }


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
