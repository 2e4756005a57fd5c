"""The fault campaign: rounds of what goes wrong in production, each check naming what it
proves. Slow (processes, mounts), never skipped by `make test` or CI (which run as root; the
disk round needs a tmpfs mount).

- SIGKILL of several writer processes, each with live projections, and of an import, at a
  random moment: every acknowledged append is stored whole, the import is all or nothing, the
  chain verifies and the projections catch up.
- The creation race and the clean-up race (:mod:`test_store_creation`), the full disk
  (:mod:`test_evidence`).
- Corruption of a copy (bytes flipped in an events page, the file cut short): `verify` names
  it, reading commands refuse or answer whole (:mod:`test_damage`).
- Tampering through SQL: `verify` names the first bad position; projection rows edited
  behind the store's back change no reading command's answer, and `verify` names them.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import anyio
import pytest
import test_evidence as evidence
import test_store_creation as creation
from faults import ROOT, cli, damage, is_root, spawn_cli, wait_until, write_source
from store_contract import collect

from ledger import open_store
from projections import Projector

pytestmark = pytest.mark.slow

_WRITER = """
import sys, anyio
from datetime import datetime, UTC
from ledger import open_store
from ledger.events import PaymentAttempted
from projections import open_projections

path, tag = sys.argv[1], sys.argv[2]
T = datetime(2026, 3, 1, tzinfo=UTC)

async def main():
    async with open_store(path) as store, open_projections(store):
        sys.stdout.write("ready\\n")
        sys.stdout.flush()
        i = 0
        while True:
            events = [PaymentAttempted(payment_id=tag, attempt=3 * i + k + 1, channel="huabei",
                                       amount_minor=100, occurred_at=T) for k in range(3)]
            result = await store.append(f"payment-{tag}", events)
            sys.stdout.write(" ".join(map(str, result.positions)) + "\\n")
            sys.stdout.flush()
            i += 1

