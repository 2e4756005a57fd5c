"""The verifiable log through the command line (CONTRACT section 8), on SQLite and PostgreSQL:
the whole round an auditor makes (keygen, checkpoint, a later append, verify still passing,
proofs checked with ``ledger.merkle`` alone, ``explain --proofs`` checked by ``check-proofs``
with nothing but the checkpoint and the public key), a forged history named at the changed
line, refused notes in one line, and every new ``--json`` document against its schema."""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import sqlite3
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator, FormatChecker
from pg_support import sync_database
from test_checkpoint import read_signed_checkpoint

import fixtures
from ledger.checkpoint import load_public_key
from ledger.leaves import LEAF_SIZE
from ledger.merkle import verify_consistency, verify_inclusion
from replay import schemas
from replay.cli import main

Run = Callable[..., tuple[int, str, str]]
PROOF_KEYS = ["position", "tree_size", "leaf_index", "event_hash", "root_hash", "audit_path"]
STEP_KEYS = ["old_size", "new_size", "old_root_hash", "new_root_hash", "proof"]
PAYMENT = "P-20260308-0019"  # multiple_blockers: evidence for several causes


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Run:
    monkeypatch.delenv("PAYLEDGER_DB", raising=False)

    def runner(*argv: str) -> tuple[int, str, str]:
        capsys.readouterr()
        try:
            code = main(list(argv))
        except SystemExit as e:
            code = int(e.code or 0)
        out, err = capsys.readouterr()
        return code, out, err

    return runner


def _ok(result: tuple[int, str, str]) -> str:
    code, out, err = result
    assert code == 0, err
    return out


def _finding(result: tuple[int, str, str], *words: str) -> str:
    """Exit 1, nothing on stdout, one line on stderr holding ``words``."""
    code, out, err = result
    assert (code, out) == (1, ""), err
    assert err.startswith("payledger: ")
    assert err.count("\n") == 1
    for word in words:
        assert word in err
    return err


def _valid(name: str, doc: Any) -> None:
    validator = Draft202012Validator(schemas.load(name), format_checker=FormatChecker())
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.path))
    assert not errors, f"{name}: {errors[0].message} at {list(errors[0].path)}"


@pytest.fixture(params=["sqlite", "postgres"])
def new_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], str]]:
    """Makes new empty stores (``--db`` values) on SQLite or on PostgreSQL."""
    count = itertools.count()
    with contextlib.ExitStack() as stack:

        def make() -> str:
            if request.param == "sqlite":
                return str(tmp_path / f"store-{next(count)}.db")
            return stack.enter_context(sync_database("payledger_vlog"))

        yield make


def _imported(run: Run, db: str, *names: str) -> str:
    for name in names:
        _ok(run("--db", db, "import", str(fixtures.incident_path(name))))
    return db


def _root(note: Path) -> tuple[int, bytes]:
    """Size and root of a checkpoint note, read from its text alone."""
    _, size, root = note.read_text().split("\n")[:3]
    return int(size), base64.b64decode(root)


# --- the round an auditor makes ----------------------------------------------------------------


