"""The store contract against the PostgreSQL backend, and what only a shared server can show:
four processes appending while a reader follows the tail, a transaction that holds positions
holding back the next writer and every reader, a writer killed mid-stream, a connection
terminated mid-append, cancellation, LISTEN/NOTIFY surviving a dropped connection, tampering
found by ``verify`` (and ``payledger verify``), and an export from SQLite imported into
PostgreSQL and exported again, line for line.

Each test gets a database of its own (``pg_support.fresh_database``)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import warnings
from collections.abc import AsyncIterator, Iterable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import anyio
import asyncpg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pg_support import admin, fresh_database, run, sync_database
from store_contract import HOSTILE, StoreContract, attempted, collect, opened, requested, status

from ledger import (
    AppendResult,
    EventStore,
    ImportItem,
    IntegrityError,
    LedgerError,
    Record,
    StoreError,
    open_store,
)
from ledger.postgres import PostgresEventStore
from replay.cli import main

WRITER = Path(__file__).resolve().parent / "pg_writer.py"


@asynccontextmanager
async def _store() -> AsyncIterator[EventStore]:
    async with fresh_database() as url, open_store(url) as store:
        yield store


class TestPostgresStore(StoreContract):
    def make_store(self) -> AbstractAsyncContextManager[EventStore]:
        return _store()


# --- helpers -------------------------------------------------------------------------------


def _pg(store: EventStore) -> PostgresEventStore:
    assert isinstance(store, PostgresEventStore)
    return store


def _pid(conn: asyncpg.Connection[asyncpg.Record] | None) -> int:
    assert conn is not None
    return conn.get_server_pid()


async def _build(url: str, n_payments: int = 4) -> None:
    """A store of ``3 * n_payments + 1`` events."""
    async with open_store(url) as store:
        await store.append("account-A1", [opened("A1")])
        for i in range(n_payments):
            await store.append(
                f"payment-P{i}",
                [requested(f"P{i}"), attempted(f"P{i}"), attempted(f"P{i}", 2)],
                correlation_id=f"o-{i}",
            )


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _writer(url: str, tag: str, calls: int, tasks: int, events: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(WRITER), url, tag, str(calls), str(tasks), str(events)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _ready(proc: subprocess.Popen[str]) -> None:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line == "ready\n", proc.stderr.read() if proc.stderr else line


def _go(proc: subprocess.Popen[str]) -> None:
    assert proc.stdin is not None
    proc.stdin.write("go\n")
    proc.stdin.flush()


def _acks(lines: Iterable[str], events: int) -> dict[int, str]:
    """Every acknowledged position and its stream, from a writer's complete output lines."""
    acked: dict[int, str] = {}
    for line in lines:
        if not line.endswith("\n") or line == "ready\n":
            continue
        stream, *positions = line.split()
        assert len(positions) == events
        assert [int(p) for p in positions] == list(
            range(int(positions[0]), int(positions[0]) + events)
        )
        for p in positions:
            assert int(p) not in acked
            acked[int(p)] = stream
    return acked


class _Gate:
    """Holds a store's group commits just before ``COMMIT`` (rows written, head row locked)."""

    def __init__(self, store: EventStore, monkeypatch: pytest.MonkeyPatch) -> None:
        writer = _pg(store)._writer
        original = writer._commit
        self.holding = anyio.Event()
        self.release = anyio.Event()
        self.commits = 0

        async def held(conn: asyncpg.Connection[asyncpg.Record]) -> None:
            self.holding.set()
            await self.release.wait()
            await original(conn)
            self.commits += 1

        monkeypatch.setattr(writer, "_commit", held)


async def _wait_for_lock(conn: asyncpg.Connection[asyncpg.Record], pid: int) -> None:
    """Return once backend ``pid`` waits for a lock (polled; the hang guard is the caller's)."""
    while True:
        wait = await conn.fetchval(
            "SELECT wait_event_type FROM pg_stat_activity WHERE pid = $1", pid
        )
        if wait == "Lock":
            return
        await anyio.sleep(0.005)


# --- many processes, one log ---------------------------------------------------------------


