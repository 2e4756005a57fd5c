"""Roots and proofs served from a store, through the small protocol a backend implements.

A backend implements :class:`NodeSource` over its tables (see :mod:`ledger.merkle` for the
tables) and calls :func:`tree_root`, :func:`inclusion_proof` or :func:`consistency_proof`.
Each of these makes at most one :meth:`NodeSource.nodes` call (O(log n) ids) and at most one
:meth:`NodeSource.leaves` call (at most two ranges of at most ``2**threshold`` leaves), never
a pass over the log. :class:`MemoryNodeSource` is the reference implementation, kept in memory.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

from .error import MerkleError
from .frontier import Frontier
from .plan import (
    DEFAULT_THRESHOLD,
    Plan,
    build_consistency_proof,
    build_inclusion_proof,
    build_root,
    consistency_plan,
    inclusion_plan,
    root_plan,
)
from .proof import ConsistencyProof, InclusionProof
from .tree import NodeId

__all__ = [
    "MemoryNodeSource",
    "NodeSource",
    "consistency_proof",
    "inclusion_proof",
    "tree_root",
]


class NodeSource(Protocol):
    """What a store offers the Merkle layer. ``size`` is read once per call; the two fetches
    need not share a transaction, since stored nodes and leaves never change once written and
    every plan stays within ``size``."""

    @property
    def size(self) -> int:
        """The number of leaves (events) in the log."""
        ...

    @property
    def threshold(self) -> int:
        """The lowest level whose perfect subtrees the store keeps."""
        ...

    async def nodes(self, ids: Sequence[NodeId]) -> Mapping[NodeId, bytes]:
        """The stored hashes of these perfect subtrees (every one at ``level >= threshold``
        and inside the log); a missing one is left out of the mapping."""
        ...

    async def leaves(self, ranges: Sequence[tuple[int, int]]) -> Sequence[Sequence[bytes]]:
        """The leaf inputs (events' chain hashes) of each ``[start, stop)`` range of 0-based
        leaf indexes, one sequence per range, in order."""
        ...


async def _fetch(
    source: NodeSource, plan: Plan
) -> tuple[Mapping[NodeId, bytes], Sequence[Sequence[bytes]]]:
    nodes = await source.nodes(plan.nodes) if plan.nodes else {}
    leaves = await source.leaves(plan.leaf_ranges) if plan.leaf_ranges else []
    return nodes, leaves


def _size_of(source: NodeSource, size: int | None, name: str = "tree size") -> int:
    if size is None:
        return source.size
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise MerkleError(f"{name} must be an integer >= 0, not {size!r}")
    if size > source.size:
        raise MerkleError(f"{name} {size} is beyond the log's {source.size} events")
    return size


async def tree_root(source: NodeSource, size: int | None = None) -> bytes:
    """The root of the tree of the first ``size`` events (default: the whole log)."""
    plan = root_plan(_size_of(source, size), source.threshold)
    return build_root(plan, *await _fetch(source, plan))


async def inclusion_proof(
    source: NodeSource, leaf_index: int, size: int | None = None
) -> InclusionProof:
    """The inclusion proof of leaf ``leaf_index`` (the event at position ``leaf_index + 1``)
    in the tree of the first ``size`` events (default: the whole log)."""
    n = _size_of(source, size)
    if isinstance(leaf_index, int) and not isinstance(leaf_index, bool) and leaf_index >= n:
        raise MerkleError(f"position {leaf_index + 1} is not in the tree of size {n}")
    plan = inclusion_plan(leaf_index, n, source.threshold)
    return build_inclusion_proof(plan, *await _fetch(source, plan))


async def consistency_proof(
    source: NodeSource, old_size: int, new_size: int | None = None
) -> ConsistencyProof:
    """The consistency proof from the tree of the first ``old_size`` events to that of the
    first ``new_size`` (default: the whole log)."""
    plan = consistency_plan(old_size, _size_of(source, new_size, "new size"), source.threshold)
    return build_consistency_proof(plan, *await _fetch(source, plan))


class MemoryNodeSource:
    """A :class:`NodeSource` in memory: the leaf inputs, the perfect subtrees at
    ``level >= threshold`` and the frontier, kept exactly as a backend keeps them."""

    def __init__(
        self, leaf_inputs: Iterable[bytes] = (), *, threshold: int = DEFAULT_THRESHOLD
    ) -> None:
        root_plan(0, threshold)  # validates the threshold
        self._threshold = threshold
        self._leaves: list[bytes] = []
        self._nodes: dict[NodeId, bytes] = {}
        self._frontier = Frontier()
        self.append(leaf_inputs)

    @property
    def size(self) -> int:
        return self._frontier.size

    @property
    def threshold(self) -> int:
        return self._threshold

    @property
    def frontier(self) -> Frontier:
        """A copy of the head's frontier (what a backend keeps in its head row)."""
        return self._frontier.copy()

    @property
    def stored(self) -> Mapping[NodeId, bytes]:
        """A copy of every stored perfect subtree (what a backend keeps in its node table)."""
        return dict(self._nodes)

    def append(self, leaf_inputs: Iterable[bytes]) -> None:
        """Append leaves as a backend's append path does: leaves, completed nodes, frontier."""
        leaves = [bytes(x) for x in leaf_inputs]
        frontier = self._frontier.copy()
        completed = frontier.append(leaves, threshold=self._threshold)
        self._leaves.extend(leaves)
        self._nodes.update(completed)
        self._frontier = frontier

    async def nodes(self, ids: Sequence[NodeId]) -> Mapping[NodeId, bytes]:
        return {i: self._nodes[i] for i in ids if i in self._nodes}

    async def leaves(self, ranges: Sequence[tuple[int, int]]) -> Sequence[Sequence[bytes]]:
        return [self._leaves[lo:hi] for lo, hi in ranges]