def test_the_whole_round(run: Run, new_db: Callable[[], str], tmp_path: Path) -> None:
    key, pub = tmp_path / "ledger.key", tmp_path / "ledger.key.pub"
    doc = json.loads(_ok(run("keygen", "-o", str(key), "--json")))
    _valid("keygen", doc)
    assert doc["private_key"] == str(key)
    assert doc["verifier_key"].startswith(f"payledger+{doc['key_id']}+")
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    db = _imported(run, new_db(), "multiple_blockers", "noisy_neighbours")

    note = tmp_path / "cp.note"
    doc = json.loads(
        _ok(run("--db", db, "checkpoint", "--key", str(key), "-o", str(note), "--json"))
    )
    _valid("checkpoint", doc)
    size, root = _root(note)
    assert doc["tree_size"] == size > 0
    assert doc["root_hash"] == root.hex()
    assert doc["note"] == note.read_text()
    assert doc["leaves_file"] == f"{note}.leaves"
    assert Path(doc["leaves_file"]).stat().st_size == size * LEAF_SIZE
    independent = read_signed_checkpoint(note.read_text(), load_public_key(pub), "payledger")
    assert independent == {"origin": "payledger", "size": size, "root": root, "extensions": []}

    _imported(run, db, "failover_saved")  # a later append
    out = _ok(run("--db", db, "verify", "--checkpoint", str(note), "--public-key", str(pub)))
    assert f"ok: checkpoint {note} (payledger, {size:,} events, key payledger+" in out
    verified = json.loads(
        _ok(
            run("--db", db, "verify", "--checkpoint", str(note), "--public-key", str(pub), "--json")
        )
    )
    assert verified["ok"]
    assert verified["tree"]["ok"]
    assert verified["checkpoint"]["ok"]
    assert verified["checkpoint"]["size"] == size
    assert verified["checkpoint"]["head_position"] > size

    # an inclusion proof in the signed tree, checked with ledger.merkle alone
    proof = json.loads(_ok(run("--db", db, "proof", "7", "--size", str(size), "--json")))
    _valid("inclusion_proof", proof)
    assert list(proof) == PROOF_KEYS
    assert proof["root_hash"] == root.hex()
    path = [bytes.fromhex(h) for h in proof["audit_path"]]
    assert verify_inclusion(bytes.fromhex(proof["event_hash"]), 6, size, path, root)
    assert "audit path (" in _ok(run("--db", db, "proof", "7"))

    # the grown log extends the signed one: a consistency proof, checked with ledger.merkle alone
    later = tmp_path / "later.note"
    _ok(run("--db", db, "checkpoint", "--key", str(key), "-o", str(later), "--no-leaves"))
    assert not Path(f"{later}.leaves").exists()
    new_size, new_root = _root(later)
    step = json.loads(_ok(run("--db", db, "proof", "--consistency", str(size), "--json")))
    _valid("consistency_proof", step)
    assert list(step) == STEP_KEYS
    assert (step["old_size"], step["new_size"]) == (size, new_size)
    hashes = [bytes.fromhex(h) for h in step["proof"]]
    assert verify_consistency(size, new_size, root, new_root, hashes)
    assert not verify_consistency(size, new_size, new_root, root, hashes)
    assert "extends the tree of its first" in _ok(run("--db", db, "proof", "--consistency", "3"))

    # explain --proofs, checked by the auditor with the checkpoint and the public key only
    signed = tmp_path / "explained.json"
    signed.write_text(
        _ok(run("--db", db, "explain", PAYMENT, "--json", "--proofs", "--checkpoint", str(note)))
    )
    doc = json.loads(signed.read_text())
    _valid("explanation_proofs", doc)
    _valid("explanation", {k: v for k, v in doc.items() if k != "proofs"})
    cited = set(doc["root_cause"]["evidence"])
    for cause in doc["root_cause"]["contributing"]:
        cited.update(cause["evidence"])
    for attempt in doc["attempts"]:
        cited.update(attempt["cause"]["evidence"] if attempt["cause"] else [])
    assert len(cited) > 2
    assert [p["position"] for p in doc["proofs"]["evidence"]] == sorted(cited)
    assert doc["proofs"]["checkpoint"]["note"] == note.read_text()
    assert {p["tree_size"] for p in doc["proofs"]["evidence"]} == {size}
    auditor = tmp_path / "auditor"
    auditor.mkdir()
    (auditor / "cp.note").write_bytes(note.read_bytes())
    (auditor / "key.pub").write_bytes(pub.read_bytes())
    (auditor / "e.json").write_bytes(signed.read_bytes())
    out = _ok(
        run("check-proofs", str(auditor / "e.json"), "--public-key", str(auditor / "key.pub"))
    )
    types = {e["position"]: json.loads(e["data"])["type"] for e in doc["proofs"]["events"]}
    assert sorted(types) == sorted(cited)
    for position in cited:
        assert f"position {position}: holds ({types[position]})" in out
    assert "each in the signed log with the content the explanation carries" in out
    checked = json.loads(
        _ok(
            run(
                "check-proofs",
                str(auditor / "e.json"),
                "--checkpoint",
                str(auditor / "cp.note"),
                "--public-key",
                str(auditor / "key.pub"),
                "--json",
            )
        )
    )
    _valid("proof_check", checked)
    assert checked["ok"]
    assert checked["tree_size"] == size
    assert [c["position"] for c in checked["positions"]] == sorted(cited)
    assert [c["type"] for c in checked["positions"]] == [types[p] for p in sorted(cited)]

    # without a checkpoint: the whole log, an unsigned checkpoint; the later note signs that size
    unsigned = tmp_path / "unsigned.json"
    unsigned.write_text(_ok(run("--db", db, "explain", PAYMENT, "--json", "--proofs")))
    doc = json.loads(unsigned.read_text())
    assert doc["proofs"]["checkpoint"] == {
        "origin": "payledger",
        "tree_size": new_size,
        "root_hash": new_root.hex(),
        "note": None,
    }
    code, out, err = run("check-proofs", str(unsigned), "--public-key", str(pub))
    assert (code, out) == (2, "")
    assert "embeds no signed checkpoint" in err
    assert f"the tree of {new_size} events" in err
    _ok(run("check-proofs", str(unsigned), "--checkpoint", str(later), "--public-key", str(pub)))
    code, out, _ = run(
        "check-proofs", str(unsigned), "--checkpoint", str(note), "--public-key", str(pub)
    )
    assert code == 1
    assert f"in the tree of {new_size} events; the checkpoint signs {size}" in out


