"""The auditor's side: checking inclusion and consistency proofs with no access to the store.

Both functions follow RFC 9162 sections 2.1.3.2 and 2.1.4.2 step by step and add the checks an
auditor should not have to remember: every hash is exactly 32 bytes, the proof has exactly the
length the RFC's PATH or PROOF gives for those sizes, ``index < size``, ``old_size <= new_size``.
They return ``True`` only for a proof that recomputes the given root(s); any other input,
well-formed or not, gives ``False`` (never an exception).

Conventions for the cases the RFC's algorithms leave out:

- from ``old_size == new_size`` the proof is empty and the roots are equal;
- from ``old_size == 0`` (the empty tree, whose root is SHA-256 of nothing) the proof is empty
  and ``old_root`` must be that empty-tree hash; every tree extends the empty one, so
  ``new_root`` is then only checked for length.
"""

from __future__ import annotations

from collections.abc import Sequence

from .tree import EMPTY_ROOT, HASH_SIZE, consistency_ranges, leaf_hash, node_hash, path_ranges

__all__ = ["verify_consistency", "verify_inclusion"]


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _are_hashes(*values: object) -> bool:
    return all(isinstance(v, bytes) and len(v) == HASH_SIZE for v in values)


def verify_inclusion(
    leaf_input: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """Whether ``proof`` is the audit path of a leaf with input ``leaf_input`` at 0-based
    ``index`` in a tree of ``size`` leaves whose root is ``root`` (RFC 9162 2.1.3.2)."""
    if not (_is_count(index) and _is_count(size) and index < size):
        return False
    if not isinstance(leaf_input, bytes) or not _are_hashes(root, *proof):
        return False
    if len(proof) != len(path_ranges(index, size)):
        return False
    fn, sn = index, size - 1
    r = leaf_hash(leaf_input)
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """Whether ``proof`` shows that the tree of ``new_size`` leaves with root ``new_root``
    extends the tree of ``old_size`` leaves with root ``old_root`` (RFC 9162 2.1.4.2, and the
    module docstring for sizes the RFC leaves out)."""
    if not (_is_count(old_size) and _is_count(new_size) and old_size <= new_size):
        return False
    if not _are_hashes(old_root, new_root, *proof):
        return False
    if old_size == 0:
        return not proof and old_root == EMPTY_ROOT and (new_size > 0 or new_root == EMPTY_ROOT)
    if old_size == new_size:
        return not proof and old_root == new_root
    if len(proof) != len(consistency_ranges(old_size, new_size)):
        return False
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # an exact power of two: the old root is a node
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == old_root and sr == new_root
