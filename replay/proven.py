"""An explanation whose evidence an auditor can check without the store (CONTRACT section 8).

:func:`prove_explanation` adds to an explanation the inclusion proof of every position it cites
as evidence (the root cause's, the contributing causes' and each attempt's), all in one tree:

- with a signed checkpoint note, the tree of the checkpoint's size, so that every proof checks
  against the root the note signs; the note is embedded as given. The store must still hold
  that tree (its stored root at that size equals the signed one), and every evidence position
  must be inside it;
- without one, the tree of the whole log, and an *unsigned* checkpoint naming its size and root
  (``note`` null). It says which tree the proofs are in; it proves nothing by itself, because
  whoever runs the store wrote it. An auditor checks such proofs against a signed checkpoint of
  that same size, or asks for ``explain --proofs --checkpoint FILE``.

:func:`check_explanation` is the auditor's side: given the JSON document and a checkpoint whose
signature was checked, it says for every cited position whether its proof holds and whether
the event the document carries for it (``proofs.events``: the event as it was hashed, with the
chain hash before it) hashes to the chain hash the proof places in the signed log, so that the
event's content, not only a hash, is shown to be in the signed log.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import msgspec

from ledger.checkpoint import DEFAULT_ORIGIN, Checkpoint, parse_checkpoint
from ledger.errors import DamagedStoreError, LedgerError
from ledger.proofs import ProofError, check_event, check_inclusion
from ledger.records import GENESIS_HASH, from_micros
from ledger.store import EventStore
from ledger.tree import inclusion, log_root

from .documents import (
    CheckpointDocument,
    EvidenceProofs,
    InclusionProofDocument,
    PositionCheck,
    ProvenEventDocument,
    ProvenExplanation,
    inclusion_document,
)
from .explanation import Explanation

__all__ = ["check_explanation", "cited_positions", "prove_explanation"]


def cited_positions(explanation: Explanation) -> list[int]:
    """Every position the explanation cites as evidence, sorted, once each."""
    cited: set[int] = set()
    if explanation.root_cause is not None:
        cited.update(explanation.root_cause.evidence)
        for cause in explanation.root_cause.contributing:
            cited.update(cause.evidence)
    for attempt in explanation.attempts:
        if attempt.cause is not None:
            cited.update(attempt.cause.evidence)
    return sorted(cited)


async def prove_explanation(
    store: EventStore, explanation: Explanation, *, note: str | bytes | None = None
) -> ProvenExplanation:
    """``explanation`` with the inclusion proof of each cited position (see the module
    docstring). Raises :class:`~ledger.proofs.ProofError` when the store no longer holds the
    tree the note signs, and :class:`~ledger.errors.LedgerError` when an evidence position is
    past the checkpoint."""
    signed: Checkpoint | None = None
    if note is not None:
        signed = parse_checkpoint(note)
        size, root = await log_root(store, min(signed.size, await store.head()))
        if size < signed.size:
            raise ProofError(
                f"the store holds {size} events, fewer than the {signed.size} the checkpoint"
                " signed: it does not extend the checkpoint (run verify --checkpoint)"
            )
        if root != signed.root_hash:
            raise ProofError(
                f"the store's tree of {size} events does not have the checkpoint's root: it"
                " does not extend the checkpoint (run verify --checkpoint)"
            )
        origin = signed.origin
    else:
        size, root = await log_root(store)
        origin = DEFAULT_ORIGIN
    positions = cited_positions(explanation)
    late = [p for p in positions if p > size]
    if late:
        raise LedgerError(
            f"evidence position {late[0]} is past the checkpoint's {size} events: sign a newer"
            " checkpoint"
        )
    proofs = [inclusion_document(await inclusion(store, p, size)) for p in positions]
    events = [await _proven_event(store, p) for p in positions]
    for proof, event in zip(proofs, events, strict=True):
        if not _hashes_to(event, proof):
            raise DamagedStoreError(
                proof.position,
                f"position {proof.position}: the stored event does not hash to its chain hash"
                " (run verify)",
                damaged=f"position {proof.position}",
            )
    text = note.decode() if isinstance(note, bytes) else note
    return ProvenExplanation(
        **{f: getattr(explanation, f) for f in explanation.__struct_fields__},
        proofs=EvidenceProofs(
            checkpoint=CheckpointDocument(
                origin=origin, tree_size=size, root_hash=root.hex(), note=text
            ),
            evidence=tuple(proofs),
            events=tuple(events),
        ),
    )


async def _proven_event(store: EventStore, position: int) -> ProvenEventDocument:
    """The event at ``position`` as it was hashed, with the chain hash before it."""
    (row,) = await store.read_rows(position, position)
    if position == 1:
        previous = GENESIS_HASH
    else:
        previous = (await store.leaf_hashes(position - 1, position - 1))[0]
    _, stream, version, _, schema, _, recorded_us, event_id, correlation, causation, data = row[:11]
    recorded = from_micros(recorded_us).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return ProvenEventDocument(
        position=position,
        stream=stream,
        version=version,
        event_id=event_id,
        correlation_id=correlation,
        causation_id=causation,
        recorded_at=recorded,
        schema=schema,
        data=data,
        previous_hash=previous.hex(),
    )


def _hashes_to(event: ProvenEventDocument, proof: InclusionProofDocument) -> bool:
    try:
        check_event(msgspec.to_builtins(event), msgspec.to_builtins(proof))
    except ProofError:
        return False
    return True


def _positions(value: Any, where: str) -> Iterable[int]:
    if not isinstance(value, list) or not all(
        isinstance(p, int) and not isinstance(p, bool) for p in value
    ):
        raise LedgerError(f"the explanation's {where} is not a list of positions")
    return value


def _cited(doc: Mapping[str, Any]) -> set[int]:
    """The positions a JSON explanation cites as evidence."""
    cited: set[int] = set()
    root = doc.get("root_cause")
    if isinstance(root, Mapping):
        cited.update(_positions(root.get("evidence"), "root_cause.evidence"))
        for i, cause in enumerate(root.get("contributing") or []):
            if isinstance(cause, Mapping):
                cited.update(_positions(cause.get("evidence"), f"contributing[{i}].evidence"))
    for i, attempt in enumerate(doc.get("attempts") or []):
        cause = attempt.get("cause") if isinstance(attempt, Mapping) else None
        if isinstance(cause, Mapping):
            cited.update(_positions(cause.get("evidence"), f"attempts[{i}].cause.evidence"))
    return cited


def check_explanation(doc: Any, checkpoint: Checkpoint) -> list[PositionCheck]:
    """For every position the explanation ``doc`` (the decoded ``explain --json --proofs``
    document) cites as evidence, and every proof it carries, whether the proof holds against
    ``checkpoint`` (whose signature the caller checked) and the event carried for it hashes to
    the proven chain hash. Raises
    :class:`~ledger.errors.LedgerError` for a document that is not such an explanation."""
    if not isinstance(doc, Mapping):
        raise LedgerError("the explanation is not a JSON object")
    proofs = doc.get("proofs")
    if not isinstance(proofs, Mapping) or not isinstance(proofs.get("evidence"), list):
        raise LedgerError("the explanation carries no proofs: make it with explain --proofs")
    given = _by_position(proofs["evidence"], "proofs.evidence")
    events = _by_position(proofs.get("events") or [], "proofs.events")
    checks: list[PositionCheck] = []
    for position in sorted(_cited(doc) | given.keys()):
        proof, event = given.get(position), events.get(position)
        if proof is None or event is None:
            reason = "no proof" if proof is None else "no event: the proof places a hash only"
            checks.append(PositionCheck(position=position, holds=False, reason=reason, type=None))
            continue
        try:
            check_inclusion(proof, checkpoint)
            kind = check_event(event, proof)
        except ProofError as e:
            reason = str(e).removeprefix(f"position {position}: ")
            checks.append(PositionCheck(position=position, holds=False, reason=reason, type=None))
        else:
            checks.append(PositionCheck(position=position, holds=True, reason=None, type=kind))
    return checks


def _by_position(items: Any, where: str) -> dict[int, Any]:
    if not isinstance(items, list):
        raise LedgerError(f"the explanation's {where} is not a list")
    found: dict[int, Any] = {}
    for i, item in enumerate(items):
        position = item.get("position") if isinstance(item, Mapping) else None
        if not isinstance(position, int) or isinstance(position, bool):
            raise LedgerError(f"{where}[{i}] has no position")
        found.setdefault(position, item)
    return found