def test_a_forged_history_fails_naming_the_changed_line(
    run: Run, new_db: Callable[[], str], tmp_path: Path
) -> None:
    key, pub = tmp_path / "k", tmp_path / "k.pub"
    _ok(run("keygen", "-o", str(key)))
    db = _imported(run, new_db(), "multiple_blockers", "noisy_neighbours")
    note, bare = tmp_path / "cp.note", tmp_path / "bare.note"
    _ok(run("--db", db, "checkpoint", "--key", str(key), "-o", str(note)))
    _ok(run("--db", db, "checkpoint", "--key", str(key), "-o", str(bare), "--no-leaves"))
    exported = tmp_path / "export.jsonl"
    _ok(run("--db", db, "export", str(exported)))
    lines = exported.read_text().splitlines(keepends=True)
    size, _ = _root(note)
    assert len(lines) == size
    line = 17
    edited = lines[line - 1].replace('"occurred_at":"2026', '"occurred_at":"2025', 1)
    assert edited != lines[line - 1]
    forged_file = tmp_path / "forged.jsonl"
    forged_file.write_text("".join([*lines[: line - 1], edited, *lines[line:]]))
    forged = new_db()
    _ok(run("--db", forged, "import", str(forged_file)))
    assert "hash chain intact" in _ok(run("--db", forged, "verify"))  # every hash recomputed

    code, out, err = run(
        "--db", forged, "verify", "--checkpoint", str(note), "--public-key", str(pub)
    )
    assert code == 1, err
    assert f"NOT EXTENDED: checkpoint {note}" in out
    assert f"the event at position {line} is not the one it signed" in out
    doc = json.loads(
        run(
            "--db", forged, "verify", "--checkpoint", str(note), "--public-key", str(pub), "--json"
        )[1]
    )
    assert doc["ok"] is False
    assert doc["checkpoint"]["first_bad_position"] == line
    assert doc["checkpoint"]["leaves"] == "used"
    assert doc["first_bad_position"] is None  # the chain itself holds

    code, out, _ = run(
        "--db", forged, "verify", "--checkpoint", str(bare), "--public-key", str(pub)
    )
    assert code == 1
    assert "the log does not extend the checkpoint" in out
    assert "cannot be named without a leaves file" in out

    # the same proof an honest store gives does not hold against the signed root from the forgery
    code, out, _ = run(
        "--db", forged, "explain", PAYMENT, "--json", "--proofs", "--checkpoint", str(note)
    )
    assert code == 1
    assert "does not extend the checkpoint" in _


def test_refused_checkpoints_are_one_line(run: Run, tmp_path: Path) -> None:
    key, pub, other = tmp_path / "k", tmp_path / "k.pub", tmp_path / "o"
    _ok(run("keygen", "-o", str(key)))
    _ok(run("keygen", "-o", str(other)))
    db = _imported(run, str(tmp_path / "s.db"), "credit_suspended_overdue")
    note = tmp_path / "cp.note"
    _ok(run("--db", db, "checkpoint", "--key", str(key), "-o", str(note)))
    text = note.read_text()

    def verify(path: Path, key_file: Path = pub) -> tuple[int, str, str]:
        return run("--db", db, "verify", "--checkpoint", str(path), "--public-key", str(key_file))

    _finding(verify(note, Path(f"{other}.pub")), "signed by another key", "payledger+")
    edited = tmp_path / "edited.note"
    edited.write_text(text.replace("\n28\n", "\n27\n", 1))
    assert edited.read_text() != text
    _finding(verify(edited), "does not verify", "altered after it was signed")
    head, _, signature = text.rstrip("\n").rpartition(" ")
    raw = base64.b64decode(signature)
    truncated = tmp_path / "truncated.note"
    truncated.write_text(f"{head} {base64.b64encode(raw[:-8]).decode()}\n")
    _finding(verify(truncated), "truncated")
    garbled = tmp_path / "garbled.note"
    garbled.write_text("not a note\n")
    _finding(verify(garbled), "malformed checkpoint note")
    code, out, err = verify(note, key)  # the private key given as the public one
    assert (code, out) == (2, "")
    assert "is a private key" in err
    # the auditor's command refuses the same notes the same way
    proven = tmp_path / "e.json"
    proven.write_text(
        _ok(
            run(
                "--db",
                db,
                "explain",
                "P-20260301-0007",
                "--json",
                "--proofs",
                "--checkpoint",
                str(note),
            )
        )
    )
    for bad in (edited, truncated):
        _finding(
            run("check-proofs", str(proven), "--checkpoint", str(bad), "--public-key", str(pub)),
            str(bad),
        )


