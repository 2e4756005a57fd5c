"""Every ``--json`` output is one documented shape: the shipped JSON Schemas (replay/schemas) are
current with the Structs the commands encode, every command's output validates against its
schema, every listing of events carries the same fields, and ``stats`` and ``simulate`` use the
same keys for the same things. The reference section of docs/json.md names every document."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator, FormatChecker

import fixtures
from replay import schemas
from replay.cli import main

Run = Callable[..., tuple[int, str, str]]
REPO = Path(__file__).resolve().parent.parent
EVENT_FIELDS = [
    "position",
    "stream",
    "version",
    "type",
    "occurred_at",
    "recorded_at",
    "event_id",
    "correlation_id",
    "causation_id",
    "data",
]


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]) -> Run:
    def runner(*argv: str) -> tuple[int, str, str]:
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return runner


def _valid(name: str, doc: Any) -> None:
    validator = Draft202012Validator(schemas.load(name), format_checker=FormatChecker())
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.path))
    assert not errors, f"{name}: {errors[0].message} at {list(errors[0].path)}"


def _lines(text: str) -> list[Any]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.mark.parametrize("name", sorted(schemas.DOCUMENTS))
def test_the_shipped_schema_is_current(name: str) -> None:
    path = schemas.DIRECTORY / f"{name}.schema.json"
    assert path.read_text(encoding="utf-8") == schemas.render(name), (
        f"{path.name} is stale: run scripts/schemas.py"
    )
    Draft202012Validator.check_schema(schemas.load(name))


def test_a_schema_refuses_a_wrong_document() -> None:
    validator = Draft202012Validator(schemas.load("state"))
    assert not validator.is_valid({"account_id": "A1"})
    assert not validator.is_valid(
        {"account_id": "A1", "position": "nine", "score": None, "credit": {}}
    )


def test_every_output_validates_against_its_schema(tmp_path: Path, run: Run) -> None:
    db = str(tmp_path / "s.db")
    for name in ("noisy_neighbours", "failover_saved", "multiple_blockers"):
        assert run("--db", db, "import", str(fixtures.incident_path(name)))[0] == 0
    code, out, _ = run("--db", db, "explain", "P-20260301-0024", "--json")
    assert code == 0
    _valid("explanation", json.loads(out))
    code, out, _ = run("--db", db, "explain", "--failed", "--json")
    assert code == 0
    for doc in _lines(out):
        _valid("explanation", doc)
    code, out, _ = run("--db", db, "whatif", "P-20260301-0024", "--channel", "huabei", "--json")
    assert code == 0
    _valid("whatif", json.loads(out))
    code, out, _ = run("--db", db, "state", "--account", "A2101", "--json")
    assert code == 0
    _valid("state", json.loads(out))
    code, out, _ = run("--db", db, "incidents", "--json")
    assert code == 0
    assert _lines(out)
    for doc in _lines(out):
        _valid("incident", doc)
    code, out, _ = run("--db", db, "stats", "--json")
    assert code == 0
    _valid("stats", json.loads(out))
    listings = {
        "export": run("--db", db, "export")[1],
        "audit": run("--db", db, "audit", "--json")[1],
        "timeline": run("--db", db, "timeline", "--payment", "P-20260301-0024", "--json")[1],
    }
    for command, text in listings.items():
        docs = _lines(text)
        assert docs, command
        for doc in docs:
            _valid("event", doc)
            keys = [k for k in doc if k != "evidence"]
            assert keys == EVENT_FIELDS, command
    sim = str(tmp_path / "sim.db")
    code, out, _ = run("--db", sim, "simulate", "--payments", "300", "--json")
    assert code == 0
    simulated = json.loads(out)
    _valid("simulation", simulated)
    code, out, _ = run("--db", sim, "stats", "--json")
    stats = json.loads(out)
    for key in ("payments", "succeeded", "failed", "pending", "by_category", "saved_by_failover"):
        assert simulated[key] == stats[key], key  # same keys, same things, same figures


def test_the_reference_names_every_document_and_its_keys() -> None:
    reference = (REPO / "docs" / "json.md").read_text(encoding="utf-8")
    for name, struct in schemas.DOCUMENTS.items():
        assert f"{name}.schema.json" in reference, name
        for field in struct.__struct_fields__:
            assert f"`{field}`" in reference, f"{name}.{field} is not documented"
