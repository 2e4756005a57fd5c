"""Cancellation never leaves half an append or half an import (CONTRACT section 6): every
backend (memory, SQLite, PostgreSQL), every way a call can be stopped (``asyncio.wait_for``, an
anyio cancel scope, Ctrl-C in ``payledger import``), at moments hypothesis chooses. A call that
returned stored all its events; a call that was stopped stored none of them; the store keeps
working and verifies."""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Final

import anyio
import pytest
from backends import BACKENDS, Backend
from faults import cli, has_open, interrupt, spawn_cli, wait_until, write_source
from hypothesis import given, settings
from hypothesis import strategies as st
from store_contract import T0, collect

from ledger import EventStore, ImportItem, open_store
from ledger.events import PaymentAttempted
from ledger.postgres import PostgresEventStore
from ledger.sqlite import SQLiteEventStore

_DELAYS = st.sampled_from([0.0, 0.0001, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.03])
_OP = st.tuples(
    st.sampled_from(["append", "group", "import"]),
    st.sampled_from(["wait_for", "move_on_after"]),
    _DELAYS,
    st.integers(1, 30),
    st.sampled_from([None, 50]),
)
"""One call: what it is, how it is stopped, after how long, how many events (an import: 40
times as many), and the import's chunk size (``None``: the backend's own; 50: a cancellation
can also land between chunks, on the backends that write an import in chunks)."""
Op = tuple[str, str, float, int, int | None]
EXAMPLES: Final = {"memory": 30, "sqlite": 30, "postgres": 40}
"""Hypothesis examples per backend: each PostgreSQL example is a new schema and store."""


def _events(payment: str, n: int) -> list[PaymentAttempted]:
    return [
        PaymentAttempted(
            payment_id=payment,
            attempt=k + 1,
            channel="huabei",
            amount_minor=100,
            occurred_at=T0 + timedelta(seconds=k),
        )
        for k in range(n)
    ]


async def _bounded(mode: str, delay: float, call: Callable[[], Awaitable[None]]) -> None:
    """Run ``call`` under a timeout of ``delay``, the asyncio way or the anyio way."""
    if mode == "wait_for":
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(call(), delay)
    else:
        with anyio.move_on_after(delay):
            await call()


def _operation(
    store: EventStore,
    kind: str,
    i: int,
    n: int,
    chunk: int | None,
    returned: dict[str, tuple[int, ...]],
) -> tuple[dict[str, int], Callable[[], Awaitable[None]]]:
    """The streams one operation writes (and how many events each) and the operation."""
    if kind == "append":

        async def append() -> None:
            result = await store.append(f"payment-A{i}", _events(f"A{i}", n))
            returned[f"payment-A{i}"] = result.positions

        return {f"payment-A{i}": n}, append
    if kind == "group":

        async def one(k: int) -> None:
            result = await store.append(f"payment-G{i}x{k}", _events(f"G{i}x{k}", n))
            returned[f"payment-G{i}x{k}"] = result.positions

        async def group() -> None:
            async with anyio.create_task_group() as tg:
                for k in range(4):
                    tg.start_soon(one, k)

        return {f"payment-G{i}x{k}": n for k in range(4)}, group
    size = n * 40

    async def items() -> AsyncIterator[ImportItem]:
        for event in _events(f"I{i}", size):
            await anyio.lowlevel.checkpoint()
            yield ImportItem(stream=f"payment-I{i}", event=event)

    async def import_() -> None:
        if chunk is not None and isinstance(store, SQLiteEventStore | PostgresEventStore):
            result = await store.import_events(items(), chunk=chunk)
        else:
            result = await store.import_events(items())
        assert result.first_position is not None
        assert result.last_position is not None
        returned[f"payment-I{i}"] = tuple(range(result.first_position, result.last_position + 1))

    return {f"payment-I{i}": size}, import_