anyio.run(main)
"""

_IMPORTED = 4_000


def _acks(text: str) -> list[tuple[int, ...]]:
    """Each acknowledged call's positions, from a writer's complete output lines."""
    lines = text.split("\n")[:-1]  # the last piece may be cut by the kill
    return [tuple(int(p) for p in line.split()) for line in lines if line and line != "ready"]


def _kill_round(tmp_path: Path, round_: int, rng: random.Random) -> None:
    db = tmp_path / f"kill{round_}.db"
    script = tmp_path / "writer.py"
    script.write_text(_WRITER)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    writers = [
        subprocess.Popen(
            [sys.executable, str(script), str(db), f"K{round_}x{w}"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for w in range(3)
    ]
    for proc in writers:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line == b"ready\n", proc.stderr.read() if proc.stderr else line
    importer = spawn_cli("--db", str(db), "import", str(tmp_path / "in.jsonl"))
    wait_until(lambda: (tmp_path / f"kill{round_}.db").stat().st_size > 0, "the store")
    anyio.run(anyio.sleep, rng.uniform(0.05, 1.0), backend="asyncio")
    for proc in [*writers, importer]:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
    acked: dict[str, list[tuple[int, ...]]] = {}
    for w, proc in enumerate(writers):
        # Read on through the buffered reader: readline() may have read ahead past "ready"
        # (``communicate`` with a timeout reads the pipe's descriptor and would lose that).
        assert proc.stdout is not None
        out = proc.stdout.read()
        proc.stdout.close()
        proc.communicate(timeout=60)
        acked[f"payment-K{round_}x{w}"] = _acks("ready\n" + out.decode())
    importer.communicate(timeout=60)

    async def check() -> None:
        async with open_store(db) as store:  # writable: recovers the write-ahead log
            report = await store.verify()
            assert report.ok, f"after SIGKILL the chain does not verify: {report}"
            records = await collect(store.read_all())
            by_position = {r.position: r for r in records}
            for stream, calls in acked.items():
                for positions in calls:
                    assert all(by_position[p].stream == stream for p in positions), (
                        f"{stream}: an acknowledged append was lost to SIGKILL"
                    )
                stored = [r for r in records if r.stream == stream]
                assert [r.version for r in stored] == list(range(1, len(stored) + 1))
                assert len(stored) % 3 == 0, f"{stream}: half an append survived SIGKILL"
            imported = sum(1 for r in records if not r.stream.startswith("payment-K"))
            assert imported in (0, _IMPORTED), f"SIGKILL left {imported} events of an import"
            async with Projector.open(store) as projector:
                assert await projector.catch_up() == report.head_position, (
                    "the projections do not catch up with the log after SIGKILL"
                )

    anyio.run(check, backend="asyncio")


def test_sigkill_of_writers_with_live_projections_and_of_an_import(tmp_path: Path) -> None:
    """Three rounds: three writer processes (each with live projections) and an import, all
    SIGKILLed at a random moment. Proves: acknowledged appends survive whole, an append is
    never half stored, an import is all or nothing, the chain verifies, projections catch up."""
    write_source(tmp_path / "in.jsonl", _IMPORTED, seed=11)
    rng = random.Random(4242)
    for round_ in range(3):
        _kill_round(tmp_path, round_, rng)


def test_creation_race(tmp_path: Path) -> None:
    """Proves: 8 processes creating one store at once, round after round, all succeed and
    share one store (no "not a payledger store", no instant "busy")."""
    creation.race_to_create(tmp_path, processes=8, rounds=10)


def test_clean_up_race(tmp_path: Path) -> None:
    """Proves: an import that fails into a new path never deletes the store another process
    created there and appended to meanwhile."""
    creation.failed_import_beside_another_writer(tmp_path)


def test_disk_fills_up(tmp_path: Path) -> None:
    """Proves: a full disk is said to be full, nothing is half written, the store stays
    readable while full and writable once space is freed."""
    if not is_root():
        pytest.fail("the disk round needs root to mount a tmpfs (CI runs as root)")
    evidence.disk_filled_by_others(tmp_path)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("campaign")
    source = directory / "in.jsonl"
    write_source(source, 3_000, seed=5)
    db = directory / "ledger.db"
    assert cli("--db", str(db), "import", "--no-project", str(source))[0] == 0
    return db


@pytest.mark.parametrize("how", ["leaf", "interior", "truncate"])
def test_corrupted_copy(built: Path, tmp_path: Path, how: str) -> None:
    """Proves: a copy with an events page damaged or the file cut short is named by `verify`
    (exit 1, "damaged", a position), and `stats` refuses (exit 1) or answers whole."""
    copy = tmp_path / "copy.db"
    damage(built, copy, how)
    code, out, err = cli("--db", str(copy), "verify")
    assert code == 1
    assert "damaged" in out + err
    intact = cli("--db", str(built), "stats", "--json")[1]
    code, out, err = cli("--db", str(copy), "stats", "--json")
    assert (code, out) == (0, intact) or code == 1, (code, err)


@pytest.mark.parametrize(
    ("statement", "bad"),
    [
        (
            "UPDATE events SET data = replace(data, '\"attempt\":1', '\"attempt\":2') "
            "WHERE position = (SELECT min(position) FROM events WHERE type = 'PaymentAttempted')",
            None,
        ),
        ("DELETE FROM events WHERE position = 1500", 1500),
        ("UPDATE ledger_head SET summed_minor = summed_minor + 1", None),
    ],
    ids=["data", "delete", "summed"],
)
def test_tampering(built: Path, tmp_path: Path, statement: str, bad: int | None) -> None:
    """Proves: events (or the head) changed through SQL behind the store's back are found by
    `verify`, which names the first bad position."""
    copy = tmp_path / "copy.db"
    copy.write_bytes(built.read_bytes())
    conn = sqlite3.connect(copy)
    try:
        conn.execute("DROP TRIGGER events_no_update")
        conn.execute("DROP TRIGGER events_no_delete")
        if bad is None and "data" in statement:
            (bad,) = conn.execute(
                "SELECT min(position) FROM events WHERE type = 'PaymentAttempted'"
            ).fetchone()
        conn.execute(statement)
        conn.commit()
    finally:
        conn.close()
    code, out, _ = cli("--db", str(copy), "verify", "--json")
    assert code == 1
    if bad is not None:
        assert f'"first_bad_position":{bad}' in out, out


def test_edited_projection_rows_change_no_answer(built: Path, tmp_path: Path) -> None:
    """Proves: the reading commands answer from the log, not from the projection tables. A
    payment's row moved to another account and an account's cached fold edited (its credit
    line shown frozen) leave `state`, `explain`, `timeline` and `stats` word for word as they
    were; `verify` names the edited rows (exit 1), and `rebuild` repairs them."""
    copy = tmp_path / "copy.db"
    copy.write_bytes(built.read_bytes())
    db = ("--db", str(copy))
    assert cli(*db, "rebuild")[0] == 0
    first = cli(*db, "explain", "--failed", "--json")[1].splitlines()[0]
    payment = json.loads(first)["payment_id"]
    with sqlite3.connect(copy) as conn:
        (account,) = conn.execute(
            "SELECT grp FROM ledger_states WHERE kind = 'payment' AND key = ?", (payment,)
        ).fetchone()
    conn.close()
    asks = [
        ("state", "--json", "--account", account),
        ("explain", "--json", payment),
        ("timeline", "--json", "--payment", payment),
        ("timeline", "--json", "--account", account),
        ("stats", "--json"),
    ]
    before = [cli(*db, *ask) for ask in asks]
    assert all(code == 0 for code, _, _ in before), before
    assert '"status":"active"' in before[0][1]
    with sqlite3.connect(copy) as conn:
        moved = conn.execute(
            "UPDATE ledger_states SET grp = 'A-ELSEWHERE' WHERE kind = 'payment' AND key = ?",
            (payment,),
        ).rowcount
        (state,) = conn.execute(
            "SELECT state FROM ledger_states WHERE kind = 'account' AND key = ?", (account,)
        ).fetchone()
        frozen = bytes(state).replace(b"\xa6status\xa6active", b"\xa6status\xa6frozen")
        assert frozen != state
        edited = conn.execute(
            "UPDATE ledger_states SET state = ? WHERE kind = 'account' AND key = ?",
            (frozen, account),
        ).rowcount
    conn.close()
    assert (moved, edited) == (1, 1)
    assert [cli(*db, *ask) for ask in asks] == before
    code, out, _ = cli(*db, "verify")
    assert code == 1
    assert "projection row" in out, out
    assert cli(*db, "rebuild")[0] == 0
    assert cli(*db, "verify")[0] == 0
