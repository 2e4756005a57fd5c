"""The ``--json`` documents of the commands that are not already a library type: one Struct per
concept, so each output and its published JSON Schema (:mod:`replay.schemas`) come from the same
definition. The explanation (:class:`replay.explanation.Explanation`), the what-if
(:class:`replay.explanation.WhatIf`) and the incident (:class:`replay.incidents.Incident`) are
documents as they are.

Keys mean the same thing everywhere: ``payments``, ``succeeded``, ``failed`` and ``pending``
count payments by outcome; ``by_category`` counts failed payments by root-cause category;
``saved_by_failover`` counts payments that succeeded after at least one failed attempt; every
``*_minor`` amount is an object keyed by currency unless it is a single line's figure.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec

from ledger.codec import record_document
from ledger.merkle import ConsistencyProof, InclusionProof
from ledger.store import Record
from projections.state import AccountState

from .explanation import Explanation

__all__ = [
    "CheckpointDocument",
    "ConsistencyProofDocument",
    "CreditDocument",
    "EventDocument",
    "EvidenceProofs",
    "InclusionProofDocument",
    "KeygenDocument",
    "PositionCheck",
    "ProofCheckDocument",
    "ProvenEventDocument",
    "ProvenExplanation",
    "SignedCheckpointDocument",
    "SimulationDocument",
    "StateDocument",
    "StatsDocument",
    "consistency_document",
    "event_document",
    "inclusion_document",
    "state_document",
]


class EventDocument(msgspec.Struct, frozen=True, kw_only=True):
    """One event as every listing shows it (``export``, ``audit --json``,
    ``timeline --json``): the JSON Lines interchange format with the event's place in the log.
    ``evidence`` (``timeline`` only) says whether the payment's explanation cites it."""

    position: int
    stream: str
    version: int
    type: str
    occurred_at: datetime
    recorded_at: datetime
    event_id: str
    correlation_id: str | None
    causation_id: str | None
    data: dict[str, Any]
    evidence: bool | msgspec.UnsetType = msgspec.UNSET


def event_document(record: Record, *, evidence: bool | None = None) -> EventDocument:
    """The listing document of ``record`` (with ``evidence`` when given)."""
    doc = record_document(record)
    return EventDocument(**doc, evidence=msgspec.UNSET if evidence is None else evidence)


class CreditDocument(msgspec.Struct, frozen=True, kw_only=True):
    """One credit line of ``state --json``."""

    status: str
    limit_minor: int
    used_minor: int
    held_minor: int
    available_minor: int
    overdue_minor: int
    currency: str


class StateDocument(msgspec.Struct, frozen=True, kw_only=True):
    """``state --json``: the account as of ``position``."""

    account_id: str
    position: int
    """The last global position the state includes."""
    score: int | None
    credit: dict[str, CreditDocument]
    """By product (``huabei``, ``jiebei``)."""


def state_document(state: AccountState) -> StateDocument:
    return StateDocument(
        account_id=state.account_id,
        position=state.position,
        score=state.score,
        credit={
            product: CreditDocument(
                status=line.status,
                limit_minor=line.limit_minor,
                used_minor=line.used_minor,
                held_minor=line.held_minor,
                available_minor=line.available_minor,
                overdue_minor=line.overdue_minor,
                currency=line.currency,
            )
            for product, line in sorted(state.credit.items())
        },
    )


class StatsDocument(msgspec.Struct, frozen=True, kw_only=True):
    """``stats --json``: payments by outcome; failed ones by root-cause category, channel (of
    the last failed attempt), scenario and merchant; what failover saved."""

    payments: int
    succeeded: int
    failed: int
    pending: int
    by_category: dict[str, int]
    by_channel: dict[str, int]
    by_scenario: dict[str, int]
    by_merchant: dict[str, int]
    failed_amount_minor: dict[str, int]
    saved_by_failover: int
    saved_by_category: dict[str, int]
    """Payments saved, by the category of their last failed attempt."""
    saved_amount_minor: dict[str, int]


class SimulationDocument(msgspec.Struct, frozen=True, kw_only=True):
    """``simulate --json``: the run's payments with the keys ``stats`` uses for the same
    things, and the run itself."""

    payments: int
    succeeded: int
    failed: int
    pending: int
    by_category: dict[str, int]
    """Failed payments by the category the simulator injected (its truth)."""
    saved_by_failover: int
    events: int
    seconds: float
    events_per_second: int
    seed: int
    failover: bool


# --- the verifiable log (CONTRACT section 8) ---------------------------------------------------

