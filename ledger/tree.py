"""The log's Merkle tree over any store (CONTRACT section 8): roots, inclusion and consistency
proofs for any tree size up to the head, and the checks that trust nothing but the events.

Leaf *i* (0-based) is the event at position *i* + 1 and its input is that event's chain hash.
A backend keeps the tree's right edge (a :class:`~ledger.merkle.Frontier`, in its head, so the
root of the whole log costs no read) and every perfect subtree at ``level >=`` its
``tree_threshold``, both written with the events in the append transaction; a root or a proof
then costs O(log n) reads (:class:`StoreNodes`). A backend that keeps no nodes still answers:
the nodes a proof needs are folded from the leaves.

The stored tree is derived data. Checking the log against a signed checkpoint folds the chain
hashes themselves (:func:`folded_root`), and :func:`check_tree` compares every stored node and
the head's frontier with that fold.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

import msgspec

from ._merkle.error import MerkleError
from ._merkle.frontier import Frontier, merkle_root
from ._merkle.plan import DEFAULT_THRESHOLD
from ._merkle.proof import ConsistencyProof, InclusionProof
from ._merkle.source import consistency_proof, inclusion_proof, tree_root
from ._merkle.tree import EMPTY_ROOT, NodeId
from .store import EventStore

__all__ = [
    "TREE_THRESHOLD",
    "StoreNodes",
    "TreeReport",
    "check_tree",
    "consistency",
    "folded_root",
    "inclusion",
    "log_root",
    "nodes_source",
]

TREE_THRESHOLD: Final = DEFAULT_THRESHOLD
"""The level from which the backends keep the tree's perfect subtrees (one row per 32 events)."""
_PAGE: Final = 20_000


class StoreNodes:
    """A :class:`~ledger.merkle.NodeSource` over a store, for the tree of ``size`` leaves."""

    def __init__(self, store: EventStore, size: int) -> None:
        self.store = store
        self._size = size

    @property
    def size(self) -> int:
        return self._size

    @property
    def threshold(self) -> int:
        kept = self.store.tree_threshold
        return TREE_THRESHOLD if kept is None else kept

    async def nodes(self, ids: Sequence[NodeId]) -> Mapping[NodeId, bytes]:
        found = await self.store.tree_nodes(ids)
        for node in ids:
            if node not in found:  # not kept: fold it from its leaves
                leaves = await self.store.leaf_hashes(node.start + 1, node.stop)
                found[node] = merkle_root(leaves)
        return found

    async def leaves(self, ranges: Sequence[tuple[int, int]]) -> Sequence[Sequence[bytes]]:
        return [await self.store.leaf_hashes(start + 1, stop) for start, stop in ranges]


async def nodes_source(store: EventStore, size: int | None = None) -> StoreNodes:
    """The tree of the first ``size`` events (default: the whole log)."""
    head = await store.head()
    if size is None:
        size = head
    if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size <= head:
        raise MerkleError(f"tree size {size!r}: the log holds {head} events")
    return StoreNodes(store, size)


async def log_root(store: EventStore, size: int | None = None) -> tuple[int, bytes]:
    """The size and the root of the tree of the first ``size`` events (default: all)."""
    if size is None:
        frontier = await store.tree_frontier()
        if frontier is not None:
            return frontier.size, frontier.root()
    source = await nodes_source(store, size)
    return source.size, await tree_root(source)


async def inclusion(store: EventStore, position: int, size: int | None = None) -> InclusionProof:
    """The inclusion proof of the event at ``position`` in the tree of ``size`` events."""
    source = await nodes_source(store, size)
    if isinstance(position, bool) or not isinstance(position, int) or not position > 0:
        raise MerkleError(f"position {position!r}: positions start at 1")
    if position > source.size:
        raise MerkleError(f"position {position} is not in a tree of {source.size} events")
    return await inclusion_proof(source, position - 1)


async def consistency(store: EventStore, old: int, new: int | None = None) -> ConsistencyProof:
    """The consistency proof between the trees of ``old`` and ``new`` events."""
    source = await nodes_source(store, new)
    return await consistency_proof(source, old, source.size)


async def folded_root(store: EventStore, size: int) -> bytes:
    """The root of the first ``size`` events folded from their chain hashes (trusting no
    stored node): what a signed checkpoint is checked against."""
    frontier = Frontier()
    low = 1
    while low <= size:
        high = min(size, low + _PAGE - 1)
        frontier.append(await store.leaf_hashes(low, high))
        low = high + 1
    return frontier.root() if size else EMPTY_ROOT


class TreeReport(msgspec.Struct, frozen=True, kw_only=True):
    """The outcome of :func:`check_tree`."""

    ok: bool
    size: int
    nodes: int
    """Stored nodes compared."""
    root: str
    """The root folded from the events, in hex."""
    node: tuple[int, int] | None = None
    """The first stored node that differs: ``(level, index)``."""
    position: int | None = None
    """The first position the differing node (or frontier) covers."""
    reason: str | None = None


async def check_tree(store: EventStore) -> TreeReport:
    """Fold the events' chain hashes and compare every node the backend keeps, and the head's
    frontier, with the fold; names the first that differs."""
    kept = await store.tree_frontier()
    size = await store.head() if kept is None else kept.size
    threshold = store.tree_threshold
    frontier = Frontier()
    compared = 0
    low = 1
    while low <= size:
        high = min(size, low + _PAGE - 1)
        done = frontier.append(
            await store.leaf_hashes(low, high),
            threshold=threshold if threshold is not None else 64,
        )
        if threshold is not None and done:
            stored = await store.tree_nodes([node for node, _ in done])
            for node, digest in done:
                compared += 1
                if stored.get(node) != digest:
                    return TreeReport(
                        ok=False,
                        size=size,
                        nodes=compared,
                        root=frontier.root().hex(),
                        node=(node.level, node.index),
                        position=node.start + 1,
                        reason=(
                            f"the stored tree node covering positions {node.start + 1}-"
                            f"{node.stop} {'is missing' if node not in stored else 'differs'} "
                            "from the fold of the events' chain hashes"
                        ),
                    )
        low = high + 1
    if kept is not None and kept != frontier:
        return TreeReport(
            ok=False,
            size=size,
            nodes=compared,
            root=frontier.root().hex(),
            position=1,
            reason="the head's Merkle frontier differs from the fold of the events' chain hashes",
        )
    return TreeReport(ok=True, size=size, nodes=compared, root=frontier.root().hex())
