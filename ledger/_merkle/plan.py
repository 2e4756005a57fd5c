"""What a store must read to serve a root or a proof for any tree size, and how to build the
answer from what it read.

The storage model (a store chooses a *threshold* level ``L``):

- it keeps the hash of every perfect subtree at ``level >= L`` (a :class:`NodeId` each), written
  by the append path as :meth:`Frontier.append` reports them complete, and never changed after;
- anything below level ``L`` is recomputed from leaf inputs (the events' chain hashes).

A plan lists the stored nodes to fetch (``nodes``, O(log n) of them) and the leaf ranges to read
(``leaf_ranges``: at most two after merging, each within one aligned block of ``2**L`` leaves,
one around the leaf or old size being proved and one at the right edge of the tree). The
``build_*`` functions take what was fetched, recompute the low subtrees, fold every hash of the
answer and check the answer with the auditor's verifier before returning it, so a store whose
stored nodes disagree with each other raises :class:`~ledger.errors.IntegrityError` instead of
handing out a proof that does not verify.

Plans are pure and cheap: O(log n) work, no I/O. A plan for size ``n`` is valid for any store
whose log has at least ``n`` leaves, since the nodes of a tree never change as the log grows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import msgspec

from ledger.errors import IntegrityError

from .error import MerkleError
from .proof import ConsistencyProof, InclusionProof
from .tree import (
    HASH_SIZE,
    NodeId,
    consistency_ranges,
    fold,
    leaf_hash,
    node_hash,
    path_ranges,
    pieces,
)
from .verify import verify_consistency, verify_inclusion

__all__ = [
    "DEFAULT_THRESHOLD",
    "ConsistencyPlan",
    "InclusionPlan",
    "Plan",
    "RootPlan",
    "build_consistency_proof",
    "build_inclusion_proof",
    "build_root",
    "consistency_plan",
    "inclusion_plan",
    "root_plan",
]

DEFAULT_THRESHOLD = 6
"""Store perfect subtrees of 64 leaves and up: about one node row per 32 events, and at most
two ranges of at most 64 leaf inputs read per proof."""

_MAX_THRESHOLD = 40


class Plan(msgspec.Struct, frozen=True, kw_only=True):
    """What to fetch: ``nodes`` (stored, ``level >= threshold``, sorted, distinct) and
    ``leaf_ranges`` (``[start, stop)`` of 0-based leaf indexes, sorted, disjoint). ``terms``
    says how each hash of the answer folds from pieces; a backend need not read it."""

    threshold: int
    nodes: tuple[NodeId, ...]
    leaf_ranges: tuple[tuple[int, int], ...]
    terms: tuple[tuple[NodeId, ...], ...]


class RootPlan(Plan, frozen=True, kw_only=True):
    """The plan for the root of the tree of ``size`` leaves."""

    size: int


class InclusionPlan(Plan, frozen=True, kw_only=True):
    """The plan for the inclusion proof of leaf ``index`` in the tree of ``size`` leaves."""

    index: int
    size: int


class ConsistencyPlan(Plan, frozen=True, kw_only=True):
    """The plan for the consistency proof from ``old_size`` leaves to ``new_size``."""

    old_size: int
    new_size: int


# --- planning ---------------------------------------------------------------------------------


def _check_count(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise MerkleError(f"{name} must be an integer >= 0, not {value!r}")


def _check_threshold(threshold: int) -> None:
    _check_count("threshold", threshold)
    if threshold > _MAX_THRESHOLD:
        raise MerkleError(f"threshold must be at most {_MAX_THRESHOLD}, not {threshold}")


_Fields = tuple[tuple[NodeId, ...], tuple[tuple[int, int], ...], tuple[tuple[NodeId, ...], ...]]


def _gather(
    threshold: int, ranges: Sequence[tuple[int, int]], extra_leaves: Iterable[int] = ()
) -> _Fields:
    """``nodes``, ``leaf_ranges`` and ``terms`` of a plan whose terms are the MTHs of
    ``ranges``, reading the leaves ``extra_leaves`` too."""
    terms = tuple(tuple(pieces(a, b)) for a, b in ranges)
    stored: set[NodeId] = set()
    hulls: dict[int, list[int]] = {}  # aligned block of 2**threshold leaves -> [lo, hi)

    def need(lo: int, hi: int) -> None:
        hull = hulls.setdefault(lo >> threshold, [lo, hi])
        hull[0], hull[1] = min(hull[0], lo), max(hull[1], hi)

    for term in terms:
        for node in term:
            if node.level >= threshold:
                stored.add(node)
            else:
                need(node.start, node.stop)
    for leaf in extra_leaves:
        need(leaf, leaf + 1)
    merged: list[list[int]] = []
    for lo, hi in sorted(hulls.values()):
        if merged and lo <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], hi)
        else:
            merged.append([lo, hi])
    return tuple(sorted(stored)), tuple((lo, hi) for lo, hi in merged), terms


def root_plan(size: int, threshold: int = DEFAULT_THRESHOLD) -> RootPlan:
    """What to read for the root of the tree of the first ``size`` leaves."""
    _check_count("tree size", size)
    _check_threshold(threshold)
    nodes, leaf_ranges, terms = _gather(threshold, [(0, size)])
    return RootPlan(
        threshold=threshold, nodes=nodes, leaf_ranges=leaf_ranges, terms=terms, size=size
    )


def inclusion_plan(index: int, size: int, threshold: int = DEFAULT_THRESHOLD) -> InclusionPlan:
    """What to read for the inclusion proof of leaf ``index`` (0-based) in the tree of the
    first ``size`` leaves, its root and the leaf's input included."""
    _check_count("leaf index", index)
    _check_count("tree size", size)
    _check_threshold(threshold)
    if index >= size:
        raise MerkleError(f"leaf index {index} is not in a tree of size {size}")
    ranges = [(0, size), *path_ranges(index, size)]
    nodes, leaf_ranges, terms = _gather(threshold, ranges, [index])
    return InclusionPlan(
        threshold=threshold,
        nodes=nodes,
        leaf_ranges=leaf_ranges,
        terms=terms,
        index=index,
        size=size,
    )