def test_check_proofs_names_each_position_that_does_not_hold(run: Run, tmp_path: Path) -> None:
    key, pub = tmp_path / "k", tmp_path / "k.pub"
    _ok(run("keygen", "-o", str(key)))
    db = _imported(run, str(tmp_path / "s.db"), "multiple_blockers")
    note = tmp_path / "cp.note"
    _ok(run("--db", db, "checkpoint", "--key", str(key), "-o", str(note)))
    doc = json.loads(
        _ok(run("--db", db, "explain", PAYMENT, "--json", "--proofs", "--checkpoint", str(note)))
    )
    first, second, third, *_ = doc["proofs"]["evidence"]
    first["audit_path"][0] = "0" * 64
    doc["proofs"]["evidence"].remove(second)
    event = next(e for e in doc["proofs"]["events"] if e["position"] == third["position"])
    assert '"status":"down"' in event["data"]  # the forger writes that the channel was up
    event["data"] = event["data"].replace('"status":"down"', '"status":"up"')
    tampered = tmp_path / "tampered.json"
    tampered.write_text(json.dumps(doc))
    code, out, _ = run("check-proofs", str(tampered), "--public-key", str(pub))
    assert code == 1
    assert f"position {first['position']}: DOES NOT HOLD: the audit path does not lead" in out
    assert f"position {second['position']}: DOES NOT HOLD: no proof" in out
    assert (
        f"position {third['position']}: DOES NOT HOLD: the event given does not hash to the "
        "chain hash proven"
    ) in out
    assert "3 evidence positions of payment" in out
    checked = json.loads(run("check-proofs", str(tampered), "--public-key", str(pub), "--json")[1])
    assert checked["ok"] is False
    code, out, err = run("check-proofs", str(note), "--public-key", str(pub))
    assert (code, out) == (2, "")
    assert "is not a JSON document" in err


def test_keygen_never_replaces_a_key(run: Run, tmp_path: Path) -> None:
    key = tmp_path / "k"
    _ok(run("keygen", "-o", str(key)))
    before = key.read_bytes(), Path(f"{key}.pub").read_bytes()
    code, out, err = run("keygen", "-o", str(key))
    assert (code, out) == (2, "")
    assert "already exists; not replacing a key" in err
    other = tmp_path / "other"
    Path(f"{other}.pub").write_text("mine")
    code, _, err = run("keygen", "-o", str(other))
    assert code == 2
    assert f"{other}.pub already exists" in err
    assert not other.exists()
    assert (key.read_bytes(), Path(f"{key}.pub").read_bytes()) == before
    code, _, err = run("keygen", "-o", str(tmp_path / "no" / "k"))
    assert code == 2
    assert err.count("\n") == 1


