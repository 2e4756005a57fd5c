"""What only PostgreSQL shows of schema version 3 (the head's running total of summed amounts and
the log's Merkle tree, kept by the append path): a store of version 2 read as it is and upgraded
by a writable open into the store a new one is, a deployment's roles still working after the
upgrade, the ceiling on summed amounts held across processes, the tree after a fleet of
processes appended at once, and an edited node or frontier named by ``check_tree``.

Each test gets a database of its own (``pg_support``)."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

import anyio
import asyncpg
import pytest
from pg_support import admin, downgrade_to_2, fresh_database, run, sync_database
from store_contract import T0, opened
from test_tree import _build, _check

from ledger import EventStore, EventValidationError, ImportItem, open_store
from ledger.events import PaymentSettled
from ledger.merkle import Frontier, merkle_root
from ledger.postgres import PostgresEventStore
from ledger.store import MAX_SUMMED_MINOR
from ledger.tree import TREE_THRESHOLD, check_tree, log_root

WRITER: Final = Path(__file__).resolve().parent / "pg_writer.py"
BIG: Final = 2**62


def _pg(store: EventStore) -> PostgresEventStore:
    assert isinstance(store, PostgresEventStore)
    return store


def _settled(payment: str, amount: int, attempt: int = 1) -> PaymentSettled:
    return PaymentSettled(
        payment_id=payment,
        attempt=attempt,
        channel="bank_card",
        amount_minor=amount,
        occurred_at=T0,
    )


async def _head(url: str) -> tuple[int, int, Frontier]:
    """The head's position, running total and frontier, read behind the store's back."""
    async with admin(url) as conn:
        row = await conn.fetchrow("SELECT position, summed_minor, frontier FROM ledger_head")
    assert row is not None
    return int(row[0]), int(row[1]), Frontier.from_bytes(row[2])


async def _kept_nodes(url: str) -> dict[tuple[int, int], bytes]:
    async with admin(url) as conn:
        rows = await conn.fetch("SELECT level, idx, hash FROM ledger_tree")
    return {(int(r[0]), int(r[1])): bytes(r[2]) for r in rows}


async def _folded(store: EventStore) -> tuple[Frontier, dict[tuple[int, int], bytes]]:
    """The frontier and every perfect subtree at the kept levels, folded from the events'
    chain hashes."""
    frontier = Frontier()
    done = frontier.append(await store.leaf_hashes(1, await store.head()), threshold=TREE_THRESHOLD)
    return frontier, {(node.level, node.index): digest for node, digest in done}


async def _tree_is_the_fold(url: str, store: EventStore) -> None:
    """The head's frontier and every stored node are the fold of the events' chain hashes."""
    frontier, nodes = await _folded(store)
    position, _, kept = await _head(url)
    assert (kept, position) == (frontier, frontier.size)
    assert await _kept_nodes(url) == nodes
    report = await check_tree(store)
    assert report.ok, report
    assert report.nodes == len(nodes)


# --- the upgrade from schema version 2 --------------------------------------------------------

_WRITER_V2: Final = """
GRANT USAGE ON SCHEMA public TO {role};
GRANT SELECT ON ledger_meta TO {role};
GRANT SELECT, INSERT ON events TO {role};
GRANT SELECT, UPDATE ON ledger_head TO {role};
"""
_AUDITOR_V2: Final = """
GRANT USAGE ON SCHEMA public TO {role};
GRANT SELECT ON ledger_meta, events, ledger_head TO {role};
"""
"""What the README asked of a deployment's roles before schema version 3."""


@asynccontextmanager
async def _role(url: str, grants: str) -> AsyncIterator[str]:
    """A login role with ``grants`` (``{role}`` in them); yields its URL."""
    role, password = f"ledger_{uuid.uuid4().hex[:10]}", uuid.uuid4().hex
    async with admin(url) as conn:
        await conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{password}'")
        await conn.execute(grants.format(role=role))
    parts = urlsplit(url)
    try:
        yield urlunsplit(parts._replace(netloc=f"{role}:{password}@{parts.hostname}:{parts.port}"))
    finally:
        async with admin(url) as conn:
            await conn.execute(f"DROP OWNED BY {role}")
            await conn.execute(f"DROP ROLE {role}")


