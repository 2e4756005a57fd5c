"""The store contract against the SQLite backend, and what only a file can show: several
processes appending at once, a writer killed mid-stream, tampering found by ``verify`` (and
``payledger verify``), files that are not stores, read-only use, the CLI's import of bad lines and
its export/import round trip."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Awaitable, Callable, Iterable, Iterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any, TypeVar

import anyio
import pytest
from store_contract import HOSTILE, StoreContract, attempted, collect, opened, requested, status

from ledger import (
    EventStore,
    FormatError,
    ImportItem,
    IntegrityError,
    IntegrityReport,
    LedgerError,
    NotALedgerError,
    ReadOnlyError,
    Record,
    SchemaVersionError,
    SQLiteEventStore,
    StoreError,
    open_store,
)
from replay.cli import main

T = TypeVar("T")


class TestSQLiteStore(StoreContract):
    def make_store(self) -> AbstractAsyncContextManager[EventStore]:
        return open_store(self.tmp_path / f"ledger-{uuid.uuid4().hex[:8]}.db")


# --- helpers -------------------------------------------------------------------------------


def _run(coro_fn: Callable[[], Awaitable[T]]) -> T:
    return anyio.run(coro_fn, backend="asyncio")


async def _build(path: Path, n_payments: int = 4) -> None:
    """A store of ``3 * n_payments + 1`` events."""
    async with open_store(path) as store:
        await store.append("account-A1", [opened("A1")])
        for i in range(n_payments):
            await store.append(
                f"payment-P{i}",
                [requested(f"P{i}"), attempted(f"P{i}"), attempted(f"P{i}", 2)],
                correlation_id=f"o-{i}",
            )


async def _records(path: Path) -> list[Record]:
    async with open_store(path, readonly=True) as store:
        return await collect(store.read_all())


async def _report(path: Path) -> IntegrityReport:
    async with open_store(path, readonly=True) as store:
        return await store.verify()


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _tamper(path: Path, *sql: str) -> None:
    conn = sqlite3.connect(path)
    try:
        conn.execute("DROP TRIGGER IF EXISTS events_no_update")
        conn.execute("DROP TRIGGER IF EXISTS events_no_delete")
        for statement in sql:
            conn.execute(statement)
        conn.commit()
    finally:
        conn.close()


_WRITER = """
import os, sys, anyio
from datetime import datetime, UTC
from ledger import open_store
from ledger.events import PaymentAttempted

path, tag, go = sys.argv[1], sys.argv[2], sys.argv[5]
calls, tasks = int(sys.argv[3]), int(sys.argv[4])
T = datetime(2026, 3, 1, tzinfo=UTC)

async def worker(store, t):
    i = 0
    while calls < 0 or i < calls:
        payment = f"{tag}-{t}"
        events = [
            PaymentAttempted(payment_id=payment, attempt=3 * i + k + 1, channel="huabei",
                             amount_minor=100, occurred_at=T)
            for k in range(3)
        ]
        result = await store.append(f"payment-{payment}", events)
        sys.stdout.write(f"payment-{payment} {' '.join(map(str, result.positions))}\\n")
        sys.stdout.flush()
        i += 1

async def main():
    async with open_store(path) as store:
        sys.stdout.write("ready\\n")
        sys.stdout.flush()
        while not os.path.exists(go):
            await anyio.sleep(0.001)
        async with anyio.create_task_group() as tg:
            for t in range(tasks):
                tg.start_soon(worker, store, t)

anyio.run(main)
"""


def _writer(tmp_path: Path, db: Path, tag: str, calls: int, tasks: int) -> subprocess.Popen[str]:
    script = tmp_path / "writer.py"
    script.write_text(_WRITER)
    return subprocess.Popen(
        [sys.executable, str(script), str(db), tag, str(calls), str(tasks), str(tmp_path / "go")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _acks(lines: Iterable[str]) -> dict[int, str]:
    """Every acknowledged position and its stream, from a writer's complete output lines."""
    acked: dict[int, str] = {}
    for line in lines:
        if not line.endswith("\n") or line == "ready\n":
            continue
        stream, *positions = line.split()
        assert len(positions) == 3
        for p in positions:
            acked[int(p)] = stream
    return acked


