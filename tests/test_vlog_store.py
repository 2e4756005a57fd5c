"""The verifiable log at the store level, on memory, SQLite and PostgreSQL (CONTRACT section 8):
a store checked against a signed checkpoint by folding its chain hashes, a forged history (its
events exported, one changed, imported into a new store: every hash recomputed) named at the
changed position through the leaves file, the auditor's checks with no store, and the
:class:`ledger.Checkpointer` a service runs (every N events, every T seconds, never a log that
does not extend its last note, whole notes whatever the moment it is cancelled)."""

from __future__ import annotations

import io
import itertools
import json
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import msgspec
import pytest
from anyio.abc import ObjectReceiveStream
from backends import Backend
from store_contract import opened
from test_checkpoint import read_signed_checkpoint

import ledger._checkpoint_dir
from ledger import (
    Checkpointer,
    CheckpointError,
    ProofError,
    SignedCheckpoint,
    check_checkpoint,
    check_consistency,
    check_inclusion,
    sign_log,
    verify_checkpoint,
)
from ledger.checkpoint import Checkpoint, generate_key
from ledger.codec import decode_line, encode_record
from ledger.leaves import LEAF_SIZE, check_leaves, write_leaves
from ledger.merkle import EMPTY_ROOT
from ledger.proofs import EVENT_KEYS, check_event
from ledger.store import EventStore
from ledger.tree import consistency, inclusion
from replay import explain
from replay.proven import check_explanation, prove_explanation

pytestmark = pytest.mark.anyio

KEY = generate_key()
INCIDENT = Path(__file__).resolve().parent.parent / "replay" / "cases" / "multiple_blockers.jsonl"


async def _fill(store: EventStore, first: int, count: int) -> None:
    for i in range(first, first + count):
        await store.append(f"account-V{i}", [opened(f"V{i}", minutes=i)])


async def _export(store: EventStore) -> list[bytes]:
    return [encode_record(rec) async for rec in store.read_all()]


async def _import(store: EventStore, lines: list[bytes]) -> None:
    await store.import_events([decode_line(line, n) for n, line in enumerate(lines, 1)])


async def _signed_with_leaves(store: EventStore, path: Path) -> SignedCheckpoint:
    head = await store.head()
    buffer = io.BytesIO()
    root = await write_leaves(store, head, buffer)
    _write(path, buffer.getvalue())
    return await sign_log(store, KEY, size=head, root=root)


def _write(path: Path, data: bytes) -> None:
    path.write_bytes(data)


def _names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def _read(path: Path) -> bytes:
    return path.read_bytes()


@asynccontextmanager
async def _forged(backend: Backend, lines: list[bytes]) -> AsyncIterator[EventStore]:
    async with backend.place() as place, place.open() as store:
        await _import(store, lines)
        yield store