async def _schema(url: str) -> list[Any]:
    """The store's columns, constraints and locking function, to compare two stores."""
    async with admin(url) as conn:
        rows = await conn.fetch(
            "SELECT table_name::text, column_name::text, data_type::text, column_default::text "
            "FROM information_schema.columns WHERE table_schema = current_schema() "
            "UNION ALL SELECT conrelid::regclass::text, conname::text, contype::text, "
            "pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE connamespace = current_schema()::regnamespace "
            "UNION ALL SELECT 'function', proname::text, '', prosrc FROM pg_proc "
            "WHERE pronamespace = current_schema()::regnamespace ORDER BY 1, 2"
        )
    return [tuple(r) for r in rows]


@pytest.mark.anyio
async def test_a_version_2_store_reads_as_it_is_and_a_writable_open_upgrades_it() -> None:
    """A store written by this code, then its running total, frontier and tree dropped and its
    version set back to 2. Read-only, it reads as it is (the tree folded from the leaves when
    asked); a role that may not upgrade it appends as version 2 did; the owner's writable open
    sums the total over the log and folds the tree from every chain hash, and the store is then
    the one a new store is. The roles granted for version 2 go on appending (nodes included)
    and auditing."""
    async with fresh_database() as url, fresh_database() as new:
        async with open_store(new):
            pass
        async with open_store(url) as store:
            await _build(store, 7)
            await store.append("payment-S1", [_settled("S1", BIG)])
            await _tree_is_the_fold(url, store)
        async with admin(url) as conn:
            await downgrade_to_2(conn)
        assert await _schema(url) != await _schema(new)
        async with open_store(url, readonly=True) as store:
            assert _pg(store).schema_version == 2
            assert store.tree_threshold is None
            assert await store.tree_frontier() is None
            frontier, _ = await _folded(store)
            assert await store.tree_nodes([node for node, _ in frontier.nodes()]) == {}
            await _check(store, 7)  # every root and proof, folded from the leaves
            assert (await store.verify()).ok
        async with _role(url, _WRITER_V2) as writer, _role(url, _AUDITOR_V2) as auditor:
            async with open_store(writer) as store:  # may not upgrade: appends as version 2
                assert _pg(store).schema_version == 2
                await store.append("payment-S2", [_settled("S2", 5)])
            async with open_store(url) as store:  # the owner: upgraded
                assert _pg(store).schema_version == 3
                assert store.tree_threshold == TREE_THRESHOLD
                assert (await _head(url))[1] == BIG + 5
                await _tree_is_the_fold(url, store)
                await _check(store, 7)
                assert (await store.verify()).ok
                with pytest.raises(EventValidationError):  # the ceiling, at once
                    await store.append("payment-S3", [_settled("S3", MAX_SUMMED_MINOR - BIG)])
            assert await _schema(url) == await _schema(new)
            async with open_store(writer) as store:  # its role now inserts nodes too
                events = [opened(f"R{i}") for i in range(2 * 64)]
                await store.import_events(
                    [ImportItem(stream=f"account-R{i}", event=e) for i, e in enumerate(events)]
                )
                await store.append("payment-S3", [_settled("S3", 7)])
                await _tree_is_the_fold(url, store)
            async with open_store(auditor, readonly=True) as store:
                assert (await check_tree(store)).ok
                assert (await store.verify()).ok
                await _check(store, 8)
        assert (await _head(url))[1] == BIG + 12


async def _waiting(conn: asyncpg.Connection[asyncpg.Record], query: str) -> None:
    """Return once a backend running a statement that holds ``query`` waits for a lock (polled;
    the hang guard is the caller's)."""
    while True:
        waiting = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND strpos(query, $1) > 0",
            query,
        )
        if waiting:
            return
        await anyio.sleep(0.005)