# --- several processes, crashes ------------------------------------------------------------


@pytest.mark.slow
def test_two_processes_append_to_one_file(tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"  # not there yet: both processes race to create it
    procs = [_writer(tmp_path, db, tag, 40, 4) for tag in ("X", "Y")]
    for proc in procs:
        assert proc.stdout is not None
        ready = proc.stdout.readline()
        assert ready == "ready\n", proc.stderr.read() if proc.stderr else ready
    (tmp_path / "go").touch()
    acked: dict[int, str] = {}
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        acked.update(_acks(out.splitlines(keepends=True)))
    total = 2 * 4 * 40 * 3
    assert sorted(acked) == list(range(1, total + 1))
    records = _run(lambda: _records(db))
    assert [r.position for r in records] == list(range(1, total + 1))
    assert all(acked[r.position] == r.stream for r in records)
    versions: dict[str, list[int]] = {}
    for r in records:
        versions.setdefault(r.stream, []).append(r.version)
    assert len(versions) == 2 * 4
    for vs in versions.values():
        assert vs == list(range(1, len(vs) + 1))
    report = _run(lambda: _report(db))
    assert report.ok
    assert report.head_position == total


@pytest.mark.slow
def test_killed_writer_loses_no_acknowledged_append(tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    _run(lambda: _build(db, 0))
    proc = _writer(tmp_path, db, "K", -1, 4)
    assert proc.stdout is not None
    assert proc.stdout.readline() == "ready\n"
    (tmp_path / "go").touch()
    lines: list[str] = []
    while len(lines) < 60:
        line = proc.stdout.readline()
        assert line, proc.stderr.read() if proc.stderr else "the writer died"
        lines.append(line)
    os.kill(proc.pid, signal.SIGKILL)
    out = proc.stdout.read()  # (through the reader that may already hold the next lines)
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    lines.extend(out.splitlines(keepends=True))
    acked = _acks(lines)
    assert len(acked) >= 180

    async def reopen() -> tuple[IntegrityReport, list[Record]]:
        async with open_store(db) as store:  # writable: recovers the WAL
            return await store.verify(), await collect(store.read_all())

    report, records = _run(reopen)
    assert report.ok, report
    by_position = {r.position: r for r in records}
    for position, stream in acked.items():
        assert by_position[position].stream == stream
    per_stream: dict[str, list[int]] = {}
    for r in records[1:]:
        per_stream.setdefault(r.stream, []).append(r.position)
    for positions in per_stream.values():
        assert len(positions) % 3 == 0
        for k in range(0, len(positions), 3):  # each append's three events, contiguous
            assert positions[k : k + 3] == list(range(positions[k], positions[k] + 3))


# --- tampering -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("statements", "bad"),
    [
        (["UPDATE events SET data = replace(data, '3000000', '3000001') WHERE position = 4"], 4),
        (["UPDATE events SET stream = 'payment-Q' WHERE position = 6"], 6),
        (["UPDATE events SET recorded_at = recorded_at + 1 WHERE position = 2"], 2),
        (["UPDATE events SET correlation_id = NULL WHERE position = 3"], 3),
        (["DELETE FROM events WHERE position = 5"], 5),
        (["DELETE FROM events WHERE position = 13"], 13),
        (
            [
                "INSERT INTO events SELECT 14, stream, version + 1, type, schema, occurred_at, "
                "recorded_at, 'e' || event_id, correlation_id, causation_id, data, hash, stream_no "
                "FROM events WHERE position = 13"
            ],
            14,
        ),
        (
            [
                "INSERT INTO events SELECT 20, stream, version + 1, type, schema, occurred_at, "
                "recorded_at, 'e' || event_id, correlation_id, causation_id, data, hash, stream_no "
                "FROM events WHERE position = 13"
            ],
            14,
        ),
        (["UPDATE events SET version = 9 WHERE position = 7"], 7),
        (["UPDATE ledger_head SET position = 12"], 13),
    ],
    ids=[
        "data",
        "stream",
        "recorded_at",
        "correlation",
        "delete-middle",
        "delete-last",
        "insert",
        "insert-gap",
        "version",
        "head",
    ],
)
def test_tampering_is_found(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], statements: list[str], bad: int
) -> None:
    db = tmp_path / "ledger.db"
    _run(lambda: _build(db))
    healthy = _run(lambda: _report(db))
    assert healthy.ok
    assert healthy.head_position == 13
    code, out, _ = _cli(capsys, "--db", str(db), "verify")
    assert code == 0
    assert "ok" in out
    _tamper(db, *statements)
    report = _run(lambda: _report(db))
    assert not report.ok
    assert report.first_bad_position == bad
    assert report.reason
    code, out, _ = _cli(capsys, "--db", str(db), "verify")
    assert code == 1
    assert f"first bad position {bad}" in out
    code, out, _ = _cli(capsys, "--db", str(db), "verify", "--json")
    assert code == 1
    assert json.loads(out)["first_bad_position"] == bad

    async def check() -> None:
        async with open_store(db, readonly=True) as store:
            assert isinstance(store, SQLiteEventStore)
            with pytest.raises(IntegrityError) as info:
                await store.check()
            assert info.value.position == bad

    _run(check)


