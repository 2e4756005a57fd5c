"""``payledger demo``: the car-loan incidents of :mod:`replay.cases`, each imported into a
store of its own in a temporary folder and explained, covering every root-cause category, a failover
that saved a payment and an unknown; ends with a summary and the stores' integrity.

Needs no arguments and no network. ``--json`` prints the explanations as JSON Lines.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

from rich.markup import escape

from ledger import open_store
from ledger.codec import read_lines

from .. import cases
from ..engine import explain
from ..explanation import Explanation
from ..render import CATEGORY_STYLE, plural, render_explanation
from ..terminal import heading
from ..timeline import records_at
from ._common import add_command, console, print_json


def register(sub: Any) -> None:
    add_command(sub, "demo", "explain the bundled car-loan payment incidents (no arguments)", run)


async def run(args: argparse.Namespace) -> int:
    explained: list[Explanation] = []
    events = 0
    stores = 0
    bad: list[str] = []
    with tempfile.TemporaryDirectory(prefix="payledger-demo-") as tmp:
        for entry in cases.index():
            name = str(entry["name"])
            path = Path(tmp) / f"{name}.db"
            async with open_store(path, durability="normal") as store:
                with cases.incident_path(name).open("rb") as handle:
                    await store.import_events(read_lines(handle, source=f"{name}.jsonl"))
                if not args.json:
                    heading(console, f"{entry.get('title', name)}  ({name})")
                for payment_id in entry["payments"]:
                    exp = await explain(store, str(payment_id))
                    explained.append(exp)
                    if args.json:
                        print_json(exp)
                        continue
                    cited: set[int] = set()
                    if exp.root_cause is not None:
                        cited.update(exp.root_cause.evidence)
                    for a in exp.attempts:
                        if a.cause is not None:
                            cited.update(a.cause.evidence)
                    render_explanation(console, exp, await records_at(store, cited))
                report = await store.verify()
                stores += 1
                events += report.checked
                if not report.ok:
                    bad.append(f"{name}: first bad position {report.first_bad_position}")
    if not args.json:
        categories: dict[str, int] = {}
        saved = 0
        for exp in explained:
            if exp.root_cause is not None:
                categories[exp.root_cause.category] = categories.get(exp.root_cause.category, 0) + 1
            elif exp.outcome == "succeeded" and any(a.cause for a in exp.attempts):
                saved += 1
        shown = ", ".join(
            f"[{CATEGORY_STYLE.get(c, 'white')}]{c}[/] {n}"
            for c, n in sorted(categories.items(), key=lambda kv: kv[0])
        )
        heading(console)
        console.print(
            f"[bold]{plural(len(explained), 'payment')} explained[/bold] in "
            f"{plural(stores, 'incident')}: {shown}; {saved} saved by failover"
        )
        if bad:
            console.print(f"[red]ALTERED[/red]: {escape('; '.join(bad))}")
        else:
            console.print(
                f"[green]ok[/green]: {plural(events, 'event')} in {plural(stores, 'store')}, "
                "positions gap-free, hash chains intact"
            )
    return 0 if not bad else 1
