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
from typing import Any

import msgspec

from ledger.codec import record_document
from ledger.store import Record
from projections.state import AccountState

__all__ = [
    "CreditDocument",
    "EventDocument",
    "SimulationDocument",
    "StateDocument",
    "StatsDocument",
    "event_document",
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