def test_events_cannot_be_changed_through_sqlite(tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    _run(lambda: _build(db, 1))
    conn = sqlite3.connect(db)
    try:
        with pytest.raises(sqlite3.IntegrityError, match="immutable"):
            conn.execute("UPDATE events SET data = '{}' WHERE position = 1")
        with pytest.raises(sqlite3.IntegrityError, match="immutable"):
            conn.execute("DELETE FROM events")
    finally:
        conn.close()
    assert _run(lambda: _report(db)).ok


# --- files that are not stores -------------------------------------------------------------


def _foreign(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
    conn.commit()
    conn.close()


def _newer(path: Path) -> None:
    _run(lambda: _build(path, 1))
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 99")
    conn.close()


@pytest.mark.parametrize(
    ("make", "error", "modes"),
    [
        (
            lambda p: p.write_bytes(b"PK\x03\x04 this is a zip file, not a database" * 100),
            NotALedgerError,
            (False, True),
        ),
        (lambda p: p.write_text("hello\n"), NotALedgerError, (False, True)),
        (_foreign, NotALedgerError, (False, True)),
        (lambda p: p.write_bytes(b""), NotALedgerError, (True,)),
        (_newer, SchemaVersionError, (False, True)),
    ],
    ids=["binary", "text", "foreign-sqlite", "empty", "newer-schema"],
)
def test_files_that_are_not_stores_are_refused(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    make: Callable[[Path], object],
    error: type[Exception],
    modes: tuple[bool, ...],
) -> None:
    path = tmp_path / "thing.db"
    make(path)
    before = path.read_bytes()
    for readonly in modes:

        async def attempt(readonly: bool = readonly) -> None:
            async with open_store(path, readonly=readonly):
                pass

        with pytest.raises(error) as info:
            _run(attempt)
        assert str(path) in str(info.value)
        assert isinstance(info.value, LedgerError)
    commands = [["verify"], ["export"]]
    if False in modes:  # a writable open of an empty file makes it a store (tested below)
        commands.append(["import", str(tmp_path / "none.jsonl")])
    for command in commands:
        code, _, err = _cli(capsys, "--db", str(path), *command)
        assert code == 2
        assert err.startswith("payledger: ")
        assert "Traceback" not in err
    assert path.read_bytes() == before


def test_writable_open_of_an_empty_file_makes_it_a_store(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    path.touch()

    async def use() -> int:
        async with open_store(path) as store:
            await store.append("account-A1", [opened("A1")])
        async with open_store(path, readonly=True) as store:
            return await store.head()

    assert _run(use) == 1


def test_missing_store_is_not_created_by_reading_commands(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "missing.db"
    for command in (["verify"], ["export"]):
        code, _, err = _cli(capsys, "--db", str(path), *command)
        assert code == 2
        assert "no such store" in err
    assert list(tmp_path.iterdir()) == []


# --- read-only -----------------------------------------------------------------------------


def test_readonly_store_rejects_writes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "ledger.db"
    _run(lambda: _build(db, 2))
    before = _run(lambda: _report(db))

    async def attempt() -> None:
        async with open_store(db, readonly=True) as store:
            assert store.readonly
            with pytest.raises(ReadOnlyError):
                await store.append("payment-P9", [requested("P9")])
            with pytest.raises(ReadOnlyError):
                await store.import_events([ImportItem(stream="payment-P9", event=requested("P9"))])
            assert await store.head() == 7

    _run(attempt)
    out_file = tmp_path / "out.jsonl"
    for command in (["verify"], ["verify", "--json"], ["export"], ["export", str(out_file)]):
        code, _, _ = _cli(capsys, "--db", str(db), *command)
        assert code == 0
    after = _run(lambda: _report(db))
    assert after == before
    assert len(out_file.read_bytes().splitlines()) == 7


# --- the CLI's import and export -----------------------------------------------------------

_GOOD: dict[str, Any] = {
    "stream": "payment-P1",
    "type": "PaymentAttempted",
    "occurred_at": "2026-03-01T09:00:00Z",
    "data": {"payment_id": "P1", "attempt": 1, "channel": "huabei", "amount_minor": 500},
}

_CHANNEL_DOWN = json.dumps(
    {
        "stream": "channel-huabei",
        "type": "ChannelStatusChanged",
        "occurred_at": "2026-03-01T09:00:00Z",
        "data": {"channel": "huabei", "status": "down", "reason": ""},
    }
).encode()


def _line(**changes: Any) -> bytes:
    doc = json.loads(json.dumps(_GOOD))
    data = changes.pop("data", {})
    drop = changes.pop("drop", None)
    doc.update(changes)
    doc["data"].update(data)
    if drop:
        doc["data"].pop(drop)
    return json.dumps(doc).encode()


@pytest.mark.parametrize(
    ("line", "field", "words"),
    [
        (b"{not json", None, "malformed"),
        (_line()[:50], None, "truncated"),
        (_line(data={"channel": "hua"}).replace(b"hua", b"hu\xff"), None, "UTF-8"),
        (_line(type="PaymentTeleported"), "type", "PaymentTeleported"),
        (_line(drop="amount_minor"), "data.amount_minor", "missing"),
        (_line(data={"amount_minor": "500"}), "data.amount_minor", "int"),
        (_line(data={"attempt": 1.5}), "data.attempt", "int"),
        (_line(data={"amount_minor": 0}), "data.amount_minor", ">"),
        (_line(data={"amount_minor": -1}), "data.amount_minor", ">"),
        (_CHANNEL_DOWN.replace(b'"down"', b'"sideways"'), "data.status", "sideways"),
        (_line(occurred_at="yesterday"), "occurred_at", "RFC3339"),
        (_line(occurred_at="2026-03-01T09:00:00"), "occurred_at", "timezone"),
        (_line(occurred_at="2026-03-01T17:00:00+08:00"), "occurred_at", "UTC"),
        (_line(colour="red"), None, "colour"),
        (_line(data={"colour": "red"}), "data.colour", "colour"),
        (_line(stream="payment-P2"), "stream", "payment-P1"),
        (_line(data={"payment_id": ""}), "data.payment_id", "length"),
        (_line(event_id="not-a-uuid"), "event_id", "UUID"),
        (_line(correlation_id=""), "correlation_id", "correlation_id"),
        (_line(stream=None), "stream", "str"),
        (b"[1, 2]", None, "object"),
    ],
    ids=[
        "bad-json",
        "truncated",
        "bad-utf8",
        "unknown-type",
        "missing-field",
        "wrong-type",
        "float-attempt",
        "zero-amount",
        "negative-amount",
        "vocabulary",
        "bad-timestamp",
        "naive-timestamp",
        "non-utc",
        "unknown-key",
        "unknown-data-key",
        "wrong-stream",
        "empty-id",
        "bad-event-id",
        "empty-correlation",
        "null-stream",
        "not-an-object",
    ],
)
def test_cli_import_refuses_a_bad_line_whole(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], line: bytes, field: str | None, words: str
) -> None:
    db = tmp_path / "ledger.db"
    _run(lambda: _build(db, 1))
    before = _run(lambda: _report(db))
    good_a = json.dumps(
        {**_GOOD, "stream": "payment-PA", "data": {**_GOOD["data"], "payment_id": "PA"}}
    )
    source = tmp_path / "in.jsonl"
    source.write_bytes(
        good_a.encode()
        + b"\n\n"
        + _line(stream="payment-P1")
        + b"\n"
        + line
        + b"\n"
        + good_a.encode()
        + b"\n"
    )
    code, _, err = _cli(capsys, "--db", str(db), "import", str(source))
    assert code == 2, err
    assert f"{source}:4" in err
    if field is not None:
        assert repr(field) in err
    assert words in err
    assert "Traceback" not in err
    assert _run(lambda: _report(db)) == before


def test_cli_failed_import_into_a_new_path_leaves_no_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "new.db"
    source = tmp_path / "in.jsonl"
    source.write_bytes(_line(stream="payment-P1") + b"\n" + b'{"stream": "payment-P1"' + b"\n")
    code, _, err = _cli(capsys, "--db", str(db), "import", str(source))
    assert code == 2, err
    assert f"{source}:2" in err
    assert not any(tmp_path.glob("new.db*")), "a failed import created an empty store"
    missing = tmp_path / "missing.jsonl"
    code, _, err = _cli(capsys, "--db", str(db), "import", str(missing))
    assert code == 2
    assert not any(tmp_path.glob("new.db*"))


def test_cli_export_then_import_reproduces_the_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first, second = tmp_path / "a.db", tmp_path / "b.db"
    _run(lambda: _build(first, 5))

    async def more() -> None:
        async with open_store(first) as store:
            await store.append(
                "channel-huabei", [status("huabei", "maintenance")], causation_id="ops-1"
            )
            await store.append(f"account-{HOSTILE[0]}", [opened(HOSTILE[0])])

    _run(more)
    exported = tmp_path / "out.jsonl"
    assert _cli(capsys, "--db", str(first), "export", str(exported))[0] == 0
    code, stdout, _ = _cli(capsys, "--db", str(first), "export")
    assert code == 0
    assert stdout.encode() == exported.read_bytes()
    code, out, err = _cli(capsys, "--db", str(second), "import", str(exported))
    assert code == 0, err
    assert "18" in out
    originals, copies = _run(lambda: _records(first)), _run(lambda: _records(second))
    assert len(copies) == 18
    assert [
        (r.event_id, r.stream, r.version, r.event, r.correlation_id, r.causation_id) for r in copies
    ] == [
        (r.event_id, r.stream, r.version, r.event, r.correlation_id, r.causation_id)
        for r in originals
    ]
    assert copies == originals
    a_report, b_report = _run(lambda: _report(first)), _run(lambda: _report(second))
    assert b_report.ok
    assert b_report.head_hash == a_report.head_hash
    code, out, _ = _cli(capsys, "--db", str(second), "verify", "--json")
    assert code == 0
    assert json.loads(out)["head_hash"] == a_report.head_hash
    # importing the same file again adds nothing
    code, out, _ = _cli(capsys, "--db", str(second), "import", "--json", str(exported))
    assert code == 0
    assert json.loads(out)["appended"] == 0
    assert json.loads(out)["skipped"] == 18
    assert _run(lambda: _report(second)) == b_report


@pytest.mark.parametrize("readonly", [False, True])
def test_unusable_paths_are_store_errors(tmp_path: Path, readonly: bool) -> None:
    for path in (tmp_path, tmp_path / "no" / "such" / "dir.db"):

        async def attempt(path: Path = path) -> None:
            async with open_store(path, readonly=readonly):
                pass

        with pytest.raises(StoreError):
            _run(attempt)
    assert list(tmp_path.iterdir()) == []


def test_import_spanning_chunks_is_all_or_nothing(tmp_path: Path) -> None:
    ids = [str(uuid.uuid4()) for _ in range(12)]

    def items(fail_at: int | None) -> Iterator[ImportItem]:
        for n in range(12):
            if n == fail_at:
                raise RuntimeError("the source broke")
            yield ImportItem(
                stream=f"payment-P{n % 3}",
                event=attempted(f"P{n % 3}", n + 1),
                event_id=ids[n],
                line=n + 1,
            )

    async def go() -> None:
        async with open_store(tmp_path / "ledger.db") as store:
            assert isinstance(store, SQLiteEventStore)
            with pytest.raises(RuntimeError, match="broke"):
                await store.import_events(items(11), chunk=5)
            assert await store.head() == 0
            bad = [*items(None)]
            bad[8] = ImportItem(stream="payment-P9", event=attempted("P1"), line=9)
            with pytest.raises(FormatError) as info:
                await store.import_events(bad, chunk=5)
            assert info.value.line == 9
            assert await store.head() == 0
            first = await store.import_events(items(None), chunk=5)
            assert (first.appended, first.first_position, first.last_position) == (12, 1, 12)
            again = list(items(None))[3:]
            again.append(ImportItem(stream="payment-P7", event=attempted("P7"), line=13))
            second = await store.import_events(again, chunk=4)
            assert (second.appended, second.skipped, second.first_position) == (1, 9, 13)
            records = await collect(store.read_all())
            assert [r.event_id for r in records[:12]] == ids
            assert [r.version for r in records if r.stream == "payment-P0"] == [1, 2, 3, 4]
            assert (await store.verify()).ok

    _run(go)


def test_wait_for_append_sees_another_connection(tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    _run(lambda: _build(db, 0))
    woke: list[int] = []

    async def go() -> None:
        async with open_store(db, readonly=True) as reader, open_store(db) as writer:

            async def waiter() -> None:
                woke.append(await reader.wait_for_append(1))

            with anyio.fail_after(20):  # a hang guard; the reader polls for other writers
                async with anyio.create_task_group() as tg:
                    tg.start_soon(waiter)
                    await anyio.sleep(0.1)
                    assert woke == []
                    await writer.append("payment-P1", [requested("P1"), attempted("P1")])

    _run(go)
    assert woke == [3]


@pytest.mark.parametrize("durability", ["full", "normal"])
def test_durability_modes_keep_appends_across_reopen(tmp_path: Path, durability: Any) -> None:
    db = tmp_path / "ledger.db"

    async def go() -> int:
        async with open_store(db, durability=durability) as store:
            await store.append("payment-P1", [requested("P1")])
        async with open_store(db, durability=durability) as store:
            await store.append("payment-P1", [attempted("P1")], expected_version=1)
        async with open_store(db, readonly=True) as store:
            assert (await store.verify()).ok
            return await store.head()

    assert _run(go) == 2


def test_unknown_durability_is_refused(tmp_path: Path) -> None:
    async def go() -> None:
        async with open_store(tmp_path / "ledger.db", durability="sometimes"):  # type: ignore[arg-type]
            pass

    with pytest.raises(ValueError, match="durability"):
        _run(go)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("variable_limit", [32766, 100])
def test_large_groups_are_written_whole_in_multi_row_statements(
    tmp_path: Path, variable_limit: int
) -> None:
    """Groups are written with multi-row INSERTs of a power of two rows each, as many as the
    SQLite library's parameter limit allows (8 rows at a limit of 100): every row of every
    chunk lands, in order, whatever the row count."""
    db = tmp_path / "ledger.db"
    sizes = [1, 3, 255, 256, 257, 700]

    async def go() -> list[Record]:
        async with open_store(db) as store:
            assert isinstance(store, SQLiteEventStore)
            thread = store._thread  # lower its limit, as an old SQLite library has it
            assert thread is not None

            def lower(conn: sqlite3.Connection) -> int:
                return conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, variable_limit)

            await thread.run(lower)  # in the writer's own thread, which owns the connection
            for n, size in enumerate(sizes):
                events = [requested(f"P{n}")] + [attempted(f"P{n}", a) for a in range(1, size)]
                result = await store.append(f"payment-P{n}", events, expected_version=0)
                assert result.version == size
            assert (await store.verify()).ok
            return await collect(store.read_all())

    records = _run(go)
    assert [r.position for r in records] == list(range(1, sum(sizes) + 1))
    by_stream = [(r.stream, r.version) for r in records]
    assert by_stream == [
        (f"payment-P{n}", v) for n, size in enumerate(sizes) for v in range(1, size + 1)
    ]
