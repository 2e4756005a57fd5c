"""What if: a failed attempt replayed against the same historical world with another channel.

The attempt keeps its moment (CONTRACT rule 7.1) and its customer (a failed verification carries
over to any channel); the channel, its health, the merchant's rule for it and, for a credit
channel, the account's line of that product are asked of the conditions table
(:func:`causes.checks`), row by row.
"""

from __future__ import annotations

from causes import checks, judge, moment_of, moment_position
from ledger.errors import LedgerError, NotFoundError
from ledger.store import EventStore

from .assemble import failures
from .engine import payment_of, world_at
from .explanation import AttemptCause, WhatIf

__all__ = ["whatif"]


async def whatif(
    store: EventStore, payment_id: str, channel: str, *, attempt: int | None = None
) -> WhatIf:
    """Replay a failed attempt (the last by default) with ``channel`` instead, against the
    world the original attempt met; says whether each check would have passed.

    Raises :class:`~ledger.errors.NotFoundError` for an unknown payment or attempt, and
    :class:`~ledger.errors.LedgerError` when the payment has no failed attempt or ``channel``
    is empty.
    """
    if not channel or not channel.strip():
        raise LedgerError("whatif needs a channel name")
    payment = await payment_of(store, payment_id)
    points = failures(payment)
    if attempt is not None:
        points = [p for p in points if p[0].attempt == attempt]
        if not points:
            if all(a.attempt != attempt for a in payment.attempts):
                raise NotFoundError(f"payment {payment_id!r} has no attempt {attempt}")
            raise LedgerError(f"attempt {attempt} of payment {payment_id!r} did not fail")
    if not points:
        raise LedgerError(f"payment {payment_id!r} has no failed attempt to replay")
    original, ended = points[-1]
    position = moment_position(original)
    assert position is not None  # an attempt exists only through its own events
    then = await world_at(store, payment, position, original.channel)
    causes = judge(moment_of(payment, original, then, ended_at=ended))
    other = await world_at(store, payment, position, channel)
    asked = checks(moment_of(payment, original, other, channel=channel, ended_at=ended))
    return WhatIf(
        payment_id=payment.payment_id,
        attempt=original.attempt,
        original_channel=original.channel,
        channel=channel,
        position=position - 1,
        would_pass=all(c.status != "failed" for c in asked),
        checks=tuple(asked),
        original_cause=AttemptCause(
            category=causes[0].category, evidence=causes[0].evidence, summary=causes[0].summary
        ),
    )