@pytest.mark.anyio
async def test_an_append_planned_before_the_upgrade_committed_is_planned_again() -> None:
    """A version 2 writer's group that reached for the head while the owner was upgrading the
    store locks it once the upgrade has committed, with version 2's plan (no total, no tree):
    the head's frontier check refuses that write, and the group is planned again on the
    upgraded head and stored, the tree and the total with it."""
    async with fresh_database() as url:
        async with open_store(url) as store:
            await _build(store, 5)
        async with admin(url) as conn:
            await downgrade_to_2(conn)
        async with (
            _role(url, _WRITER_V2) as writer,
            open_store(writer) as old,
            admin(url) as holder,
            admin(url) as watcher,
        ):
            assert _pg(old).schema_version == 2
            results: list[Any] = []

            async def upgrade() -> None:
                async with open_store(url) as store:
                    results.append(_pg(store).schema_version)

            async def append() -> None:
                results.append(await old.append("payment-S1", [_settled("S1", 9)]))

            with anyio.fail_after(60):  # a hang guard
                tr = holder.transaction()
                await tr.start()
                await holder.execute("LOCK TABLE events IN ACCESS EXCLUSIVE MODE")
                async with anyio.create_task_group() as tg:
                    tg.start_soon(upgrade)  # holds the head table, then waits for the events
                    await _waiting(watcher, "amount_minor")
                    tg.start_soon(append)  # waits for the head the upgrade holds
                    await _waiting(watcher, "ledger_lock_head")
                    await tr.commit()
            assert results[0] == 3
            assert results[1].positions == (await old.head(),)
        async with open_store(url, readonly=True) as store:
            await _tree_is_the_fold(url, store)
            assert (await _head(url))[1] == 9
            assert (await store.verify()).ok


@pytest.mark.anyio
async def test_the_same_log_has_the_same_tree_on_sqlite_and_postgresql(tmp_path: Path) -> None:
    """The same events, imported into each backend, give the same chain, frontier, nodes and
    root."""
    items = [
        ImportItem(
            stream=f"account-A{i}",
            event=opened(f"A{i}"),
            event_id=str(uuid.UUID(int=i + 1)),
            recorded_at=T0,
        )
        for i in range(300)
    ]
    items.append(
        ImportItem(
            stream="payment-S1",
            event=_settled("S1", 5),
            event_id=str(uuid.UUID(int=999)),
            recorded_at=T0,
        )
    )
    async with fresh_database() as url:
        roots = []
        for target in (str(tmp_path / "ledger.db"), url):
            async with open_store(target) as store:
                await store.import_events(items[:200])
                await store.import_events(items[200:])
                frontier = await store.tree_frontier()
                assert frontier is not None
                nodes = await store.tree_nodes([n for n, _ in (await _folded(store))[0].nodes()])
                roots.append((await log_root(store), frontier, nodes))
        assert roots[0] == roots[1]
        assert roots[0][2]  # (nodes at level 8 and 5: the level-8 one is kept)


# --- the ceiling across processes -------------------------------------------------------------

_SETTLER: Final = """
import json, sys
import anyio
from datetime import UTC, datetime
from ledger import EventValidationError, open_store
from ledger.events import PaymentSettled

async def task(store, name, amount, counts):
    attempt = 0
    while True:
        attempt += 1
        event = PaymentSettled(payment_id=name, attempt=attempt, channel="bank_card",
                               amount_minor=amount, occurred_at=datetime(2026, 3, 1, tzinfo=UTC))
        try:
            await store.append(f"payment-{name}", [event])
        except EventValidationError:
            counts[1] += 1
            return
        counts[0] += 1

async def main(url, tag, tasks, amount):
    counts = [0, 0]
    async with open_store(url) as store:
        print("ready", flush=True)
        await anyio.to_thread.run_sync(sys.stdin.readline)
        async with anyio.create_task_group() as tg:
            for i in range(tasks):
                tg.start_soon(task, store, f"{tag}-{i}", amount, counts)
    print(json.dumps({"stored": counts[0], "refused": counts[1]}), flush=True)

anyio.run(main, sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
"""
"""A process of tasks, each appending settlements of one amount until one is refused."""


