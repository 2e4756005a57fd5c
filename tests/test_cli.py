"""The ``payledger`` replay commands: exit codes, ``--json`` shapes, human output, hostile audit
filters, and reading commands that leave the store's events untouched."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest

import fixtures
from ledger import open_store
from replay.cli import main

REPO = Path(__file__).resolve().parent.parent
CATEGORIES = {"channel_policy", "system", "credit", "user_action", "unknown"}

Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]) -> Run:
    """Run ``payledger`` in-process; returns (exit code, stdout, stderr)."""

    def runner(*argv: str) -> tuple[int, str, str]:
        capsys.readouterr()
        try:
            code = main(list(argv))
        except SystemExit as e:  # argparse usage errors
            code = int(e.code or 0)
        out, err = capsys.readouterr()
        return code, out, err

    return runner


def _store(tmp_path: Path, run: Run, *names: str) -> str:
    db = str(tmp_path / "ledger.db")
    for name in names:
        code, _, err = run("--db", db, "import", str(fixtures.incident_path(name)))
        assert code == 0, err
    return db


def _lines(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def _head_hash(db: str) -> tuple[int, str]:
    async def read() -> tuple[int, str]:
        async with open_store(db, readonly=True) as store:
            report = await store.verify()
        assert report.ok
        return report.head_position, report.head_hash

    return anyio.run(read)


# --- explain -------------------------------------------------------------------------------


def test_explain_json_follows_the_contract(tmp_path: Path, run: Run) -> None:
    db = _store(tmp_path, run, "credit_suspended_overdue")
    code, out, _ = run("--db", db, "explain", "P-20260301-0007", "--json")
    assert code == 0
    doc = json.loads(out)
    assert list(doc)[:5] == ["payment_id", "outcome", "root_cause", "attempts", "state_at_failure"]
    assert doc["outcome"] == "failed"
    root = doc["root_cause"]
    assert {"category", "summary", "evidence", "remedy", "contributing"} <= set(root)
    assert root["category"] == "credit"
    assert root["evidence"] == [13]
    assert doc["attempts"][0]["cause"] == {
        "category": "credit",
        "evidence": [13],
        "summary": root["summary"],
    }
    assert set(doc["state_at_failure"]) >= {"account", "channel", "policy"}
    assert doc["state_at_failure"]["account"]["credit"]["huabei"]["status"] == "suspended"


def test_explain_human_output(tmp_path: Path, run: Run) -> None:
    db = _store(tmp_path, run, "multiple_blockers")
    code, out, _ = run("--db", db, "explain", "P-20260308-0019")
    assert code == 0
    assert "root cause: channel_policy" in out
    assert "ChannelPolicySet" in out  # the evidence event itself
    assert "remedy" in out
    assert "system" in out
    assert "credit" in out


def test_explain_exit_codes(tmp_path: Path, run: Run) -> None:
    db = _store(tmp_path, run, "failover_saved")
    code, out, err = run("--db", db, "explain", "P-missing")
    assert (code, out) == (1, "")
    assert "no payment 'P-missing'" in err
    assert "Traceback" not in err
    assert run("--db", db, "explain")[0] == 2
    assert run("--db", db, "explain", "P-20260309-0027", "--failed")[0] == 2
    assert run("--db", db, "explain", "P-20260309-0027", "--since", "2026-01-01")[0] == 2
    code, _, err = run("--db", db, "explain", "--failed", "--since", "yesterday-ish")
    assert code == 2
    assert "--since" in err
    assert run("--db", db, "explain", "--bogus")[0] == 2
    assert run("explain", "P-20260309-0027")[0] == 2  # no store given


def test_explain_failed_json_lines(tmp_path: Path, run: Run) -> None:
    db = _store(tmp_path, run, "channel_outage_ended")
    code, out, _ = run("--db", db, "explain", "--failed", "--json")
    assert code == 0
    docs = _lines(out)
    assert [d["payment_id"] for d in docs] == ["P-20260304-0012", "P-20260304-0031"]
    assert [d["root_cause"]["category"] for d in docs] == ["system", "channel_policy"]
    for d in docs:
        code, one, _ = run("--db", db, "explain", d["payment_id"], "--json")
        assert json.loads(one) == d
    code, out, _ = run(
        "--db", db, "explain", "--failed", "--since", "2026-03-04T09:00:00Z", "--json"
    )
    assert [d["payment_id"] for d in _lines(out)] == ["P-20260304-0031"]
    code, out, _ = run("--db", db, "explain", "--failed")
    assert code == 0
    assert "P-20260304-0012" in out
    assert "2 failed payments" in out


def test_explain_in_a_subprocess(tmp_path: Path, run: Run) -> None:
    db = _store(tmp_path, run, "policy_bank_card_only")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-m", "replay", "--db", db, "explain", "P-20260301-0007", "--json"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["root_cause"]["category"] == "channel_policy"
    done = subprocess.run(
        [sys.executable, "-m", "replay", "--db", db, "explain", "P-x"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        check=False,
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr


# --- whatif --------------------------------------------------------------------------------


def test_whatif(tmp_path: Path, run: Run) -> None:
    db = _store(tmp_path, run, "policy_bank_card_only")
    code, out, _ = run("--db", db, "whatif", "P-20260301-0007", "--channel", "bank_card", "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc["would_pass"] is True
    assert {c["check"] for c in doc["checks"]} == {
        "policy",
        "channel_health",
        "credit_status",
        "available_credit",
        "verification",
    }
    code, out, _ = run("--db", db, "whatif", "P-20260301-0007", "--channel", "huabei")
    assert code == 0
    assert "would also have failed" in out
    assert run("--db", db, "whatif", "P-20260301-0007")[0] == 2  # --channel is required
    assert run("--db", db, "whatif", "P-nope", "--channel", "bank_card")[0] == 1
    # a payment that succeeded has no failed attempt to replay
    assert run("--db", db, "whatif", "P-20260301-0003", "--channel", "huabei")[0] == 2


# --- timeline ------------------------------------------------------------------------------


def test_timeline_of_a_payment_marks_the_evidence(tmp_path: Path, run: Run) -> None:
    db = _store(tmp_path, run, "noisy_neighbours")
    code, out, _ = run("--db", db, "timeline", "--payment", "P-20260301-0024", "--json")
    assert code == 0
    docs = _lines(out)
    positions = [d["position"] for d in docs]
    assert positions == sorted(positions)
    assert max(positions) == 46  # nothing after the payment's end
    assert {d["position"] for d in docs if d["evidence"]} == {14}
    streams = {d["stream"] for d in docs}
    assert "account-A2102" not in streams  # another account's trouble is not shown
    assert {"account-A2101", "payment-P-20260301-0024"} <= streams
    code, out, _ = run("--db", db, "timeline", "--payment", "P-20260301-0024")
    assert code == 0
    assert "* evidence" in out


def test_timeline_of_an_account(tmp_path: Path, run: Run) -> None:
    db = _store(tmp_path, run, "noisy_neighbours")
    code, out, _ = run("--db", db, "timeline", "--account", "A2101", "--json")
    assert code == 0
    streams = {d["stream"] for d in _lines(out)}
    assert "account-A2101" in streams
    assert "payment-P-20260301-0024" in streams
    assert not any("A2102" in s for s in streams)
    assert run("--db", db, "timeline", "--account", "A-none")[0] == 1
    assert run("--db", db, "timeline", "--payment", "P-none")[0] == 1
    assert run("--db", db, "timeline")[0] == 2
    assert run("--db", db, "timeline", "--payment", "x", "--account", "y")[0] == 2


# --- audit ---------------------------------------------------------------------------------


def test_audit_filters(tmp_path: Path, run: Run) -> None:
    db = _store(tmp_path, run, "credit_suspended_overdue")
    code, out, _ = run("--db", db, "audit", "--stream", "account-A1001", "--json")
    assert code == 0
    docs = _lines(out)
    assert [d["position"] for d in docs] == [1, 2, 12, 13]
    code, out, _ = run("--db", db, "audit", "--type", "PaymentDeclined", "--json")
    assert [d["position"] for d in _lines(out)] == [20]
    code, out, _ = run(
        "--db",
        db,
        "audit",
        "--correlation",
        "order-20260301-0007",
        "--type",
        "PaymentAbandoned",
        "--json",
    )
    assert [d["position"] for d in _lines(out)] == [21]
    code, out, _ = run(
        "--db",
        db,
        "audit",
        "--since",
        "2026-02-28T00:00:00Z",
        "--until",
        "2026-02-28T23:59:59Z",
        "--json",
    )
    assert [d["position"] for d in _lines(out)] == [12, 13, 14]
    code, out, _ = run("--db", db, "audit", "--stream", "account-A1001")
    assert code == 0
    assert "4 events" in out
    assert run("--db", db, "audit", "--since", "not a time")[0] == 2


HOSTILE = [
    "'",
    "' OR '1'='1",
    "x'; DROP TABLE events; --",
    "%",
    "account-%",
    "_",
    "\x00",
    "account-A1001\x00",
    '"',
    "\\",
    "A" * 10_240,
]


@pytest.mark.parametrize("value", HOSTILE, ids=range(len(HOSTILE)))
def test_audit_hostile_values_are_data(tmp_path: Path, run: Run, value: str) -> None:
    db = _store(tmp_path, run, "credit_suspended_overdue")
    before = _head_hash(db)
    for option in ("--stream", "--correlation"):
        code, out, err = run("--db", db, "audit", option, value, "--json")
        assert (code, out) == (0, ""), err
    for option in ("--type", "--since"):  # not a catalogue type, not a timestamp: refused
        code, out, err = run("--db", db, "audit", option, value, "--json")
        assert (code, out) == (2, ""), err
        assert err.startswith("payledger: ")
        assert err.count("\n") == 1, err
    assert _head_hash(db) == before


# --- stats ---------------------------------------------------------------------------------


def test_stats_json(tmp_path: Path, run: Run) -> None:
    db = str(tmp_path / "ledger.db")
    for name in ("channel_outage_ended", "failover_saved"):
        # two incidents in one store (each imported on top of the other)
        assert run("--db", db, "import", str(fixtures.incident_path(name)))[0] == 0
    code, out, _ = run("--db", db, "stats", "--json")
    assert code == 0
    doc = json.loads(out)
    assert list(doc)[:7] == [  # replay.stats adds keys after these
        "payments",
        "succeeded",
        "failed",
        "pending",
        "by_category",
        "by_channel",
        "by_scenario",
    ]
    assert doc["payments"] == 5
    assert (doc["succeeded"], doc["failed"], doc["pending"]) == (3, 2, 0)
    assert sum(doc["by_category"].values()) == doc["failed"]
    assert doc["by_channel"] == {"huabei": 2}
    assert doc["by_scenario"] == {"car_loan_deposit": 1, "retail": 1}
    code, out, _ = run("--db", db, "stats")
    assert code == 0
    assert "failed by root cause" in out


# --- demo ----------------------------------------------------------------------------------


def test_demo_needs_no_arguments(run: Run) -> None:
    code, out, _ = run("demo")
    assert code == 0
    for category in CATEGORIES:
        assert category in out
    assert "saved by failover" in out
    assert "hash chains intact" in out


def test_demo_json_covers_every_category(run: Run) -> None:
    code, out, _ = run("demo", "--json")
    assert code == 0
    docs = _lines(out)
    assert len(docs) == sum(len(e["payments"]) for e in fixtures.index())
    found = {d["root_cause"]["category"] for d in docs if d["root_cause"]}
    assert found == CATEGORIES
    saved = [
        d for d in docs if d["outcome"] == "succeeded" and any(a["cause"] for a in d["attempts"])
    ]
    assert saved


# --- reading never writes ------------------------------------------------------------------


def test_reading_commands_leave_the_events_unchanged(tmp_path: Path, run: Run) -> None:
    db = _store(tmp_path, run, "multiple_blockers")
    before = _head_hash(db)
    for argv in (
        ("explain", "P-20260308-0019"),
        ("explain", "--failed", "--json"),
        ("whatif", "P-20260308-0019", "--channel", "bank_card"),
        ("timeline", "--payment", "P-20260308-0019"),
        ("timeline", "--account", "A1801"),
        ("audit", "--type", "ChannelPolicySet"),
        ("stats", "--json"),
    ):
        assert run("--db", db, *argv)[0] == 0, argv
    assert _head_hash(db) == before


def test_reading_commands_do_not_create_a_store(tmp_path: Path, run: Run) -> None:
    db = tmp_path / "absent.db"
    code, _, err = run("--db", str(db), "explain", "P1")
    assert code != 0
    assert "Traceback" not in err
    assert not db.exists()