@pytest.mark.slow
def test_four_processes_append_while_a_reader_follows_the_tail() -> None:
    """4 processes x 64 tasks append; a reader follows with wait_for_append + read_all: it sees
    1, 2, 3, ... with no gap, no skip and no repeat, and every acknowledged append."""
    tasks, calls, events = 64, 4, 2
    total = 4 * tasks * calls * events
    with sync_database() as url:
        run(lambda: _build(url, 0))  # the schema, and position 1
        procs = [_writer(url, tag, calls, tasks, events) for tag in "ABCD"]
        try:
            for proc in procs:
                _ready(proc)

            async def follow() -> list[Record]:
                seen: list[Record] = []
                async with open_store(url, readonly=True) as reader:
                    cursor = await reader.head()
                    for proc in procs:
                        _go(proc)
                    with anyio.fail_after(120):  # a hang guard
                        while cursor < total + 1:
                            await reader.wait_for_append(cursor)
                            async for rec in reader.read_all(cursor + 1):
                                assert rec.position == cursor + 1  # no gap, no skip, no repeat
                                seen.append(rec)
                                cursor = rec.position
                return seen

            seen = run(follow)
            acked: dict[int, str] = {}
            for proc in procs:
                out, err = proc.communicate(timeout=120)
                assert proc.returncode == 0, err
                acked.update(_acks(out.splitlines(keepends=True), events))
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.communicate()
        assert sorted(acked) == list(range(2, total + 2))
        assert [r.position for r in seen] == list(range(2, total + 2))
        assert all(acked[r.position] == r.stream for r in seen)
        versions: dict[str, list[int]] = {}
        for r in seen:
            versions.setdefault(r.stream, []).append(r.version)
        assert len(versions) == 4 * tasks
        assert all(vs == list(range(1, calls * events + 1)) for vs in versions.values())

        async def check() -> None:
            async with open_store(url, readonly=True) as store:
                report = await store.verify()
                assert report.ok, report
                assert report.head_position == total + 1

        run(check)


