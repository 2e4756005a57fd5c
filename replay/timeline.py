"""The events that bear on a payment or an account, in position order, and the positions an
explanation cites: what ``payledger timeline`` lists and ``payledger report --payment`` draws.

A payment's timeline is its own stream, its account's, the streams of the channels it preferred
and tried and its merchant's policy stream, each up to the payment's last event, plus every
event its explanation cites (wherever it lies). An account's timeline is its stream and its
payments'.
"""

from __future__ import annotations

from collections.abc import Iterable

from ledger.errors import NotFoundError
from ledger.store import EventStore, Record
from projections import payment_at

from .engine import explain
from .explanation import Explanation

__all__ = ["account_timeline", "evidence_of", "payment_timeline", "records_at"]


def evidence_of(exp: Explanation) -> set[int]:
    """Every position the explanation cites (root cause, contributing, each attempt)."""
    found: set[int] = set()
    if exp.root_cause is not None:
        found.update(exp.root_cause.evidence)
        for c in exp.root_cause.contributing:
            found.update(c.evidence)
    for a in exp.attempts:
        if a.cause is not None:
            found.update(a.cause.evidence)
    return found


async def records_at(store: EventStore, positions: Iterable[int]) -> dict[int, Record]:
    """The records at ``positions`` (a few indexed reads)."""
    found: dict[int, Record] = {}
    for p in sorted(set(positions)):
        async for rec in store.read_all(from_position=p, to_position=p, page_size=1):
            found[rec.position] = rec
    return found


async def payment_timeline(
    store: EventStore, payment_id: str, *, explanation: Explanation | None = None
) -> tuple[list[Record], set[int]]:
    """The records bearing on a payment and the positions its explanation cites.

    ``explanation``: the payment's, when the caller already has it (else it is explained here).
    Raises :class:`~ledger.errors.NotFoundError` when the store has no such payment.
    """
    payment = await payment_at(store, payment_id)
    if payment is None:
        raise NotFoundError(f"no payment {payment_id!r} in the store")
    exp = explanation if explanation is not None else await explain(store, payment_id)
    evidence = evidence_of(exp)
    end = 0
    async for rec in store.read_stream(f"payment-{payment_id}"):
        end = rec.position
    streams = {
        f"payment-{payment_id}",
        f"account-{payment.account_id}",
        f"policy-{payment.merchant}",
        f"channel-{payment.preferred_channel}",
    } | {f"channel-{a.channel}" for a in payment.attempts}
    records = {r.position: r async for r in store.read_streams(streams, to_position=end)}
    missing = evidence - records.keys()
    records.update(await records_at(store, missing))
    return [records[p] for p in sorted(records)], evidence


async def account_timeline(store: EventStore, account_id: str) -> tuple[list[Record], set[int]]:
    """The records of an account's stream and of its payments, and the evidence of the
    explanations of its failed payments. Raises :class:`~ledger.errors.NotFoundError` when
    the store has no such account."""
    payments = await store.payments_of(account_id)
    streams = {f"account-{account_id}"} | {f"payment-{p}" for p in payments}
    records = {r.position: r async for r in store.read_streams(streams)}
    if not records:
        raise NotFoundError(f"no account {account_id!r} in the store")
    evidence: set[int] = set()
    for pid in payments:
        exp = await explain(store, pid)
        if exp.outcome == "failed" or any(a.cause for a in exp.attempts):
            evidence |= {p for p in evidence_of(exp) if p in records}
    return [records[p] for p in sorted(records)], evidence
