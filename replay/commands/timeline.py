"""``payledger timeline --payment ID | --account ID``: the events that bear on a payment (its
stream, its account's, its channels' and its merchant's policy stream, up to the payment's last
event, plus every event its explanation cites) or on an account (its stream and its payments'),
interleaved in position order. Human output marks the evidence of the explanation."""

from __future__ import annotations

import argparse
from typing import Any

from ledger.errors import NotFoundError
from ledger.store import EventStore, Record
from projections import payment_at

from ..engine import explain
from ..explanation import Explanation
from ..render import record_doc, render_timeline
from ._common import add_command, console, currencies_of, non_empty, open_db, print_json
from .explain import evidence_records


def register(sub: Any) -> None:
    parser = add_command(
        sub, "timeline", "the events that bear on a payment or an account, in order", run
    )
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--payment", metavar="ID", type=non_empty, help="a payment id")
    which.add_argument("--account", metavar="ID", type=non_empty, help="an account id")


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


async def payment_timeline(store: EventStore, payment_id: str) -> tuple[list[Record], set[int]]:
    """The records bearing on a payment and the positions its explanation cites."""
    payment = await payment_at(store, payment_id)
    if payment is None:
        raise NotFoundError(f"no payment {payment_id!r} in the store")
    exp = await explain(store, payment_id)
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
    records.update(await evidence_records(store, missing))
    return [records[p] for p in sorted(records)], evidence


async def account_timeline(store: EventStore, account_id: str) -> tuple[list[Record], set[int]]:
    """The records of an account's stream and of its payments, and the evidence of the
    explanations of its failed payments."""
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


async def run(args: argparse.Namespace) -> int:
    async with open_db(args) as store:
        if args.payment is not None:
            records, evidence = await payment_timeline(store, args.payment)
            title = f"timeline of payment {args.payment}"
        else:
            records, evidence = await account_timeline(store, args.account)
            title = f"timeline of account {args.account}"
        currencies = None if args.json else await currencies_of(store, records)
    if args.json:
        for rec in records:
            print_json(record_doc(rec, evidence=rec.position in evidence))
    else:
        render_timeline(console, records, evidence, title, currencies)
    return 0