async def _run_plan(store: EventStore, plan: list[Op]) -> None:
    """Each operation under its cancellation; then check, per call, all or nothing, and that
    what each call reported is the truth: a call that returned stored exactly what it returned
    (a call whose commit had started when it was stopped returns its result), a call that
    raised the cancellation stored nothing."""
    stored = await store.head()
    for i, (kind, mode, delay, n, chunk) in enumerate(plan):
        returned: dict[str, tuple[int, ...]] = {}
        streams, call = _operation(store, kind, i, n, chunk, returned)
        with anyio.fail_after(60):  # a hang guard
            await _bounded(mode, delay, call)
        for stream, count in streams.items():
            records = await collect(store.read_stream(stream))
            if stream in returned:
                assert [r.position for r in records] == list(returned[stream]), (
                    f"{stream}: the call returned positions it did not store"
                )
                assert len(records) == count
                stored += count
            else:
                assert records == [], (
                    f"{stream}: the call was stopped, yet {len(records)} of its "
                    f"{count} events were stored"
                )
        assert await store.head() == stored, "the head counts events no call stored"
    # the store still works, and its log verifies
    after = await store.append("payment-Z", _events("Z", 2))
    assert after.positions == (stored + 1, stored + 2)
    report = await store.verify()
    assert report.ok, report
    assert report.head_position == stored + 2


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
def test_a_cancelled_call_stores_all_of_its_events_or_none(backend: Backend) -> None:
    """Appends (alone and in group commits) and imports under ``asyncio.wait_for`` and
    ``anyio.move_on_after`` with hypothesis-chosen timeouts, on a new store of ``backend``
    per example: each call is all or nothing, a call that raised stored nothing, what it
    returned is what it stored, and the store works and verifies afterwards."""

    @settings(max_examples=EXAMPLES[backend.kind], deadline=None)
    @given(plan=st.lists(_OP, min_size=1, max_size=5))
    def check(plan: list[Op]) -> None:
        async def go() -> None:
            async with backend.place() as place, place.open() as store:
                await _run_plan(store, plan)

        anyio.run(go, backend="asyncio")

    check()


@pytest.mark.anyio
async def test_cancelling_an_import_between_chunks_rolls_it_back_in_its_thread(
    tmp_path: Path,
) -> None:
    """An import stopped while its source is still being read (its transaction open, chunks
    written) is rolled back: nothing of it is stored, the next append lands after the old
    head, and the writer connection is usable (no transaction left open on it)."""
    gate = anyio.Event()

    async def items() -> AsyncIterator[ImportItem]:
        for k, event in enumerate(_events("I", 12_000)):
            if k == 11_000:
                gate.set()
                await anyio.sleep_forever()
            yield ImportItem(stream="payment-I", event=event)

    async with open_store(tmp_path / "ledger.db") as store:
        await store.append("payment-P", _events("P", 1))
        async with anyio.create_task_group() as tg:
            tg.start_soon(store.import_events, items())
            await gate.wait()
            tg.cancel_scope.cancel()
        assert await store.head() == 1
        assert await collect(store.read_stream("payment-I")) == []
        result = await store.append("payment-P", _events("P", 3)[1:], expected_version=1)
        assert result.positions == (2, 3)
        assert (await store.verify()).ok


# --- Ctrl-C in `payledger import` -----------------------------------------------------------

_VERDICT = re.compile(
    r"^payledger: interrupted; (nothing of .* was imported|the import .* committed)"
)


def _head(db: Path) -> int:
    async def go() -> int:
        async with open_store(db, readonly=True) as store:
            return await store.head()

    return anyio.run(go, backend="asyncio")


def _started(proc: subprocess.Popen[bytes], source: Path) -> None:
    """Wait until the command has opened its input (it is then in its handler)."""
    wait_until(lambda: has_open(proc.pid, source) or proc.poll() is not None, "the import")


def _judge(
    proc: subprocess.Popen[bytes], db: Path, before: int, events: int, rest: bytes | None = None
) -> str:
    """Check one interrupted (or finished) import: exit 130 with one line saying whether the
    import was committed, and the store holding exactly that; or exit 0, all committed."""
    out_b, err_b = proc.communicate(rest, timeout=120)
    out, err = out_b.decode(), err_b.decode()
    head = _head(db) if db.exists() else 0
    assert "Traceback" not in err, err
    if proc.returncode == 0 or out.startswith(f"imported {events:,} events"):
        # finished and said so; a signal after that only meets the interpreter's exit
        assert head == before + events, (out, err)
        return "finished"
    assert proc.returncode == 130, (proc.returncode, out, err)
    verdicts = [line for line in err.splitlines() if _VERDICT.match(line)]
    assert len(verdicts) == 1, f"no one-line verdict on the import: {err!r}"
    if "committed" in verdicts[0]:
        assert head == before + events, f"said committed, but the head is {head}: {err}"
        assert f"{events:,} events appended" in verdicts[0]
        kind = "committed"
    else:
        assert head == before, f"said nothing was imported, but the head is {head}: {err}"
        kind = "rolled back"
    if db.exists():
        code, out, err = cli("--db", str(db), "verify")
        assert code == 0, f"the store does not verify after the interruption: {out}{err}"
    return kind


