"""The incidents of CONTRACT section 7 (:mod:`fixtures.rules`): the committed logs are exactly what
the builder writes, every rule 7.1-7.7 has at least one, and each is listed for the demo.

Their expected explanations are checked like every incident's: against the engine field by field
(``test_replay_engine.py``) and against the reference reading (``test_fixtures.py``).
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

import fixtures
from fixtures import rules

BUILT = rules.build()


@pytest.mark.parametrize("incident", BUILT, ids=lambda i: i.name)
def test_committed_log_is_what_the_builder_writes(incident: rules.Incident) -> None:
    committed = fixtures.incident_path(incident.name).read_bytes()
    assert committed == rules.render(incident), (
        f"{incident.name}.jsonl differs from fixtures/rules.py: run `python -m fixtures.rules`"
    )


def test_builder_is_deterministic_and_writes_every_log(tmp_path: Path) -> None:
    written = rules.write(tmp_path)
    assert sorted(p.name for p in written) == sorted(f"{i.name}.jsonl" for i in BUILT)
    for path, again in zip(written, rules.build(), strict=True):
        assert path.read_bytes() == rules.render(again)
    assert rules.main(["--out", str(tmp_path)]) == 0


def test_every_rule_has_an_incident() -> None:
    assert {i.rule for i in BUILT} == set(rules.RULES)
    assert len({i.name for i in BUILT}) == len(BUILT)


@pytest.mark.parametrize("incident", BUILT, ids=lambda i: i.name)
def test_incident_is_listed_and_names_its_rule(incident: rules.Incident) -> None:
    entry = next(e for e in fixtures.index() if e["name"] == incident.name)
    assert 0 < len(entry["title"]) <= 70
    assert f"Rule {incident.rule}" in fixtures.expected(incident.name)["description"]
    assert 10 <= len(incident.lines) <= 40


@pytest.mark.parametrize("incident", BUILT, ids=lambda i: i.name)
def test_event_ids_are_uuid5_of_name_and_line(incident: rules.Incident) -> None:
    path = fixtures.incident_path(incident.name)
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        event_id = json.loads(line)["event_id"]
        assert event_id == str(uuid.uuid5(rules.NAMESPACE, f"{incident.name}:{n}"))
