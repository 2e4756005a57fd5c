"""The README's pictures of ``payledger report``: builds the demo's ``multiple_blockers`` store
(``replay/cases``) and a simulated fleet (``payledger simulate --payments 3000``), renders the
payment's report and the fleet's, and takes a PNG of each with headless Chromium into
``docs/``. Run it from the repository: ``.venv/bin/python scripts/screenshots.py``."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from chromium import screenshot

from replay import cases
from replay.cli import main

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAYMENT = "P-20260308-0019"


def _payledger(*argv: str) -> None:
    code = main(list(argv))
    if code != 0:
        raise SystemExit(f"payledger {' '.join(argv)}: exit {code}")


def build() -> list[Path]:
    """Make both pictures; returns their paths."""
    made = []
    with tempfile.TemporaryDirectory(prefix="payledger-screenshots-") as tmp:
        work = Path(tmp)
        demo, fleet = str(work / "demo.db"), str(work / "fleet.db")
        _payledger("--db", demo, "import", str(cases.incident_path("multiple_blockers")))
        _payledger("--db", fleet, "simulate", "--payments", "3000", "--seed", "0")
        for name, argv, height in (
            ("report-payment", ("--db", demo, "report", "--payment", PAYMENT), 1900),
            ("report-fleet", ("--db", fleet, "report"), 2000),
        ):
            page = work / f"{name}.html"
            _payledger(*argv, "-o", str(page))
            png = DOCS / f"{name}.png"
            screenshot(page, png, width=1280, height=height)
            made.append(png)
    return made


if __name__ == "__main__":
    for path in build():
        print(path.relative_to(ROOT), path.stat().st_size, "bytes", file=sys.stderr)
