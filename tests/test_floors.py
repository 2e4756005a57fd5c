"""The house has floors: the record (``ledger``) at the bottom, read models (``projections``)
above it, the judgement of a failure (``causes``) above them, what acts on them (``gateway``)
above that, and replay with the CLI (``replay``) on top. No module imports a floor above its own,
so each floor can be read, tested and shipped without the ones above it."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path
from typing import Final

import pytest

ROOT: Final = Path(__file__).resolve().parent.parent
FLOORS: Final = ("ledger", "projections", "causes", "gateway", "replay")
"""Bottom to top."""
LIMIT: Final = 600
"""The most lines a shipped module may have (aim for 400: one noun per module)."""


def _modules() -> list[tuple[str, Path]]:
    found = []
    for floor in FLOORS:
        for path in sorted((ROOT / floor).rglob("*.py")):
            found.append((floor, path))
    return found


def _imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize(("floor", "path"), _modules(), ids=lambda v: str(v))
def test_no_module_imports_a_floor_above_its_own(floor: str, path: Path) -> None:
    above = set(FLOORS[FLOORS.index(floor) + 1 :])
    wrong = sorted(_imported_packages(path) & (above | {"fixtures", "tests", "bench"}))
    assert not wrong, f"{path.relative_to(ROOT)} ({floor}) imports {wrong}, above its floor"


@pytest.mark.parametrize("floor", FLOORS)
def test_importing_a_floor_loads_nothing_above_it(floor: str) -> None:
    """Lazy imports inside functions count too: load the package and look at sys.modules."""
    code = f"import sys, {floor}\nprint(' '.join(sorted({{m.split('.')[0] for m in sys.modules}})))"
    loaded = set(
        subprocess.run(
            [sys.executable, "-c", code], check=True, capture_output=True, text=True, cwd=ROOT
        ).stdout.split()
    )
    above = set(FLOORS[FLOORS.index(floor) + 1 :])
    assert not loaded & above, f"import {floor} loads {sorted(loaded & above)}"


@pytest.mark.parametrize(("floor", "path"), _modules(), ids=lambda v: str(v))
def test_modules_stay_small(floor: str, path: Path) -> None:
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= LIMIT, f"{path.relative_to(ROOT)} has {lines} lines (at most {LIMIT})"