async def test_a_forged_history_is_named_at_the_changed_line(
    backend: Backend, tmp_path: Path
) -> None:
    leaves = tmp_path / "cp.leaves"
    async with backend.store() as store:
        await _fill(store, 1, 40)
        signed = await _signed_with_leaves(store, leaves)
        assert leaves.stat().st_size == 40 * LEAF_SIZE
        check_leaves(leaves, 40, signed.checkpoint.root_hash)
        note = verify_checkpoint(signed.note, KEY.public_key())
        assert read_signed_checkpoint(signed.note, KEY.public_key(), "payledger")["size"] == 40
        report = await check_checkpoint(store, note, leaves=leaves)
        assert (report.ok, report.leaves, report.reason) == (True, "not_needed", None)
        await _fill(store, 41, 9)  # a later append: the log still extends the checkpoint
        assert (await check_checkpoint(store, note, leaves=leaves)).ok
        lines = await _export(store)
    edited = list(lines)
    edited[22] = edited[22].replace(b'"holder_ref":"h-1"', b'"holder_ref":"h-2"')
    assert edited[22] != lines[22]
    async with _forged(backend, edited) as forged:
        assert (await forged.verify()).ok  # the chain holds: every hash was recomputed
        report = await check_checkpoint(forged, note, leaves=leaves)
        assert not report.ok
        assert (report.first_bad_position, report.leaves) == (23, "used")
        assert report.reason is not None
        assert "position 23" in report.reason
        assert report.store_root_hash not in (None, report.root_hash)
        blind = await check_checkpoint(forged, note, leaves=tmp_path / "none")
        assert (blind.ok, blind.first_bad_position, blind.leaves) == (False, None, "absent")
        assert blind.reason is not None
        assert "cannot be named without a leaves file" in blind.reason
        bad = tmp_path / "bad.leaves"
        data = bytearray(_read(leaves))
        data[5 * LEAF_SIZE] ^= 1
        _write(bad, bytes(data))
        refused = await check_checkpoint(forged, note, leaves=bad)
        assert (refused.first_bad_position, refused.leaves) == (None, "refused")
    async with _forged(backend, lines[:31]) as truncated:  # the tail cut off
        report = await check_checkpoint(truncated, note, leaves=leaves)
        assert (report.ok, report.first_bad_position, report.head_position) == (False, 32, 31)
    async with _forged(backend, lines) as copy:  # an honest copy extends it
        assert (await check_checkpoint(copy, note, leaves=leaves)).ok


async def test_the_auditor_needs_no_store(backend: Backend) -> None:
    async with backend.store() as store:
        await _fill(store, 1, 21)
        old = verify_checkpoint((await sign_log(store, KEY)).note, KEY.public_key())
        await _fill(store, 22, 50)
        new = verify_checkpoint((await sign_log(store, KEY)).note, KEY.public_key())
        proof = (await inclusion(store, 17, new.size)).to_dict()
        step = (await consistency(store, old.size, new.size)).to_dict()
    assert check_inclusion(proof, new).position == 17
    assert check_consistency(step, old, new).old_size == 21
    with pytest.raises(ProofError, match="in the tree of 71 events; the checkpoint signs 21"):
        check_inclusion(proof, old)
    forged = {**proof, "audit_path": [proof["audit_path"][0][::-1], *proof["audit_path"][1:]]}
    with pytest.raises(ProofError, match="does not lead from the event's hash to the signed root"):
        check_inclusion(forged, new)
    other = Checkpoint(size=new.size, root_hash=EMPTY_ROOT)
    with pytest.raises(ProofError, match="does not lead"):
        check_inclusion(proof, other)
    with pytest.raises(ProofError, match="missing field 'audit_path'"):
        check_inclusion({k: v for k, v in proof.items() if k != "audit_path"}, new)
    with pytest.raises(ProofError, match="does not extend the log of 21"):
        check_consistency(step, old, other)
    with pytest.raises(ProofError, match="goes from 21 to 71 events; the checkpoints sign 71"):
        check_consistency(step, new, new)
    renamed = Checkpoint(origin="elsewhere", size=new.size, root_hash=new.root_hash)
    with pytest.raises(ProofError, match="two logs"):
        check_consistency(step, old, renamed)


async def _until(receive: ObjectReceiveStream[SignedCheckpoint], size: int) -> int:
    """Wait for the checkpointer's note of at least ``size`` events; returns its size."""
    while True:
        signed = await receive.receive()
        if signed.checkpoint.size >= size:
            return signed.checkpoint.size


