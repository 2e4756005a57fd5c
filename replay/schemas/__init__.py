"""JSON Schemas (draft 2020-12) of the ``--json`` documents, shipped with the package.

Each ``<name>.schema.json`` here is generated from the very Struct the command encodes
(:data:`DOCUMENTS`), so a schema and its output cannot drift apart; ``scripts/schemas.py``
writes them and the test suite checks that the files are current and that every command's
output validates against its schema.

======================  ====================================================================
``explanation``         ``explain --json`` (and each line of ``explain --failed --json``)
``whatif``              ``whatif --json``
``state``               ``state --json``
``incident``            each line of ``incidents --json``
``event``               each line of ``export``, ``audit --json`` and ``timeline --json``
``stats``               ``stats --json``
``simulation``          ``simulate --json``
``keygen``              ``keygen --json``
``checkpoint``          ``checkpoint --json``
``inclusion_proof``     ``proof POSITION --json``
``consistency_proof``   ``proof --consistency OLD --json``
``explanation_proofs``  ``explain ID --json --proofs``
``proof_check``         ``check-proofs --json``
======================  ====================================================================
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Final

import msgspec

from ..documents import (
    ConsistencyProofDocument,
    EventDocument,
    InclusionProofDocument,
    KeygenDocument,
    ProofCheckDocument,
    ProvenExplanation,
    SignedCheckpointDocument,
    SimulationDocument,
    StateDocument,
    StatsDocument,
)
from ..explanation import Explanation, WhatIf
from ..incidents import Incident

__all__ = ["DIRECTORY", "DOCUMENTS", "generate", "load", "render"]

DIRECTORY: Final = Path(__file__).resolve().parent
DOCUMENTS: Final[dict[str, type[msgspec.Struct]]] = {
    "checkpoint": SignedCheckpointDocument,
    "consistency_proof": ConsistencyProofDocument,
    "event": EventDocument,
    "explanation": Explanation,
    "explanation_proofs": ProvenExplanation,
    "inclusion_proof": InclusionProofDocument,
    "incident": Incident,
    "keygen": KeygenDocument,
    "proof_check": ProofCheckDocument,
    "simulation": SimulationDocument,
    "state": StateDocument,
    "stats": StatsDocument,
    "whatif": WhatIf,
}


def generate(name: str) -> dict[str, Any]:
    """The schema of document ``name``, from its Struct."""
    schema: dict[str, Any] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": f"payledger {name}",
        **msgspec.json.schema(DOCUMENTS[name]),
    }
    return schema


def render(name: str) -> str:
    """The file text of :func:`generate` (indented, keys in order, a final newline)."""
    return json.dumps(generate(name), indent=2, ensure_ascii=False) + "\n"


def load(name: str) -> dict[str, Any]:
    """The shipped schema of document ``name``."""
    loaded: dict[str, Any] = json.loads(
        (DIRECTORY / f"{name}.schema.json").read_text(encoding="utf-8")
    )
    return loaded