@pytest.mark.slow
def test_ctrl_c_during_import_is_all_or_nothing_and_reported(tmp_path: Path) -> None:
    """SIGINT to `payledger import` of 20,000 events at random moments (from the moment the
    command has opened its input until past its usual end): it exits 130 and says on one
    line whether the import was committed, which is then exactly what the store holds (all or
    nothing, `verify` passes); or it had finished (exit 0, all stored)."""
    events = 20_000
    source = tmp_path / "in.jsonl"
    write_source(source, events)
    seed_db = tmp_path / "seed.db"
    seed_src = tmp_path / "seed.jsonl"
    write_source(seed_src, 10, seed=99)
    assert cli("--db", str(seed_db), "import", str(seed_src))[0] == 0
    # how long an import takes here: only to spread the interruptions over it
    calibrate = tmp_path / "calibrate.db"
    shutil.copyfile(seed_db, calibrate)
    started = time.monotonic()
    assert cli("--db", str(calibrate), "import", str(source))[0] == 0
    usual = time.monotonic() - started
    rng = random.Random(20260301)
    outcomes = []
    for trial in range(7):
        db = tmp_path / f"trial{trial}.db"
        shutil.copyfile(seed_db, db)
        proc = spawn_cli("--db", str(db), "import", str(source))
        _started(proc, source)
        time.sleep(rng.uniform(0, usual * 1.1))
        interrupt(proc)
        outcomes.append(_judge(proc, db, 10, events))
    # an import into a path with no store: interrupted, it leaves no file at all
    db = tmp_path / "new.db"
    proc = spawn_cli("--db", str(db), "import", str(source))
    _started(proc, source)
    time.sleep(usual * 0.2)
    interrupt(proc)
    if _judge(proc, db, 0, events) == "rolled back":
        assert not db.exists(), "an interrupted import into a new path left a file"
    assert [p.name for p in tmp_path.glob(".*importing*")] == []


@pytest.mark.slow
def test_ctrl_c_reports_the_truth_early_and_late(tmp_path: Path) -> None:
    """Deterministic moments: Ctrl-C while the import still reads its input (stdin held open)
    rolls it back and says so; Ctrl-C after its COMMIT (while projections catch up, or
    later) reports it committed, never a bare "interrupted"."""
    events = 6_000
    source = tmp_path / "in.jsonl"
    write_source(source, events)
    lines = source.read_bytes().splitlines(keepends=True)
    # early: half the input sent, the rest held back
    db = tmp_path / "early.db"
    proc = spawn_cli("--db", str(db), "import", "-", stdin=subprocess.PIPE)
    assert proc.stdin is not None
    proc.stdin.write(b"".join(lines[: events // 2]))
    proc.stdin.flush()
    time.sleep(0.3)  # (not asserted on: the verdict is the same whenever the signal lands)
    interrupt(proc)
    assert _judge(proc, db, 0, events, b"".join(lines[events // 2 :])) == "rolled back"
    # late: everything sent; the signal once the events are committed
    db = tmp_path / "late.db"
    shutil.copyfile(source, tmp_path / "copy.jsonl")
    proc = spawn_cli("--db", str(db), "import", str(tmp_path / "copy.jsonl"))
    wait_until(
        lambda: (db.exists() and _head_or_zero(db) == events) or proc.poll() is not None,
        "the commit",
    )
    interrupt(proc)
    assert _judge(proc, db, 0, events) in ("committed", "finished")


def _head_or_zero(db: Path) -> int:
    try:
        return _head(db)
    except Exception:
        return 0