async def test_a_checkpointer_signs_every_n_events(backend: Backend, tmp_path: Path) -> None:
    send, receive = anyio.create_memory_object_stream[SignedCheckpoint](100)
    notes: list[SignedCheckpoint] = []

    async def collect(signed: SignedCheckpoint) -> None:
        notes.append(signed)
        await send.send(signed)

    async with backend.store() as store, send, receive:
        await _fill(store, 1, 3)
        checkpointer = Checkpointer(
            store,
            KEY,
            every_events=10,
            every_seconds=None,
            directory=tmp_path,
            on_checkpoint=collect,
        )
        async with anyio.create_task_group() as tg:
            await tg.start(checkpointer.run)
            assert [n.checkpoint.size for n in notes] == [3]  # signed before start() returns
            for batch in range(3):
                await _fill(store, 4 + 10 * batch, 10)
                await _until(receive, 3 + 10 * (batch + 1))
            tg.cancel_scope.cancel()
        sizes = [n.checkpoint.size for n in notes]
        assert sizes == sorted(set(sizes))
        assert all(b - a >= 10 for a, b in itertools.pairwise(sizes))
        assert sizes[-1] == 33
        assert checkpointer.latest == notes[-1]
        written = _names(tmp_path)
        assert written == [*(f"checkpoint-{n:020d}.note" for n in sizes), "checkpoints.leaves"]
        check_leaves(tmp_path / "checkpoints.leaves", 33, notes[-1].checkpoint.root_hash)
        assert (tmp_path / "checkpoints.leaves").stat().st_size == 33 * LEAF_SIZE
        previous: Checkpoint | None = None
        for name in written[:-1]:
            text = _read(tmp_path / name)
            signed = verify_checkpoint(text, KEY.public_key())
            read_signed_checkpoint(text.decode(), KEY.public_key(), "payledger")
            if previous is not None:
                step = await consistency(store, previous.size, signed.size)
                check_consistency(step, previous, signed)
            previous = signed
        # a new run on the same directory takes up the last note: nothing new, nothing signed
        again = Checkpointer(store, KEY, every_events=10, directory=tmp_path)
        assert await again.sign_now() is None
        assert again.latest is not None
        assert again.latest.checkpoint == notes[-1].checkpoint


async def test_a_checkpointer_signs_every_t_seconds(backend: Backend) -> None:
    send, receive = anyio.create_memory_object_stream[SignedCheckpoint](100)
    async with backend.store() as store, send, receive:
        checkpointer = Checkpointer(
            store, KEY, every_events=None, every_seconds=0.01, on_checkpoint=send.send_nowait
        )
        async with anyio.create_task_group() as tg:
            await tg.start(checkpointer.run)  # an empty log: nothing signed yet
            await _fill(store, 1, 1)
            assert await _until(receive, 1) == 1
            await _fill(store, 2, 2)
            assert await _until(receive, 3) == 3
            tg.cancel_scope.cancel()


async def test_a_checkpointer_never_signs_a_log_that_does_not_extend_its_last_note(
    backend: Backend, tmp_path: Path
) -> None:
    async with backend.store() as store:
        await _fill(store, 1, 30)
        signed = await Checkpointer(store, KEY, directory=tmp_path).sign_now()
        assert signed is not None
        lines = await _export(store)
    lines[4] = lines[4].replace(b'"holder_ref":"h-1"', b'"holder_ref":"h-9"')
    async with _forged(backend, lines) as forged:
        for extra in (0, 5):  # the same size, or grown
            await _fill(forged, 100 + extra, extra)
            checkpointer = Checkpointer(forged, KEY, directory=tmp_path)
            with pytest.raises(CheckpointError, match="does not extend the checkpoint of 30"):
                await checkpointer.run()
    async with _forged(backend, lines[:20]) as shorter:
        with pytest.raises(CheckpointError, match="log of 20 events does not extend"):
            await Checkpointer(shorter, KEY, directory=tmp_path).sign_now()
    assert _names(tmp_path) == [f"checkpoint-{30:020d}.note", "checkpoints.leaves"]


