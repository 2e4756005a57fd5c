"""The log's Merkle tree as every backend keeps it (CONTRACT section 8, ``ledger.tree``): the
root, every inclusion and consistency proof and the kept nodes agree with a straight fold of the
events' chain hashes, whatever mix of single appends, group commits and imports built the log;
an older SQLite store gets its tree when first opened for writing; a stored node or frontier
edited behind the store's back is named."""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest
from backends import Backend
from hypothesis import given, settings
from hypothesis import strategies as st
from old_stores import downgrade
from store_contract import opened, requested

from ledger import ImportItem, open_store
from ledger.events import stream_of
from ledger.merkle import merkle_root, verify_consistency, verify_inclusion
from ledger.store import EventStore
from ledger.tree import check_tree, consistency, folded_root, inclusion, log_root

pytestmark = pytest.mark.anyio


Pick = Callable[[int], tuple[int, int, int]]
"""Given a log's size, the ``(n, i, m)`` of one proof check: the tree of the first ``n`` leaves,
leaf ``i`` (1-based) of it, and an older tree of ``m`` leaves."""

_SHAPE = st.tuples(st.integers(1, 40), st.integers(10, 90), st.integers(1, 150))
"""How a log grows: so many single appends, then concurrent ones, then one import of so many."""


async def _grow(store: EventStore, tag: str, singles: int, concurrent: int, imported: int) -> None:
    """Single appends, a burst of concurrent ones (group commits) and an import."""
    for i in range(singles):
        await store.append(f"account-S{tag}-{i}", [opened(f"S{tag}-{i}")])

    async def one(i: int) -> None:
        await store.append(f"payment-G{tag}-{i}", [requested(f"G{tag}-{i}")])

    async with anyio.create_task_group() as tg:
        for i in range(concurrent):
            tg.start_soon(one, i)
    items = [
        ImportItem(stream=stream_of(e), event=e)
        for e in (opened(f"I{tag}-{i}") for i in range(imported))
    ]
    await store.import_events(items)


async def _build(store: EventStore, seed: int) -> None:
    """:func:`_grow` by a seeded shape (the fixed stores of the single-backend tests)."""
    rng = random.Random(seed)
    await _grow(
        store, str(seed), rng.randrange(1, 40), rng.randrange(10, 90), rng.randrange(1, 150)
    )


def _seeded(seed: int) -> Pick:
    rng = random.Random(seed)

    def pick(size: int) -> tuple[int, int, int]:
        n = rng.randrange(1, size + 1)
        return n, rng.randrange(1, n + 1), rng.randrange(0, n + 1)

    return pick


def _drawn(data: st.DataObject) -> Pick:
    def pick(size: int) -> tuple[int, int, int]:
        n = data.draw(st.integers(1, size))
        return n, data.draw(st.integers(1, n)), data.draw(st.integers(0, n))

    return pick


async def _check(store: EventStore, seed: int | Pick) -> None:
    """The root, and 12 inclusion and consistency proofs (picked by ``seed``)."""
    size, root = await log_root(store)
    assert size == await store.head()
    leaves = await store.leaf_hashes(1, size)
    assert root == merkle_root(leaves) == await folded_root(store, size)
    assert (await check_tree(store)).ok
    pick = _seeded(seed) if isinstance(seed, int) else seed
    for _ in range(12):
        n, i, m = pick(size)
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


@pytest.mark.parametrize(
    ("backend", "examples"),
    [("memory", 30), ("sqlite", 10), ("postgres", 10)],
    indirect=["backend"],
)
def test_the_kept_tree_is_the_fold_of_the_chain_hashes(backend: Backend, examples: int) -> None:
    """A new store of ``backend`` per example, grown twice by hypothesis-drawn shapes: after
    each, the root and hypothesis-picked proofs agree with the fold of the chain hashes."""

    @settings(max_examples=examples, deadline=None)
    @given(first=_SHAPE, second=_SHAPE, data=st.data())
    def check(
        first: tuple[int, int, int], second: tuple[int, int, int], data: st.DataObject
    ) -> None:
        async def body() -> None:
            async with backend.store(durability="normal") as store:
                await _grow(store, "a", *first)
                await _check(store, _drawn(data))
                await _grow(store, "b", *second)
                await _check(store, _drawn(data))

        anyio.run(body, backend="asyncio")

    check()


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
