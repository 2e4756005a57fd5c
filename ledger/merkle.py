"""The log's Merkle tree (RFC 9162 section 2.1; CONTRACT section 8): roots, inclusion and
consistency proofs for any tree size up to the head, and their verification.

Leaf *i* (0-based) is the event at global position *i* + 1; its leaf input is that event's
32-byte chain hash (:func:`ledger.store.chain_hash`). Leaf hash = SHA-256(0x00 || input), node
hash = SHA-256(0x01 || left || right), and a tree of *n* > 1 leaves splits at the largest power
of two below *n*. Roots and proofs are byte-for-byte those of RFC 9162, so any CT/tlog verifier
checks them.

What a backend keeps (threshold ``L``, :data:`DEFAULT_THRESHOLD` = 6 unless the store records
another):

- a node table ``(level, idx) -> hash`` (32 bytes) holding every perfect subtree at
  ``level >= L``: leaves ``[idx * 2**level, (idx + 1) * 2**level)``. Rows are only inserted, in
  the append transaction, from what :meth:`Frontier.append` ``(..., threshold=L)`` returns; about
  one row per ``2**(L-1)`` events;
- the frontier (:meth:`Frontier.to_bytes`, 8 + 32 * popcount(size) bytes) in the head row,
  updated in the same transaction; its :meth:`Frontier.root` is the root of the whole log;
- the leaf inputs are the events' chain hashes, read by position range.

Reading: a ``*_plan`` function names the node ids and leaf ranges to fetch (O(log n) ids, at most
two ranges of at most ``2**L`` leaves); the matching ``build_*`` function folds the answer and
checks it. :func:`tree_root`, :func:`inclusion_proof` and :func:`consistency_proof` do both over
a :class:`NodeSource`; :class:`MemoryNodeSource` is the reference one.

Auditing: :func:`verify_inclusion` and :func:`verify_consistency` need no store.

The node table is derived data. A proof is checked before it is returned: where a stored node
covers a rewritten event, the disagreement raises :class:`~ledger.errors.IntegrityError`;
elsewhere (the last partial block) the proof's root differs from any checkpoint signed before.
Checking the log itself against a signed checkpoint must fold the events' chain hashes
(:func:`merkle_root`, or a :class:`Frontier` over a streamed read), never trust the stored
nodes, which a tamperer may have left as they were.
"""

from __future__ import annotations

from ._merkle.error import MerkleError as MerkleError
from ._merkle.frontier import Frontier as Frontier
from ._merkle.frontier import merkle_root as merkle_root
from ._merkle.plan import DEFAULT_THRESHOLD as DEFAULT_THRESHOLD
from ._merkle.plan import ConsistencyPlan as ConsistencyPlan
from ._merkle.plan import InclusionPlan as InclusionPlan
from ._merkle.plan import Plan as Plan
from ._merkle.plan import RootPlan as RootPlan
from ._merkle.plan import build_consistency_proof as build_consistency_proof
from ._merkle.plan import build_inclusion_proof as build_inclusion_proof
from ._merkle.plan import build_root as build_root
from ._merkle.plan import consistency_plan as consistency_plan
from ._merkle.plan import inclusion_plan as inclusion_plan
from ._merkle.plan import root_plan as root_plan
from ._merkle.proof import ConsistencyProof as ConsistencyProof
from ._merkle.proof import InclusionProof as InclusionProof
from ._merkle.source import MemoryNodeSource as MemoryNodeSource
from ._merkle.source import NodeSource as NodeSource
from ._merkle.source import consistency_proof as consistency_proof
from ._merkle.source import inclusion_proof as inclusion_proof
from ._merkle.source import tree_root as tree_root
from ._merkle.tree import EMPTY_ROOT as EMPTY_ROOT
from ._merkle.tree import HASH_SIZE as HASH_SIZE
from ._merkle.tree import NodeId as NodeId
from ._merkle.tree import leaf_hash as leaf_hash
from ._merkle.tree import node_hash as node_hash
from ._merkle.verify import verify_consistency as verify_consistency
from ._merkle.verify import verify_inclusion as verify_inclusion

__all__ = [
    "DEFAULT_THRESHOLD",
    "EMPTY_ROOT",
    "HASH_SIZE",
    "ConsistencyPlan",
    "ConsistencyProof",
    "Frontier",
    "InclusionPlan",
    "InclusionProof",
    "MemoryNodeSource",
    "MerkleError",
    "NodeId",
    "NodeSource",
    "Plan",
    "RootPlan",
    "build_consistency_proof",
    "build_inclusion_proof",
    "build_root",
    "consistency_plan",
    "consistency_proof",
    "inclusion_plan",
    "inclusion_proof",
    "leaf_hash",
    "merkle_root",
    "node_hash",
    "root_plan",
    "tree_root",
    "verify_consistency",
    "verify_inclusion",
]
