"""The shape of an RFC 9162 Merkle tree: its hashes, its perfect subtrees and the ranges that
its roots and proofs are made of.

Every hash that an RFC 9162 root, audit path or consistency proof contains is the Merkle tree
hash (MTH) of a contiguous range of leaves ``[start, stop)`` that the RFC's recursion produces.
Such a range always starts at a multiple of the smallest power of two not below its length, so
it splits, greedily from the left, into *perfect* subtrees of decreasing size (a
:class:`NodeId` each), and its MTH is the right fold of their hashes with :func:`node_hash`.
Everything in this package is built on that fact: a store keeps perfect subtrees only, and any
root or proof for any tree size is a fold of a few of them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Final

import msgspec

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "NodeId",
    "consistency_ranges",
    "fold",
    "leaf_hash",
    "node_hash",
    "path_ranges",
    "pieces",
    "split_point",
]

HASH_SIZE: Final = 32
"""Bytes in every hash of the tree (SHA-256)."""

EMPTY_ROOT: Final = hashlib.sha256(b"").digest()
"""The root of the empty tree: SHA-256 of no bytes (RFC 9162 section 2.1.1)."""


class NodeId(msgspec.Struct, frozen=True, order=True):
    """A perfect subtree: ``2**level`` leaves starting at leaf ``index * 2**level``.

    Level 0 is a single leaf; ``NodeId(3, 2)`` covers leaves 16 to 23. Hashable, and ordered
    by level then index.
    """

    level: int
    index: int

    @property
    def start(self) -> int:
        """The first leaf (0-based) under this node."""
        return self.index << self.level

    @property
    def stop(self) -> int:
        """One past the last leaf under this node."""
        return (self.index + 1) << self.level


def leaf_hash(leaf_input: bytes) -> bytes:
    """SHA-256(0x00 || leaf_input): the hash of one leaf."""
    return hashlib.sha256(b"\x00" + leaf_input).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right): the hash of an interior node."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def split_point(size: int) -> int:
    """The largest power of two strictly smaller than ``size`` (``size >= 2``): where the RFC
    splits a tree of ``size`` leaves into its left and right subtrees."""
    if size < 2:
        raise ValueError("a tree of fewer than 2 leaves has no split point")
    return 1 << ((size - 1).bit_length() - 1)


def pieces(start: int, stop: int) -> list[NodeId]:
    """The perfect subtrees that tile ``[start, stop)``, left to right, each the largest one
    aligned at its start that still fits.

    For the ranges that roots and proofs use (see the module docstring) the sizes decrease and
    the range's MTH is :func:`fold` of the pieces' hashes.
    """
    if not 0 <= start <= stop:
        raise ValueError(f"not a leaf range: [{start}, {stop})")
    out: list[NodeId] = []
    while start < stop:
        level = (stop - start).bit_length() - 1
        if start:
            level = min(level, (start & -start).bit_length() - 1)
        out.append(NodeId(level, start >> level))
        start += 1 << level
    return out


def fold(hashes: Sequence[bytes]) -> bytes:
    """The MTH of a range from the hashes of its pieces: ``h0`` for one piece,
    ``node_hash(h0, fold(rest))`` for more, and :data:`EMPTY_ROOT` for none."""
    if not hashes:
        return EMPTY_ROOT
    acc = hashes[-1]
    for h in reversed(hashes[:-1]):
        acc = node_hash(h, acc)
    return acc


def path_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """The leaf ranges whose MTHs form the audit path of leaf ``index`` in a tree of ``size``
    leaves (RFC 9162 section 2.1.3.1, PATH), in the path's order: nearest the leaf first."""
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is not in a tree of size {size}")
    out: list[tuple[int, int]] = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = split_point(hi - lo)
        if index < lo + k:
            out.append((lo + k, hi))
            hi = lo + k
        else:
            out.append((lo, lo + k))
            lo += k
    out.reverse()
    return out


def consistency_ranges(old_size: int, new_size: int) -> list[tuple[int, int]]:
    """The leaf ranges whose MTHs form the consistency proof from a tree of ``old_size``
    leaves to one of ``new_size`` (RFC 9162 section 2.1.4.1, PROOF), in the proof's order.

    Empty when ``old_size`` is 0 or equals ``new_size``: there is nothing to prove.
    """
    if not 0 <= old_size <= new_size:
        raise ValueError(f"no consistency proof from size {old_size} to size {new_size}")
    if old_size in (0, new_size):
        return []
    out: list[tuple[int, int]] = []
    lo, hi, m, whole = 0, new_size, old_size, True
    while m != hi - lo:
        k = split_point(hi - lo)
        if m <= k:
            out.append((lo + k, hi))
            hi = lo + k
        else:
            out.append((lo, lo + k))
            lo, m, whole = lo + k, m - k, False
    if not whole:
        out.append((lo, hi))
    out.reverse()
    return out
