"""The auditor's side: checking proofs against signed checkpoints, with no store at all.

An auditor holds a public key (kept apart from the store) and receives, from whoever runs the
store, a checkpoint note and proofs. Three steps, each refusing with one line:

::

    from ledger.checkpoint import load_public_key, verify_checkpoint
    from ledger.proofs import check_consistency, check_inclusion

    key = load_public_key("ledger.key.pub")
    signed = verify_checkpoint(note_text, key)          # CheckpointError unless signed by key
    proof = check_inclusion(proof_json, signed)         # ProofError unless it holds
    proof.position, proof.event_hash                    # the event, placed in the signed log
    check_event(event_json, proof)                      # and its content is what was hashed
    check_consistency(step_json, older, signed)         # the newer log extends the older one

A proof is read strictly from the JSON of CONTRACT section 8 (or taken as a
:class:`~ledger.merkle.InclusionProof` / :class:`~ledger.merkle.ConsistencyProof`) and checked
with :func:`ledger.merkle.verify_inclusion` / :func:`ledger.merkle.verify_consistency` against
the roots *signed* in the checkpoints: the hashes the proof itself names are never trusted.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

import msgspec

from ._merkle.error import MerkleError
from ._merkle.proof import ConsistencyProof, InclusionProof
from ._merkle.verify import verify_consistency, verify_inclusion
from .checkpoint import Checkpoint
from .errors import LedgerError
from .planner import chain_hash
from .records import to_micros

__all__ = ["EVENT_KEYS", "ProofError", "check_consistency", "check_event", "check_inclusion"]

EVENT_KEYS: Final = (
    "position",
    "stream",
    "version",
    "event_id",
    "correlation_id",
    "causation_id",
    "recorded_at",
    "schema",
    "data",
    "previous_hash",
)
"""The keys of an event as ``explain --proofs`` carries it: what its chain hash was computed
over (``data`` the event's stored JSON text, byte for byte), and the chain hash before it."""

_RECORDED: Final = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")
_HEX: Final = re.compile(r"[0-9a-f]{64}")


class ProofError(LedgerError):
    """Raised when a proof does not hold against a checkpoint: it is malformed, it is for a tree
    of another size than the checkpoint's, or its hashes do not lead to the signed root. The
    message is one line saying which."""


def _inclusion(proof: InclusionProof | Mapping[str, Any]) -> InclusionProof:
    if isinstance(proof, InclusionProof):
        return proof
    try:
        return InclusionProof.from_dict(proof)
    except MerkleError as e:
        raise ProofError(str(e)) from None


def _consistency(proof: ConsistencyProof | Mapping[str, Any]) -> ConsistencyProof:
    if isinstance(proof, ConsistencyProof):
        return proof
    try:
        return ConsistencyProof.from_dict(proof)
    except MerkleError as e:
        raise ProofError(str(e)) from None


def check_inclusion(
    proof: InclusionProof | Mapping[str, Any], checkpoint: Checkpoint
) -> InclusionProof:
    """Check that ``proof`` (an :class:`InclusionProof` or its JSON object) places its event in
    the log ``checkpoint`` signed; returns it, read. Raises :class:`ProofError` otherwise."""
    read = _inclusion(proof)
    where = f"position {read.position}"
    if read.tree_size != checkpoint.size:
        raise ProofError(
            f"{where}: the proof is in the tree of {read.tree_size} events; the checkpoint"
            f" signs {checkpoint.size}"
        )
    if not verify_inclusion(
        read.event_hash, read.leaf_index, read.tree_size, read.audit_path, checkpoint.root_hash
    ):
        raise ProofError(
            f"{where}: the audit path does not lead from the event's hash to the signed root"
        )
    return read


def check_consistency(
    proof: ConsistencyProof | Mapping[str, Any], old: Checkpoint, new: Checkpoint
) -> ConsistencyProof:
    """Check that ``proof`` (a :class:`ConsistencyProof` or its JSON object) shows the log
    signed by ``new`` extending the log signed by ``old``; returns it, read. Raises
    :class:`ProofError` otherwise."""
    read = _consistency(proof)
    if (read.old_size, read.new_size) != (old.size, new.size):
        raise ProofError(
            f"the proof goes from {read.old_size} to {read.new_size} events; the checkpoints"
            f" sign {old.size} and {new.size}"
        )
    if old.origin != new.origin:
        raise ProofError(f"the checkpoints are of two logs: {old.origin!r} and {new.origin!r}")
    if not verify_consistency(old.size, new.size, old.root_hash, new.root_hash, read.proof):
        raise ProofError(
            f"the log of {new.size} events does not extend the log of {old.size} the older"
            " checkpoint signed"
        )
    return read


def check_event(event: Mapping[str, Any], proof: InclusionProof | Mapping[str, Any]) -> str:
    """Check that ``event`` (an event as ``explain --proofs`` carries it, :data:`EVENT_KEYS`)
    is the content whose chain hash ``proof`` places in the log: its position is the proof's,
    and SHA-256 over the previous chain hash and the event's canonical bytes gives the proof's
    ``event_hash``. Together with :func:`check_inclusion` against a signed checkpoint, this
    shows that the event, as given, is in the signed log. Returns the event's type (from its
    JSON). Raises :class:`ProofError` naming what does not hold."""
    read = _inclusion(proof)
    where = f"position {read.position}"
    if not isinstance(event, Mapping) or list(event) != list(EVENT_KEYS):
        raise ProofError(f"{where}: the event does not have the keys {', '.join(EVENT_KEYS)}")
    if event["position"] != read.position:
        raise ProofError(f"{where}: the event given is at position {event['position']!r}")
    texts = ("stream", "event_id", "recorded_at", "data", "previous_hash")
    ints = ("version", "schema")
    optional = ("correlation_id", "causation_id")
    if (
        not all(isinstance(event[k], str) for k in texts)
        or not all(type(event[k]) is int for k in ints)
        or not all(event[k] is None or isinstance(event[k], str) for k in optional)
        or not _RECORDED.fullmatch(event["recorded_at"])
        or not _HEX.fullmatch(event["previous_hash"])
    ):
        raise ProofError(f"{where}: the event's fields are not of their types")
    recorded = to_micros(datetime.fromisoformat(event["recorded_at"]))
    digest = chain_hash(
        bytes.fromhex(event["previous_hash"]),
        read.position,
        event["stream"],
        event["version"],
        event["event_id"],
        event["correlation_id"],
        event["causation_id"],
        recorded,
        event["schema"],
        event["data"],
    )
    if digest != read.event_hash:
        raise ProofError(f"{where}: the event given does not hash to the chain hash proven")
    try:
        kind = _TYPE.decode(event["data"]).type
    except (msgspec.ValidationError, msgspec.DecodeError):
        raise ProofError(f"{where}: the event's data is not an event's JSON") from None
    return kind


class _Typed(msgspec.Struct):
    type: str


_TYPE: Final = msgspec.json.Decoder(_Typed)
