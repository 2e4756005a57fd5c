"""The package as `pip install payledger` would install it: a wheel built from a copy of the
repository (offline, with the setuptools of the test environment), then read as a zip.

It must not put a top-level ``fixtures`` (PyPI's testing library of that name) or ``tests``
package into site-packages; the incidents the demo explains and the JSON Schemas ship as
package data of the packages that use them; every package is typed; and installing it pulls
in the runtime dependencies only, never the test or lint tools.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = {"ledger", "projections", "causes", "gateway", "replay"}
_SKIP = shutil.ignore_patterns(
    ".git", ".venv", "build", "*.egg-info", "__pycache__", ".*_cache", ".hypothesis", "*.db*"
)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    where = tmp_path_factory.mktemp("wheel")
    source = where / "src"
    shutil.copytree(ROOT, source, ignore=_SKIP)
    out = where / "dist"
    done = subprocess.run(
        [
            *(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation"),
            *("--no-index", "--quiet", "-w", str(out), str(source)),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    (built,) = out.glob("payledger-*.whl")
    return zipfile.ZipFile(built)


def test_only_payledger_s_own_names_at_the_top_level(wheel: zipfile.ZipFile) -> None:
    top = {name.split("/", 1)[0] for name in wheel.namelist()}
    dist_info = {name for name in top if name.endswith(".dist-info")}
    assert top - dist_info == PACKAGES | {"payledger_entry.py"}
    for other in ("fixtures", "tests", "bench"):
        assert other not in top


def test_the_demo_incidents_and_the_schemas_are_package_data(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    cases = {n for n in names if n.startswith("replay/cases/")}
    logs = {n for n in cases if n.endswith(".jsonl")}
    expected = {n for n in cases if n.endswith(".expected.json")}
    assert logs
    assert {n.removesuffix(".jsonl") for n in logs} == {
        n.removesuffix(".expected.json") for n in expected
    }
    on_disk = {p.name for p in (ROOT / "replay" / "cases").glob("*.json*")}
    assert {n.rsplit("/", 1)[1] for n in cases if ".json" in n} == on_disk
    assert "replay/cases/index.json" in cases
    schemas = {n for n in names if n.startswith("replay/schemas/") and n.endswith(".json")}
    assert {n.rsplit("/", 1)[1] for n in schemas} == {
        p.name for p in (ROOT / "replay" / "schemas").glob("*.schema.json")
    }
    for package in PACKAGES:
        assert f"{package}/py.typed" in names, package


def test_installing_pulls_in_the_runtime_dependencies_only(wheel: zipfile.ZipFile) -> None:
    (meta,) = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")]
    message = Parser().parsestr(wheel.read(meta).decode())
    plain = [r for r in message.get_all("Requires-Dist") or [] if "extra ==" not in r]
    names = {r.split(">", 1)[0].split("=", 1)[0].split("<", 1)[0].strip() for r in plain}
    assert names == {"msgspec", "aiosqlite", "anyio", "rich", "asyncpg", "cryptography"}
    (entry,) = [n for n in wheel.namelist() if n.endswith(".dist-info/entry_points.txt")]
    assert "payledger = payledger_entry:run" in wheel.read(entry).decode()