@pytest.mark.anyio
async def test_positions_held_by_an_open_transaction_hold_back_writers_and_readers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two connections, deterministic: the first transaction takes positions 2-3 and stops before
    COMMIT. The second writer (another store object: another connection, as another process
    has) cannot take position 4 before the first commits: it waits for the head row. So the
    interleaving that loses events elsewhere, the first to take a position committing last,
    cannot happen, and a reader following the tail sees nothing past 1 until 2-3 commit, then
    2, 3, 4 in order."""
    async with (
        fresh_database() as url,
        open_store(url) as first,
        open_store(url) as second,
        open_store(url, readonly=True) as reader,
        admin(url) as adm,
    ):
        await first.append("account-A0", [opened("A0")])
        gate = _Gate(first, monkeypatch)
        results: dict[str, AppendResult] = {}
        followed: list[int] = []

        async def append(name: str, store: EventStore, stream: str, n: int) -> None:
            payment = stream.removeprefix("payment-")
            events = [attempted(payment, k + 1) for k in range(n)]
            results[name] = await store.append(stream, events)

        async def follow() -> None:
            cursor = 1
            while cursor < 4:
                await reader.wait_for_append(cursor)
                async for rec in reader.read_all(cursor + 1):
                    assert rec.position == cursor + 1
                    followed.append(rec.position)
                    cursor = rec.position

        with anyio.fail_after(30):  # a hang guard
            async with anyio.create_task_group() as tg:
                tg.start_soon(follow)
                tg.start_soon(append, "first", first, "payment-P1", 2)
                await gate.holding.wait()  # positions 2 and 3 written, not committed
                tg.start_soon(append, "second", second, "payment-P2", 1)
                await _wait_for_lock(adm, _pid(_pg(second).writer_connection))
                assert await reader.head() == 1
                assert [r.position for r in await collect(reader.read_all())] == [1]
                assert await collect(reader.read_stream("payment-P1")) == []
                assert followed == []
                assert "second" not in results
                gate.release.set()
        assert results["first"].positions == (2, 3)
        assert results["second"].positions == (4,)
        assert followed == [2, 3, 4]
        assert (await reader.verify()).ok


@pytest.mark.slow
def test_killed_writer_loses_no_acknowledged_append() -> None:
    with sync_database() as url:
        run(lambda: _build(url, 0))
        proc = _writer(url, "K", -1, 4, 3)
        try:
            _ready(proc)
            _go(proc)
            assert proc.stdout is not None
            lines: list[str] = []
            while len(lines) < 60:
                line = proc.stdout.readline()
                assert line, proc.stderr.read() if proc.stderr else "the writer died"
                lines.append(line)
            os.kill(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        assert proc.returncode == -signal.SIGKILL
        lines.extend(out.splitlines(keepends=True))
        acked = _acks(lines, 3)
        assert len(acked) >= 180

        async def reopen() -> tuple[bool, list[Record]]:
            async with open_store(url) as store:
                await store.append("account-A1", [opened("A1")])  # the head row is free again
                return (await store.verify()).ok, await collect(store.read_all())

        ok, records = run(reopen)
        assert ok
        by_position = {r.position: r for r in records}
        for position, stream in acked.items():
            assert by_position[position].stream == stream
        per_stream: dict[str, list[int]] = {}
        for r in records[1:-1]:
            per_stream.setdefault(r.stream, []).append(r.position)
        for positions in per_stream.values():
            assert len(positions) % 3 == 0  # nothing partial
            for k in range(0, len(positions), 3):
                assert positions[k : k + 3] == list(range(positions[k], positions[k] + 3))


# --- a connection lost mid-append ----------------------------------------------------------


@pytest.mark.anyio
async def test_terminated_connection_mid_append_fails_that_call_and_the_store_recovers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with fresh_database() as url, open_store(url) as store, admin(url) as adm:
        await store.append("account-A0", [opened("A0")])
        before = await store.verify()
        gate = _Gate(store, monkeypatch)
        errors: list[LedgerError] = []

        async def doomed() -> None:
            with pytest.raises(LedgerError) as info:
                await store.append("payment-P1", [requested("P1"), attempted("P1")])
            errors.append(info.value)

        with anyio.fail_after(30):  # a hang guard
            async with anyio.create_task_group() as tg:
                tg.start_soon(doomed)
                await gate.holding.wait()  # rows written, COMMIT not yet sent
                pid = _pid(_pg(store).writer_connection)
                assert await adm.fetchval("SELECT pg_terminate_backend($1, 10000)", pid)
                gate.release.set()
        (error,) = errors
        assert isinstance(error, StoreError)
        assert "connection" in str(error)
        assert "\n" not in str(error)
        assert await store.head() == 1
        assert await store.verify() == before
        assert await collect(store.read_stream("payment-P1")) == []
        result = await store.append("payment-P1", [requested("P1")], expected_version=0)
        assert result.positions == (2,)
        assert (await store.verify()).ok


@pytest.mark.anyio
async def test_a_connection_closed_while_idle_is_replaced_silently() -> None:
    async with fresh_database() as url, open_store(url) as store, admin(url) as adm:
        await store.append("account-A0", [opened("A0")])
        await store.head()  # a reading connection, pooled
        pids = await adm.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            url.rsplit("/", 1)[1],
        )
        assert len(pids) >= 2
        for row in pids:
            assert await adm.fetchval("SELECT pg_terminate_backend($1, 10000)", row["pid"])
        result = await store.append("account-A0", [opened("A0", 1)], expected_version=1)
        assert result.positions == (2,)
        assert await store.head() == 2


@pytest.mark.anyio
async def test_a_commit_whose_answer_is_lost_is_looked_up(monkeypatch: pytest.MonkeyPatch) -> None:
    """The connection drops after COMMIT was sent: the store asks a new connection whether the
    group's last event is stored, and answers the callers accordingly."""
    async with fresh_database() as url, open_store(url) as store:
        writer = _pg(store)._writer
        original = writer._commit

        async def committed_then_lost(conn: asyncpg.Connection[asyncpg.Record]) -> None:
            await original(conn)
            raise asyncpg.ConnectionDoesNotExistError("connection was closed (simulated)")

        monkeypatch.setattr(writer, "_commit", committed_then_lost)
        result = await store.append("payment-P1", [requested("P1"), attempted("P1")])
        assert result.positions == (1, 2)
        assert [r.position for r in await collect(store.read_all())] == [1, 2]

        async def lost_unknown(conn: asyncpg.Connection[asyncpg.Record]) -> None:
            raise asyncpg.ConnectionDoesNotExistError("connection was closed (simulated)")

        async def cannot_tell(row: object) -> None:
            return None

        monkeypatch.setattr(writer, "_commit", lost_unknown)
        monkeypatch.setattr(writer, "_stored", cannot_tell)
        with pytest.raises(StoreError, match="unknown"):
            await store.append("payment-P2", [requested("P2")])
        monkeypatch.undo()
        assert (await store.verify()).ok
        assert (await store.append("payment-P3", [requested("P3")])).positions == (3,)