def consistency_plan(
    old_size: int, new_size: int, threshold: int = DEFAULT_THRESHOLD
) -> ConsistencyPlan:
    """What to read for the consistency proof from the tree of ``old_size`` leaves to that of
    ``new_size``, both roots included."""
    _check_count("old size", old_size)
    _check_count("new size", new_size)
    _check_threshold(threshold)
    if old_size > new_size:
        raise MerkleError(f"old size {old_size} is above new size {new_size}")
    ranges = [(0, old_size), (0, new_size), *consistency_ranges(old_size, new_size)]
    nodes, leaf_ranges, terms = _gather(threshold, ranges)
    return ConsistencyPlan(
        threshold=threshold,
        nodes=nodes,
        leaf_ranges=leaf_ranges,
        terms=terms,
        old_size=old_size,
        new_size=new_size,
    )


# --- building ---------------------------------------------------------------------------------


def _evaluate(
    plan: Plan, nodes: Mapping[NodeId, bytes], leaves: Sequence[Sequence[bytes]]
) -> tuple[list[bytes], dict[int, bytes]]:
    """Every term's hash, and the leaf inputs read by index."""
    if len(leaves) != len(plan.leaf_ranges):
        raise ValueError(f"{len(plan.leaf_ranges)} leaf ranges planned, {len(leaves)} given")
    inputs: dict[int, bytes] = {}
    for (lo, hi), got in zip(plan.leaf_ranges, leaves, strict=True):
        if len(got) != hi - lo:
            raise IntegrityError(lo + 1, f"{hi - lo} leaves asked from here, {len(got)} read")
        for offset, value in enumerate(got):
            inputs[lo + offset] = bytes(value)
    threshold = plan.threshold
    low: dict[NodeId, bytes] = {}

    def piece(node: NodeId) -> bytes:
        if node.level >= threshold:
            h = nodes.get(node)
            if h is None or len(h) != HASH_SIZE:
                state = "is missing" if h is None else f"has {len(h)} bytes"
                raise IntegrityError(
                    node.start + 1,
                    f"the stored Merkle node at level {node.level}, index {node.index} {state}",
                )
            return bytes(h)
        h = low.get(node)
        if h is None:
            if node.level == 0:
                if node.index not in inputs:
                    raise ValueError(f"leaf {node.index} is needed but was not planned")
                h = leaf_hash(inputs[node.index])
            else:
                left = NodeId(node.level - 1, node.index * 2)
                h = node_hash(piece(left), piece(NodeId(node.level - 1, node.index * 2 + 1)))
            low[node] = h
        return h

    return [fold([piece(p) for p in term]) for term in plan.terms], inputs


def build_root(
    plan: RootPlan, nodes: Mapping[NodeId, bytes], leaves: Sequence[Sequence[bytes]]
) -> bytes:
    """The root planned by ``plan`` from the fetched ``nodes`` and the leaf inputs of each of
    ``plan.leaf_ranges``, in order."""
    (root,), _ = _evaluate(plan, nodes, leaves)
    return root


def build_inclusion_proof(
    plan: InclusionPlan, nodes: Mapping[NodeId, bytes], leaves: Sequence[Sequence[bytes]]
) -> InclusionProof:
    """The inclusion proof planned by ``plan``, checked with :func:`verify_inclusion`."""
    (root, *path), inputs = _evaluate(plan, nodes, leaves)
    proof = InclusionProof(
        position=plan.index + 1,
        tree_size=plan.size,
        leaf_index=plan.index,
        event_hash=inputs[plan.index],
        root_hash=root,
        audit_path=tuple(path),
    )
    if not verify_inclusion(proof.event_hash, plan.index, plan.size, path, root):
        raise IntegrityError(
            plan.index + 1,
            f"the stored Merkle nodes give an inclusion proof in the tree of size {plan.size}"
            " that does not verify",
        )
    return proof


def build_consistency_proof(
    plan: ConsistencyPlan, nodes: Mapping[NodeId, bytes], leaves: Sequence[Sequence[bytes]]
) -> ConsistencyProof:
    """The consistency proof planned by ``plan``, checked with :func:`verify_consistency`."""
    (old_root, new_root, *path), _ = _evaluate(plan, nodes, leaves)
    if not verify_consistency(plan.old_size, plan.new_size, old_root, new_root, path):
        raise IntegrityError(
            max(plan.old_size, 1),
            f"the stored Merkle nodes give a consistency proof from size {plan.old_size} to"
            f" {plan.new_size} that does not verify",
        )
    return ConsistencyProof(
        old_size=plan.old_size,
        new_size=plan.new_size,
        old_root_hash=old_root,
        new_root_hash=new_root,
        proof=tuple(path),
    )