def test_the_ceiling_holds_across_processes() -> None:
    """Two processes of 4 tasks each append settlements of the same amount until the ceiling
    refuses one: together they store exactly as many as fit, however their transactions
    interleaved, and every task is refused once it is full."""
    amount = BIG // 40
    room = MAX_SUMMED_MINOR - BIG
    with sync_database() as url:

        async def prefill() -> None:
            async with open_store(url) as store:
                await store.append("payment-P0", [_settled("P0", BIG)])

        run(prefill)
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", _SETTLER, url, tag, "4", str(amount)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for tag in "AB"
        ]
        try:
            for proc in procs:
                assert proc.stdout is not None
                assert proc.stdout.readline() == "ready\n"
            outcomes = []
            for proc in procs:
                out, err = proc.communicate("go\n", timeout=120)
                assert proc.returncode == 0, err
                outcomes.append(json.loads(out.splitlines()[-1]))
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.communicate()
        assert sum(o["stored"] for o in outcomes) == room // amount
        assert [o["refused"] for o in outcomes] == [4, 4]

        async def check() -> None:
            async with open_store(url, readonly=True) as store:
                assert await store.head() == 1 + room // amount
                assert (await store.verify()).ok
            assert (await _head(url))[1] == BIG + room // amount * amount

        run(check)


# --- the tree after a fleet of processes -----------------------------------------------------


@pytest.mark.slow
def test_the_tree_after_four_processes_of_64_tasks_appending_at_once() -> None:
    """4 processes x 64 tasks append single events at once (group commits of every size,
    interleaved across processes): the kept tree is the fold of the chain hashes."""
    tasks, calls = 64, 3
    with sync_database() as url:

        async def prefill() -> None:
            async with open_store(url) as store:
                await store.append("account-A1", [opened("A1")])

        run(prefill)
        procs = [
            subprocess.Popen(
                [sys.executable, str(WRITER), url, tag, str(calls), str(tasks), "1"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for tag in "ABCD"
        ]
        try:
            for proc in procs:
                assert proc.stdout is not None
                assert proc.stdout.readline() == "ready\n"
            for proc in procs:
                _, err = proc.communicate("go\n", timeout=120)
                assert proc.returncode == 0, err
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.communicate()

        async def check() -> None:
            async with open_store(url, readonly=True) as store:
                head = await store.head()
                assert head == 1 + 4 * tasks * calls
                report = await check_tree(store)
                assert report.ok, report
                assert report.nodes == len((await _folded(store))[1]) > 0
                size, root = await log_root(store)
                assert (size, root) == (head, merkle_root(await store.leaf_hashes(1, head)))
                assert (await store.verify()).ok
                await _tree_is_the_fold(url, store)

        run(check)


# --- edits behind the store's back -----------------------------------------------------------


@pytest.mark.anyio
async def test_an_edited_node_or_frontier_is_named() -> None:
    async with fresh_database() as url:
        async with open_store(url) as store:
            await _build(store, 3)
            await _build(store, 4)
        async with admin(url) as conn:
            row = await conn.fetchrow(
                "SELECT level, idx, hash FROM ledger_tree ORDER BY level, idx LIMIT 1"
            )
            assert row is not None
            level, idx, original = row
            await conn.execute(
                "UPDATE ledger_tree SET hash = sha256(hash) WHERE level = $1 AND idx = $2",
                level,
                idx,
            )
        async with open_store(url, readonly=True) as store:
            report = await check_tree(store)
        assert not report.ok
        assert report.node == (level, idx)
        assert report.position == (idx << level) + 1
        async with admin(url) as conn:
            await conn.execute(
                "UPDATE ledger_tree SET hash = $3 WHERE level = $1 AND idx = $2",
                level,
                idx,
                original,
            )
            await conn.execute(  # the last hash of the frontier: its size (and check) stay
                "UPDATE ledger_head SET frontier = overlay(frontier PLACING "
                "sha256(substring(frontier FROM length(frontier) - 31)) "
                "FROM length(frontier) - 31)"
            )
        async with open_store(url, readonly=True) as store:
            report = await check_tree(store)
        assert not report.ok
        assert report.reason is not None
        assert "frontier" in report.reason
        async with admin(url) as conn:
            await conn.execute("DELETE FROM ledger_tree")
        async with open_store(url, readonly=True) as store:
            report = await check_tree(store)
        assert not report.ok
        assert report.reason is not None
        assert "missing" in report.reason
