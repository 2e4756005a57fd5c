"""Inclusion and consistency proofs as values, and their JSON shape (CONTRACT section 8).

The Structs hold raw 32-byte hashes; ``to_dict`` gives the contract's JSON object (hashes as
lowercase hex) and ``from_dict`` reads one back strictly: every key present, no other key,
integers that are not booleans, hashes of exactly 64 lowercase hex digits, and sizes and indexes
that fit together. A value read this way is well-formed, not verified: check it with
:func:`~ledger.merkle.verify_inclusion` or :func:`~ledger.merkle.verify_consistency` against a
root you trust.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, NoReturn

import msgspec

from .error import MerkleError

__all__ = ["ConsistencyProof", "InclusionProof"]

_HEX64 = re.compile(r"[0-9a-f]{64}")


class InclusionProof(msgspec.Struct, frozen=True, kw_only=True):
    """The audit path of the event at ``position`` (leaf ``position - 1``) in the tree of its
    first ``tree_size`` events, with that event's chain hash (the leaf input) and the root."""

    position: int
    tree_size: int
    leaf_index: int
    event_hash: bytes
    root_hash: bytes
    audit_path: tuple[bytes, ...]

    def to_dict(self) -> dict[str, Any]:
        """The contract's JSON object: hashes in lowercase hex."""
        return {
            "position": self.position,
            "tree_size": self.tree_size,
            "leaf_index": self.leaf_index,
            "event_hash": self.event_hash.hex(),
            "root_hash": self.root_hash.hex(),
            "audit_path": [h.hex() for h in self.audit_path],
        }

    @classmethod
    def from_dict(cls, data: object) -> InclusionProof:
        """Read the contract's JSON object strictly (see the module docstring)."""
        doc = _Reader("inclusion proof", data, _INCLUSION_KEYS)
        proof = cls(
            position=doc.count("position"),
            tree_size=doc.count("tree_size"),
            leaf_index=doc.count("leaf_index"),
            event_hash=doc.hash("event_hash"),
            root_hash=doc.hash("root_hash"),
            audit_path=doc.hashes("audit_path"),
        )
        if proof.leaf_index >= proof.tree_size:
            doc.fail(f"leaf_index {proof.leaf_index} is not below tree_size {proof.tree_size}")
        if proof.position != proof.leaf_index + 1:
            doc.fail(f"position {proof.position} is not leaf_index + 1 ({proof.leaf_index + 1})")
        return proof


class ConsistencyProof(msgspec.Struct, frozen=True, kw_only=True):
    """The proof that the tree of ``new_size`` events extends the tree of ``old_size``, with
    both roots."""

    old_size: int
    new_size: int
    old_root_hash: bytes
    new_root_hash: bytes
    proof: tuple[bytes, ...]

    def to_dict(self) -> dict[str, Any]:
        """The contract's JSON object: hashes in lowercase hex."""
        return {
            "old_size": self.old_size,
            "new_size": self.new_size,
            "old_root_hash": self.old_root_hash.hex(),
            "new_root_hash": self.new_root_hash.hex(),
            "proof": [h.hex() for h in self.proof],
        }

    @classmethod
    def from_dict(cls, data: object) -> ConsistencyProof:
        """Read the contract's JSON object strictly (see the module docstring)."""
        doc = _Reader("consistency proof", data, _CONSISTENCY_KEYS)
        proof = cls(
            old_size=doc.count("old_size"),
            new_size=doc.count("new_size"),
            old_root_hash=doc.hash("old_root_hash"),
            new_root_hash=doc.hash("new_root_hash"),
            proof=doc.hashes("proof"),
        )
        if proof.old_size > proof.new_size:
            doc.fail(f"old_size {proof.old_size} is above new_size {proof.new_size}")
        return proof


_INCLUSION_KEYS = frozenset(InclusionProof.__struct_fields__)
_CONSISTENCY_KEYS = frozenset(ConsistencyProof.__struct_fields__)


class _Reader:
    """Strict field access on a decoded JSON object, failing with one line."""

    def __init__(self, what: str, data: object, keys: frozenset[str]) -> None:
        self.what = what
        if not isinstance(data, Mapping):
            self.fail(f"expected a JSON object, not {type(data).__name__}")
        missing = sorted(keys - data.keys())
        extra = sorted(str(k) for k in data.keys() - keys)
        if missing:
            self.fail(f"missing field {missing[0]!r}")
        if extra:
            self.fail(f"unknown field {extra[0]!r}")
        self.data: Mapping[str, object] = data

    def fail(self, message: str) -> NoReturn:
        raise MerkleError(f"{self.what}: {message}")

    def count(self, key: str) -> int:
        value = self.data[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            self.fail(f"field {key!r} must be an integer >= 0, not {value!r}")
        return value

    def _hex(self, value: object, where: str) -> bytes:
        if not isinstance(value, str) or not _HEX64.fullmatch(value):
            self.fail(f"{where} must be 64 lowercase hex digits")
        return bytes.fromhex(value)

    def hash(self, key: str) -> bytes:
        return self._hex(self.data[key], f"field {key!r}")

    def hashes(self, key: str) -> tuple[bytes, ...]:
        value = self.data[key]
        if not isinstance(value, list | tuple):
            self.fail(f"field {key!r} must be a list of hashes")
        return tuple(self._hex(h, f"field {key!r}[{i}]") for i, h in enumerate(value))