# --- group commit, cancellation ------------------------------------------------------------


@pytest.mark.anyio
async def test_concurrent_appends_share_transactions(monkeypatch: pytest.MonkeyPatch) -> None:
    async with fresh_database() as url, open_store(url) as store:
        gate = _Gate(store, monkeypatch)
        gate.release.set()
        results: list[AppendResult] = []

        async def append(i: int) -> None:
            results.append(await store.append(f"payment-P{i}", [requested(f"P{i}")]))

        with anyio.fail_after(30):
            async with anyio.create_task_group() as tg:
                for i in range(64):
                    tg.start_soon(append, i)
        assert sorted(p for r in results for p in r.positions) == list(range(1, 65))
        assert gate.commits < 64


# Appends (alone and in group commits) and imports (in chunks of 50 too) stopped by
# ``asyncio.wait_for`` and anyio cancel scopes at moments hypothesis chooses, each call checked
# all or nothing and the store verified afterwards: ``test_cancellation.py``, on every backend.


@pytest.mark.parametrize("what", ["append", "import"])
@pytest.mark.anyio
async def test_a_cancellation_during_commit_waits_for_it(
    what: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cancelled while COMMIT is in flight, the call waits for it to end and returns what it
    stored, as on SQLite (a call that raises the cancellation stored nothing): the store is
    as after, and the caller knows it."""
    async with fresh_database() as url, open_store(url) as store:
        gate = _Gate(store, monkeypatch)
        returned: list[tuple[int | None, int | None]] = []
        with anyio.fail_after(30):  # a hang guard
            async with anyio.create_task_group() as tg:
                scope = anyio.CancelScope()

                async def call() -> None:
                    with scope:
                        if what == "append":
                            done = await store.append(
                                "payment-P1", [requested("P1"), attempted("P1")]
                            )
                            returned.append((done.positions[0], done.positions[-1]))
                        else:
                            result = await store.import_events(
                                [
                                    ImportItem(stream="payment-P1", event=requested("P1")),
                                    ImportItem(stream="payment-P1", event=attempted("P1")),
                                ]
                            )
                            returned.append((result.first_position, result.last_position))

                tg.start_soon(call)
                await gate.holding.wait()
                scope.cancel()
                await anyio.wait_all_tasks_blocked()
                gate.release.set()
        assert scope.cancel_called
        assert returned == [(1, 2)]
        assert await store.head() == 2
        assert (await store.verify()).ok


# --- subscriptions -------------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_follower_survives_its_listening_connection_being_killed() -> None:
    """LISTEN/NOTIFY only wakes the follower; it re-reads from its cursor, so a dropped
    listening connection (killed here every fifth append) loses, repeats and reorders nothing."""
    n = 30
    followed: list[int] = []
    async with (
        fresh_database() as url,
        open_store(url) as writer,
        open_store(url, readonly=True) as follower,
        admin(url) as adm,
    ):

        async def follow() -> None:
            cursor = 0
            while cursor < n:
                await follower.wait_for_append(cursor)
                async for rec in follower.read_all(cursor + 1):
                    assert rec.position == cursor + 1
                    followed.append(rec.position)
                    cursor = rec.position

        with anyio.fail_after(60):  # a hang guard
            async with anyio.create_task_group() as tg:
                tg.start_soon(follow)
                for i in range(n):
                    listener = _pg(follower).listener_connection
                    if i % 5 == 0 and listener is not None and not listener.is_closed():
                        await adm.fetchval(
                            "SELECT pg_terminate_backend($1, 10000)", listener.get_server_pid()
                        )
                    await writer.append(f"payment-P{i}", [requested(f"P{i}")])
                    await anyio.sleep(0.01)
        assert followed == list(range(1, n + 1))


_CUT = st.one_of(st.just(0.0), st.floats(0.0, 0.03))
"""How long a wait runs before it is cut short: not at all, or into opening the listening
connection (about 10 ms on a local server: the password exchange, then LISTEN), reading the
head, or waiting."""


async def _sessions_left(url: str) -> int:
    """How many sessions other than this one are still connected to ``url``'s database once
    they have had a moment (up to 2 s) to end: a closed connection's server process ends
    shortly after."""
    async with admin(url) as adm:
        with anyio.move_on_after(2):
            while True:
                left = await adm.fetchval(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
                if left == 0:
                    break
                await anyio.sleep(0.01)
    return int(left)


def test_waits_cut_short_leave_nothing_behind() -> None:
    """Waits cut short after hypothesis-chosen delays (opening the listening connection,
    reading the head, waiting) leak no connection, and the next wait still works. Each
    example opens a new store object (so its first wait opens the listening connection
    afresh); once it is closed, no session of it is left on the server, and nothing warned
    meanwhile (an unclosed asyncpg connection warns when it is collected)."""
    with sync_database() as url:

        @settings(max_examples=40, deadline=None)
        @given(cuts=st.lists(_CUT, min_size=1, max_size=8))
        def check(cuts: list[float]) -> None:
            async def go() -> None:
                async with open_store(url, durability="normal") as store:
                    head = await store.head()
                    for cut in cuts:
                        with anyio.move_on_after(cut):
                            await store.wait_for_append(head)
                    await store.append("account-A1", [opened("A1", head)])
                    with anyio.fail_after(20):  # a hang guard
                        assert await store.wait_for_append(head) == head + 1
                assert await _sessions_left(url) == 0

            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                anyio.run(go, backend="asyncio")
            assert [str(w.message) for w in caught] == []

        check()


@pytest.mark.anyio
async def test_wait_for_append_is_woken_by_another_connection() -> None:
    woke: list[int] = []
    async with fresh_database() as url, open_store(url) as writer:
        await writer.append("account-A1", [opened("A1")])
        async with open_store(url, readonly=True) as reader:

            async def waiter() -> None:
                woke.append(await reader.wait_for_append(1))

            with anyio.fail_after(20):  # a hang guard
                async with anyio.create_task_group() as tg:
                    tg.start_soon(waiter)
                    while _pg(reader).listener_connection is None:  # noqa: ASYNC110 - polled
                        await anyio.sleep(0.01)
                    assert woke == []
                    await writer.append("payment-P1", [requested("P1"), attempted("P1")])
    assert woke == [3]


# --- schema, settings, triggers ------------------------------------------------------------


@pytest.mark.anyio
async def test_processes_racing_to_create_the_schema_create_it_once() -> None:
    async with fresh_database() as url:
        heads: list[int] = []

        async def open_and_append(i: int) -> None:
            async with open_store(url) as store:
                await store.append(f"payment-P{i}", [requested(f"P{i}")])
                heads.append(await store.head())

        with anyio.fail_after(30):
            async with anyio.create_task_group() as tg:
                for i in range(4):
                    tg.start_soon(open_and_append, i)
        async with open_store(url, readonly=True) as store:
            assert await store.head() == 4
            assert (await store.verify()).ok


@pytest.mark.parametrize(("durability", "expected"), [("full", "on"), ("normal", "off")])
@pytest.mark.anyio
async def test_session_settings(durability: str, expected: str) -> None:
    async with fresh_database() as url:
        async with open_store(url, durability=durability) as store:  # type: ignore[arg-type]
            conn = _pg(store).writer_connection
            assert conn is not None
            assert await conn.fetchval("SHOW synchronous_commit") == expected
            assert await conn.fetchval("SHOW default_transaction_read_only") == "off"
            assert (await _pg(store).fetch("SHOW default_transaction_read_only"))[0][0] == "on"
            assert (await _pg(store).fetch("SHOW application_name"))[0][0] == "payledger"
        async with open_store(url, readonly=True) as store:
            assert _pg(store).writer_connection is None
            assert (await _pg(store).fetch("SHOW default_transaction_read_only"))[0][0] == "on"


@pytest.mark.anyio
async def test_events_cannot_be_changed_even_by_a_superuser() -> None:
    async with fresh_database() as url:
        await _build(url, 1)
        async with admin(url) as conn:
            for sql in (
                "UPDATE events SET data = '{}' WHERE position = 1",
                "DELETE FROM events WHERE position = 4",
                "TRUNCATE events",
            ):
                with pytest.raises(asyncpg.RaiseError, match="immutable"):
                    await conn.execute(sql)
        async with open_store(url, readonly=True) as store:
            report = await store.verify()
            assert report.ok
            assert report.head_position == 4


# --- tampering -----------------------------------------------------------------------------

_COPY_13 = (
    "INSERT INTO events SELECT {position}, stream, version + 1, type, schema, occurred_at, "
    "recorded_at, gen_random_uuid(), correlation_id, causation_id, data, hash "
    "FROM events WHERE position = 13"
)


@pytest.mark.parametrize(
    ("statements", "bad"),
    [
        (["UPDATE events SET data = replace(data, '3000000', '3000001') WHERE position = 4"], 4),
        (["UPDATE events SET stream = 'payment-Q' WHERE position = 6"], 6),
        (["UPDATE events SET recorded_at = recorded_at + 1 WHERE position = 2"], 2),
        (["UPDATE events SET correlation_id = NULL WHERE position = 3"], 3),
        (["DELETE FROM events WHERE position = 5"], 5),
        (["DELETE FROM events WHERE position = 13"], 13),
        ([_COPY_13.format(position=14)], 14),
        ([_COPY_13.format(position=20)], 14),
        (["UPDATE events SET version = 9 WHERE position = 7"], 7),
        (
            [
                "ALTER TABLE ledger_head DROP CONSTRAINT ledger_head_frontier_at_head",
                "UPDATE ledger_head SET position = 12",
            ],
            13,
        ),
        (["UPDATE ledger_head SET hash = sha256(hash)"], 13),
        (["UPDATE ledger_head SET summed_minor = summed_minor + 1"], 13),
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
        "head-hash",
        "head-summed",
    ],
)
def test_tampering_is_found(
    capsys: pytest.CaptureFixture[str], statements: list[str], bad: int
) -> None:
    """A superuser disables the triggers (``session_replication_role = replica``) and alters the
    log: ``verify`` and ``payledger verify`` name the first bad position."""
    with sync_database() as url:
        run(lambda: _build(url))
        code, out, _ = _cli(capsys, "--db", url, "verify")
        assert code == 0, out
        assert "ok" in out

        async def tamper() -> None:
            async with admin(url) as conn:
                await conn.execute("SET session_replication_role = replica")
                for sql in statements:
                    await conn.execute(sql)

        run(tamper)

        async def check() -> None:
            async with open_store(url, readonly=True) as store:
                report = await store.verify()
                assert not report.ok
                assert report.first_bad_position == bad
                assert report.reason
                with pytest.raises(IntegrityError) as info:
                    await _pg(store).check()
                assert info.value.position == bad
                positions = [r.position for r in await collect(store.read_all())]
                assert all(p <= 13 for p in positions)  # reads stop at the recorded head

        run(check)
        code, out, _ = _cli(capsys, "--db", url, "verify")
        assert code == 1
        assert f"first bad position {bad}" in out
        code, out, _ = _cli(capsys, "--db", url, "verify", "--json")
        assert code == 1
        assert json.loads(out)["first_bad_position"] == bad


# --- moving a log between backends ---------------------------------------------------------


def test_sqlite_export_imported_into_postgres_exports_line_for_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "ledger.db"

    async def build_sqlite() -> None:
        async with open_store(db) as store:
            await store.append("account-A1", [opened("A1")])
            for i in range(5):
                await store.append(
                    f"payment-P{i}",
                    [requested(f"P{i}"), attempted(f"P{i}"), attempted(f"P{i}", 2)],
                    correlation_id=f"o-{i}",
                    causation_id=f"c-{i}",
                )
            await store.append("channel-huabei", [status("huabei", "maintenance")])
            for value in HOSTILE:
                await store.append(f"account-{value}", [opened(value)], correlation_id=value)

    run(build_sqlite)
    first, second = tmp_path / "sqlite.jsonl", tmp_path / "postgres.jsonl"
    assert _cli(capsys, "--db", str(db), "export", str(first))[0] == 0
    lines = first.read_bytes().splitlines()
    assert len(lines) == 17 + len(HOSTILE)
    with sync_database() as url:
        code, out, err = _cli(capsys, "--db", url, "import", str(first))
        assert code == 0, err
        assert str(len(lines)) in out
        assert _cli(capsys, "--db", url, "export", str(second))[0] == 0
        assert second.read_bytes() == first.read_bytes()
        code, out, _ = _cli(capsys, "--db", url, "verify", "--json")
        assert code == 0
        _, sqlite_out, _ = _cli(capsys, "--db", str(db), "verify", "--json")
        assert json.loads(out)["head_hash"] == json.loads(sqlite_out)["head_hash"]
        code, out, _ = _cli(capsys, "--db", url, "import", "--json", str(first))
        assert code == 0
        assert (json.loads(out)["appended"], json.loads(out)["skipped"]) == (0, len(lines))
