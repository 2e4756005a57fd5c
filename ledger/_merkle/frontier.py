"""The right edge of a Merkle tree: what a log keeps in its head row to append in O(1)
amortised hashing and to know its root without a read.

A :class:`Frontier` of ``size`` leaves holds the hashes of the perfect subtrees that tile
``[0, size)``, one per set bit of ``size``, largest (leftmost) first. Appending a leaf completes
the perfect subtrees that end with it; :meth:`Frontier.append` returns them so the append path
can persist those at or above the store's threshold level, in the same transaction as the
events and the new frontier.

Guarantees: appending the same leaves in any split into calls yields the same frontier, the
same root and the same completed nodes (each reported exactly once, when it completes); the
root is the RFC 9162 MTH of every leaf appended.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from .error import MerkleError
from .tree import EMPTY_ROOT, HASH_SIZE, NodeId, fold

__all__ = ["Frontier", "merkle_root"]

_SIZE_BYTES = 8


class Frontier:
    """The compact range ``[0, size)`` of a Merkle tree: ``size`` and one hash per set bit of
    it, by decreasing level. Mutable: :meth:`append` changes it in place; :meth:`copy` first
    when a failed transaction must be able to discard the change."""

    __slots__ = ("_hashes", "_size")

    def __init__(self, size: int = 0, hashes: Iterable[bytes] = ()) -> None:
        stack = [bytes(h) for h in hashes]
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise MerkleError(f"frontier size must be an integer >= 0, not {size!r}")
        if len(stack) != size.bit_count():
            raise MerkleError(
                f"a frontier of size {size} holds {size.bit_count()} hashes, not {len(stack)}"
            )
        if any(len(h) != HASH_SIZE for h in stack):
            raise MerkleError(f"frontier hashes must be {HASH_SIZE} bytes each")
        self._size = size
        self._hashes = stack

    @property
    def size(self) -> int:
        """The number of leaves appended so far."""
        return self._size

    @property
    def hashes(self) -> tuple[bytes, ...]:
        """The hashes of the perfect subtrees tiling ``[0, size)``, largest first."""
        return tuple(self._hashes)

    def nodes(self) -> list[tuple[NodeId, bytes]]:
        """The perfect subtrees tiling ``[0, size)`` with their hashes, left to right."""
        out: list[tuple[NodeId, bytes]] = []
        start = 0
        hashes = iter(self._hashes)
        for level in range(self._size.bit_length() - 1, -1, -1):
            if self._size >> level & 1:
                out.append((NodeId(level, start >> level), next(hashes)))
                start += 1 << level
        return out

    def root(self) -> bytes:
        """The RFC 9162 Merkle tree hash of the ``size`` leaves (:data:`EMPTY_ROOT` if none)."""
        return fold(self._hashes) if self._hashes else EMPTY_ROOT

    def append(
        self, leaf_inputs: Iterable[bytes], *, threshold: int = 0
    ) -> list[tuple[NodeId, bytes]]:
        """Append leaves; return the perfect subtrees they completed at ``level >= threshold``,
        in completion order (children before their parent).

        Each leaf input is hashed as a leaf (:func:`leaf_hash`); a leaf is itself a level-0
        node, so ``threshold=0`` also returns every leaf hash.
        """
        if threshold < 0:
            raise MerkleError(f"threshold must be >= 0, not {threshold}")
        sha256 = hashlib.sha256
        stack = self._hashes
        size = self._size
        done: list[tuple[NodeId, bytes]] = []
        for leaf_input in leaf_inputs:
            if not isinstance(leaf_input, bytes | bytearray | memoryview):
                raise MerkleError(f"leaf {size}: a leaf input is bytes, not {type(leaf_input)}")
            h = sha256(b"\x00" + leaf_input).digest()
            if threshold == 0:
                done.append((NodeId(0, size), h))
            level = 0
            while size >> level & 1:
                h = sha256(b"\x01" + stack.pop() + h).digest()
                level += 1
                if level >= threshold:
                    done.append((NodeId(level, size >> level), h))
            stack.append(h)
            size += 1
        self._size = size
        return done

    def copy(self) -> Frontier:
        """An independent copy."""
        return Frontier(self._size, self._hashes)

    def to_bytes(self) -> bytes:
        """8 bytes of size (big-endian), then the hashes largest first: what a head row keeps."""
        return self._size.to_bytes(_SIZE_BYTES, "big") + b"".join(self._hashes)

    @classmethod
    def from_bytes(cls, data: bytes) -> Frontier:
        """Read :meth:`to_bytes`' output; anything else is a :class:`MerkleError`."""
        data = bytes(data)
        if len(data) < _SIZE_BYTES:
            raise MerkleError(f"a serialised frontier has at least {_SIZE_BYTES} bytes")
        size = int.from_bytes(data[:_SIZE_BYTES], "big")
        body = data[_SIZE_BYTES:]
        if len(body) != size.bit_count() * HASH_SIZE:
            raise MerkleError(
                f"a serialised frontier of size {size} has"
                f" {_SIZE_BYTES + size.bit_count() * HASH_SIZE}"
                f" bytes, not {len(data)}"
            )
        return cls(size, (body[i : i + HASH_SIZE] for i in range(0, len(body), HASH_SIZE)))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Frontier):
            return NotImplemented
        return self._size == other._size and self._hashes == other._hashes

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"Frontier(size={self._size}, root={self.root().hex()})"


def merkle_root(leaf_inputs: Iterable[bytes]) -> bytes:
    """The RFC 9162 Merkle tree hash of the given leaf inputs, in one pass over them."""
    frontier = Frontier()
    frontier.append(leaf_inputs, threshold=1 << 30)
    return frontier.root()