def test_usage_errors_are_one_line(run: Run, tmp_path: Path) -> None:
    key = tmp_path / "k"
    _ok(run("keygen", "-o", str(key)))
    db = _imported(run, str(tmp_path / "s.db"), "credit_suspended_overdue")
    for argv, words in [
        (["proof"], "either POSITION or --consistency"),
        (["proof", "3", "--consistency", "2"], "either POSITION or --consistency"),
        (["proof", "29"], "position 29 is not in a tree of 28 events"),
        (["proof", "3", "--size", "29"], "tree size 29"),
        (["proof", "0"], "must be at least 1"),
        (["proof", "--consistency", "29"], "29"),
        (["explain", "P-20260301-0007", "--proofs"], "--proofs goes with PAYMENT_ID and --json"),
        (["explain", "--failed", "--json", "--proofs"], "--proofs goes with"),
        (["explain", "P-20260301-0007", "--json", "--checkpoint", "x"], "goes with --proofs"),
        (["verify", "--checkpoint", "x"], "needs --public-key"),
        (["verify", "--public-key", "x"], "go with --checkpoint"),
        (["checkpoint", "--key", str(key), "--origin", "a b"], "is not a key name"),
        (["checkpoint", "--key", str(tmp_path / "nope")], "nope"),
        (["checkpoint", "--key", f"{key}.pub"], "not a PEM private key"),
        (["checkpoint", "--key", str(key), "-o", db], "refusing to overwrite"),
    ]:
        code, out, err = run("--db", db, *argv)
        assert (code, out) == (2, ""), argv
        assert err.startswith("payledger: "), (argv, err)
        assert err.count("\n") == 1, (argv, err)
        assert words in err, (argv, err)
    # a checkpoint older than the evidence cannot prove it (exit 2: sign a newer one)
    source = fixtures.incident_path("credit_suspended_overdue")
    head = tmp_path / "head.jsonl"
    head.write_text("".join(source.read_text().splitlines(keepends=True)[:10]))
    grown = str(tmp_path / "grown.db")
    _ok(run("--db", grown, "import", str(head)))
    early = tmp_path / "early.note"
    _ok(run("--db", grown, "checkpoint", "--key", str(key), "-o", str(early)))
    _ok(run("--db", grown, "import", str(source)))  # the rest of the same log
    code, out, err = run(
        "--db",
        grown,
        "explain",
        "P-20260301-0007",
        "--json",
        "--proofs",
        "--checkpoint",
        str(early),
    )
    assert (code, out) == (2, "")
    assert "evidence position 13 is past the checkpoint's 10 events" in err


def test_an_edited_tree_node_is_named_and_never_signed(run: Run, tmp_path: Path) -> None:
    db = str(tmp_path / "s.db")
    _ok(run("--db", db, "simulate", "--payments", "40", "--seed", "3"))
    key = tmp_path / "k"
    _ok(run("keygen", "-o", str(key)))
    with sqlite3.connect(db) as conn:  # the biggest kept subtree: every root and proof uses it
        level, idx = conn.execute(
            "SELECT level, idx FROM ledger_tree ORDER BY level DESC, idx LIMIT 1"
        ).fetchone()
        conn.execute(
            "UPDATE ledger_tree SET hash = zeroblob(32) WHERE level = ? AND idx = ?", (level, idx)
        )
    conn.close()
    code, out, _ = run("--db", db, "verify")
    assert code == 1
    assert "ok: " in out.splitlines()[0]  # the log itself holds
    assert f"ALTERED: Merkle tree (position {(idx << level) + 1})" in out
    doc = json.loads(run("--db", db, "verify", "--json")[1])
    assert doc["ok"] is False
    assert doc["tree"]["node"] == [level, idx]
    note = tmp_path / "cp.note"
    code, out, err = run("--db", db, "checkpoint", "--key", str(key), "-o", str(note))
    assert (code, out) == (2, "")
    assert "differs from the fold of their chain hashes" in err
    assert not note.exists()
    assert not Path(f"{note}.leaves").exists()
    code, out, err = run("--db", db, "proof", "1")
    assert (code, out) == (1, "")  # a proof that would not verify is never printed
    assert err.startswith("payledger: integrity check failed")


def test_the_note_goes_to_stdout_without_a_file(run: Run, tmp_path: Path) -> None:
    key = tmp_path / "k"
    _ok(run("keygen", "-o", str(key)))
    db = _imported(run, str(tmp_path / "s.db"), "credit_suspended_overdue")
    before = sorted(p.name for p in tmp_path.iterdir())
    for argv in ([], ["-o", "-"]):
        out = _ok(run("--db", db, "checkpoint", "--key", str(key), *argv))
        signed = read_signed_checkpoint(out, load_public_key(f"{key}.pub"), "payledger")
        assert signed["size"] == 28
    named = _ok(run("--db", db, "checkpoint", "--key", str(key), "--origin", "example.com/log"))
    assert read_signed_checkpoint(named, load_public_key(f"{key}.pub"), "example.com/log")
    assert not [p for p in tmp_path.iterdir() if p.name not in before and "s.db" not in p.name]