async def test_cancelling_a_checkpointer_leaves_whole_notes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cancelled while its note is being written: the note is finished, then the task ends."""
    writing, release = threading.Event(), threading.Event()
    real = ledger._checkpoint_dir.write_note

    def slow(directory: Path, size: int, note: str) -> Path:
        writing.set()
        release.wait(30)
        return real(directory, size, note)

    monkeypatch.setattr(ledger._checkpoint_dir, "write_note", slow)
    async with Backend("memory").store() as store:
        await _fill(store, 1, 12)
        checkpointer = Checkpointer(store, KEY, every_events=1, directory=tmp_path)
        async with anyio.create_task_group() as tg:
            tg.start_soon(checkpointer.run)
            await anyio.to_thread.run_sync(writing.wait, 30)
            tg.cancel_scope.cancel()  # while the thread writes
            release.set()
        assert checkpointer.latest is not None
        assert checkpointer.latest.checkpoint.size == 12
    assert _names(tmp_path) == [f"checkpoint-{12:020d}.note", "checkpoints.leaves"]
    verify_checkpoint(_read(tmp_path / f"checkpoint-{12:020d}.note"), KEY.public_key())


async def test_a_checkpointer_needs_a_rhythm_and_a_destination() -> None:
    with pytest.raises(CheckpointError, match="every_events, every_seconds or both"):
        Checkpointer(None, KEY, every_events=None, every_seconds=None, directory=".")  # type: ignore[arg-type]
    with pytest.raises(CheckpointError, match="a directory, an on_checkpoint or both"):
        Checkpointer(None, KEY)  # type: ignore[arg-type]
    with pytest.raises(CheckpointError, match="every_events must be at least 1"):
        Checkpointer(None, KEY, every_events=0, directory=".")  # type: ignore[arg-type]


async def test_an_explanation_carries_its_evidence_events_as_hashed(backend: Backend) -> None:
    """`explain --proofs` carries each evidence event as the store hashed it, on every backend:
    the auditor's check recomputes each chain hash from the event given and the hash before
    it, so an event edited in the document (a field, its neighbour's hash, its position) no
    longer holds, though its inclusion proof is untouched."""
    lines = INCIDENT.read_bytes().splitlines()
    async with backend.store() as store:
        await _import(store, lines)
        await _fill(store, 1, 3)  # a log that grew after the incident
        signed = verify_checkpoint((await sign_log(store, KEY)).note, KEY.public_key())
        explanation = await explain(store, "P-20260308-0019")
        doc = json.loads(msgspec.json.encode(await prove_explanation(store, explanation)))
        stored = {rec.position: rec async for rec in store.read_all()}
    events = doc["proofs"]["events"]
    assert [e["position"] for e in events] == [p["position"] for p in doc["proofs"]["evidence"]]
    assert len(events) >= 3
    for event in events:
        assert list(event) == list(EVENT_KEYS)
        rec = stored[event["position"]]
        assert (event["stream"], event["version"], event["event_id"]) == (
            rec.stream,
            rec.version,
            rec.event_id,
        )
        assert json.loads(event["data"])["type"] == rec.type
    checks = check_explanation(doc, signed)
    assert all(c.holds for c in checks)
    assert [c.type for c in checks] == [stored[e["position"]].type for e in events]

    first = events[0]
    edits = {
        "data": {**first, "data": first["data"].replace('"', ' "', 1)},
        "previous_hash": {**first, "previous_hash": "0" * 63 + "1"},
        "recorded_at": {**first, "recorded_at": first["recorded_at"].replace(".", "", 1)},
        "position": {**first, "position": first["position"] + 1},
        "missing": None,
    }
    for what, edited in edits.items():
        tampered = json.loads(json.dumps(doc))
        if edited is None:
            del tampered["proofs"]["events"][0]
        else:
            tampered["proofs"]["events"][0] = edited
        checks = check_explanation(tampered, signed)
        bad = [c for c in checks if not c.holds]
        assert [c.position for c in bad] == [first["position"]], what
        assert bad[0].type is None
    with pytest.raises(ProofError, match="does not hash to the chain hash proven"):
        check_event({**first, "stream": "account-ELSEWHERE"}, doc["proofs"]["evidence"][0])