Hash = Annotated[str, msgspec.Meta(pattern="^[0-9a-f]{64}$")]
"""A SHA-256 hash in lowercase hex."""


class InclusionProofDocument(msgspec.Struct, frozen=True, kw_only=True):
    """``proof POSITION --json``, and each evidence proof of ``explain --proofs``: the event at
    ``position`` (leaf ``leaf_index``) in the tree of the first ``tree_size`` events. The leaf
    input is ``event_hash``, the event's chain hash; ``audit_path`` leads from it to
    ``root_hash`` (RFC 9162 section 2.1.3)."""

    position: int
    tree_size: int
    leaf_index: int
    event_hash: Hash
    root_hash: Hash
    audit_path: tuple[Hash, ...]


def inclusion_document(proof: InclusionProof) -> InclusionProofDocument:
    return msgspec.convert(proof.to_dict(), InclusionProofDocument)


class ConsistencyProofDocument(msgspec.Struct, frozen=True, kw_only=True):
    """``proof --consistency OLD --json``: the tree of ``new_size`` events extends the tree of
    ``old_size`` (RFC 9162 section 2.1.4)."""

    old_size: int
    new_size: int
    old_root_hash: Hash
    new_root_hash: Hash
    proof: tuple[Hash, ...]


def consistency_document(proof: ConsistencyProof) -> ConsistencyProofDocument:
    return msgspec.convert(proof.to_dict(), ConsistencyProofDocument)


class CheckpointDocument(msgspec.Struct, frozen=True, kw_only=True):
    """A tree head: the root of the first ``tree_size`` events of the log named ``origin``,
    with its signed note (``null``: unsigned, it only says which tree the proofs are in)."""

    origin: str
    tree_size: int
    root_hash: Hash
    note: str | None
    """The C2SP checkpoint in its Ed25519 signed note, as given to ``--checkpoint``."""


class SignedCheckpointDocument(CheckpointDocument, frozen=True, kw_only=True):
    """``checkpoint --json``: the checkpoint signed, by which key, and the files written."""

    key_name: str
    key_id: str
    """The 4-byte C2SP key id, 8 hex digits."""
    file: str | None
    """The note file written (``null``: the note went to standard output only)."""
    leaves_file: str | None
    """The leaves file written beside it (``null``: none)."""


class ProvenEventDocument(msgspec.Struct, frozen=True, kw_only=True):
    """An evidence event as the store hashed it (:data:`ledger.proofs.EVENT_KEYS`): SHA-256
    over ``previous_hash`` and these fields gives the event's chain hash, the leaf its
    inclusion proof places in the signed log."""

    position: int
    stream: str
    version: int
    event_id: str
    correlation_id: str | None
    causation_id: str | None
    recorded_at: str
    """When the store recorded it, RFC 3339 in UTC to the microsecond (``...T09:00:00.000000Z``)."""
    schema: int
    data: str
    """The event's JSON as stored, byte for byte (its ``type`` first)."""
    previous_hash: Hash
    """The chain hash of the event before it (64 zeros before the first)."""


class EvidenceProofs(msgspec.Struct, frozen=True, kw_only=True):
    """What ``explain --proofs`` adds: the inclusion proof of every evidence position the
    explanation cites, in position order, the checkpoint of the tree they are in, and each
    evidence event as it was hashed, so that an auditor checks the content, not only its
    hash."""

    checkpoint: CheckpointDocument
    evidence: tuple[InclusionProofDocument, ...]
    events: tuple[ProvenEventDocument, ...]


class ProvenExplanation(Explanation, frozen=True, kw_only=True):
    """``explain ID --json --proofs``: the explanation, then ``proofs``."""

    proofs: EvidenceProofs


class PositionCheck(msgspec.Struct, frozen=True, kw_only=True):
    """One evidence position checked by ``check-proofs``."""

    position: int
    holds: bool
    reason: str | None
    """Why it does not hold (``null`` when it does)."""
    type: str | None
    """The type of the event checked there (``null`` when it does not hold)."""


class ProofCheckDocument(msgspec.Struct, frozen=True, kw_only=True):
    """``check-proofs --json``: every evidence position of an explanation checked against a
    signed checkpoint."""

    ok: bool
    payment_id: str | None
    origin: str
    tree_size: int
    root_hash: Hash
    key_id: str
    positions: tuple[PositionCheck, ...]


class KeygenDocument(msgspec.Struct, frozen=True, kw_only=True):
    """``keygen --json``: the key files written and how verifiers name the key."""

    private_key: str
    public_key: str
    key_name: str
    key_id: str
    verifier_key: str
    """``<name>+<key id>+<base64 key>``, the form C2SP verifiers take."""
