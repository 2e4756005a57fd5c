"""The log's Merkle tree as every backend keeps it (CONTRACT section 8, ``ledger.tree``): the
root, every inclusion and consistency proof and the kept nodes agree with a straight fold of the
events' chain hashes, whatever mix of single appends, group commits and imports built the log;
an older SQLite store gets its tree when first opened for writing; a stored node or frontier
edited behind the store's back is named."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

import anyio
import pytest
from backends import Backend
from old_stores import downgrade
from store_contract import opened, requested

from ledger import ImportItem, open_store
from ledger.events import stream_of
from ledger.merkle import merkle_root, verify_consistency, verify_inclusion
from ledger.store import EventStore
from ledger.tree import check_tree, consistency, folded_root, inclusion, log_root

pytestmark = pytest.mark.anyio


async def _build(store: EventStore, seed: int) -> None:
    """Single appends, a burst of concurrent ones (group commits) and an import."""
    rng = random.Random(seed)
    for i in range(rng.randrange(1, 40)):
        await store.append(f"account-S{seed}-{i}", [opened(f"S{seed}-{i}")])

    async def one(i: int) -> None:
        await store.append(f"payment-G{seed}-{i}", [requested(f"G{seed}-{i}")])

    async with anyio.create_task_group() as tg:
        for i in range(rng.randrange(10, 90)):
            tg.start_soon(one, i)
    items = [
        ImportItem(stream=stream_of(e), event=e)
        for e in (opened(f"I{seed}-{i}") for i in range(rng.randrange(1, 150)))
    ]
    await store.import_events(items)


async def _check(store: EventStore, seed: int) -> None:
    size, root = await log_root(store)
    assert size == await store.head()
    leaves = await store.leaf_hashes(1, size)
    assert root == merkle_root(leaves) == await folded_root(store, size)
    assert (await check_tree(store)).ok
    rng = random.Random(seed)
    for _ in range(12):
        n = rng.randrange(1, size + 1)
        i = rng.randrange(1, n + 1)
        m = rng.randrange(0, n + 1)
        _, root_n = await log_root(store, n)
        _, root_m = await log_root(store, m)
        assert root_n == merkle_root(leaves[:n])
        proof = await inclusion(store, i, n)
        assert verify_inclusion(leaves[i - 1], i - 1, n, proof.audit_path, root_n)
        assert not verify_inclusion(leaves[i - 1], i - 1, n, proof.audit_path, root_m) or (
            root_m == root_n
        )
        step = await consistency(store, m, n)
        assert verify_consistency(m, n, root_m, root_n, step.proof)


@pytest.mark.parametrize("seed", [1, 2])
async def test_the_kept_tree_is_the_fold_of_the_chain_hashes(backend: Backend, seed: int) -> None:
    async with backend.store() as store:
        await _build(store, seed)
        await _check(store, seed)
        await _build(store, seed + 10)
        await _check(store, seed + 10)


async def test_an_older_sqlite_store_gets_its_tree_when_opened_for_writing(
    tmp_path: Path,
) -> None:
    db = tmp_path / "ledger.db"
    async with open_store(db) as store:
        await _build(store, 7)
    downgrade(db, 2)
    async with open_store(db, readonly=True) as store:  # read as it is: folded from the leaves
        assert store.tree_threshold is None
        await _check(store, 7)
    async with open_store(db) as store:  # migrated: kept from now on
        assert store.tree_threshold is not None
        await _check(store, 7)
        await _build(store, 8)
        await _check(store, 8)


async def test_an_edited_node_or_frontier_is_named(tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    async with open_store(db) as store:
        await _build(store, 3)
        await _build(store, 4)
    conn = sqlite3.connect(db)
    level, idx = conn.execute("SELECT level, idx FROM ledger_tree ORDER BY level, idx").fetchone()
    conn.execute(
        "UPDATE ledger_tree SET hash = zeroblob(32) WHERE level = ? AND idx = ?", (level, idx)
    )
    conn.commit()
    conn.close()
    async with open_store(db, readonly=True) as store:
        report = await check_tree(store)
    assert not report.ok
    assert report.node == (level, idx)
    assert report.position == (idx << level) + 1
    conn = sqlite3.connect(db)
    conn.execute("DELETE FROM ledger_tree")
    conn.commit()
    conn.close()
    async with open_store(db, readonly=True) as store:
        report = await check_tree(store)
    assert not report.ok
    assert report.reason is not None
    assert "missing" in report.reason
