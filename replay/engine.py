"""The replay engine: why one payment failed, proved from the log (CONTRACT sections 5 and 7).

For every failed attempt of a payment the engine rebuilds the account, the channel and the
merchant's policy *as they were at the attempt's moment* (the fold of every event below its
``PaymentAttempted``, rule 7.1) with the projections' time travel, reading only the streams
involved, then asks the conditions table (:func:`causes.judge`) for the causes.
:func:`explain` answers with a handful of indexed reads; :mod:`replay.batch` explains every
payment of a log in one pass and gives the same answers.
"""

from __future__ import annotations

from causes import World, moment_position
from ledger.errors import NotFoundError
from ledger.store import EventStore
from projections import account_at, channel_at, payment_at, policy_at
from projections.state import PaymentState

from .assemble import assemble, failures
from .explanation import Explanation

__all__ = ["explain", "payment_of", "world_at"]


async def payment_of(store: EventStore, payment_id: str) -> PaymentState:
    """The payment after its last event; :class:`~ledger.errors.NotFoundError` when the store
    has no such payment."""
    payment = await payment_at(store, payment_id)
    if payment is None:
        raise NotFoundError(f"no payment {payment_id!r} in the store")
    return payment


async def world_at(store: EventStore, payment: PaymentState, moment: int, channel: str) -> World:
    """The world an attempt of ``payment`` on ``channel`` met at ``moment``: the account, the
    channel and the merchant's policy folded from every event below ``moment``."""
    before = moment - 1
    return World(
        position=moment,
        account=await account_at(store, payment.account_id, position=before),
        channel=await channel_at(store, channel, position=before),
        policy=await policy_at(store, payment.merchant, position=before),
    )


async def explain(store: EventStore, payment_id: str) -> Explanation:
    """Explain one payment from the world each of its failed attempts met.

    Raises :class:`~ledger.errors.NotFoundError` when the store has no such payment.
    """
    payment = await payment_of(store, payment_id)
    worlds: dict[int, World] = {}
    for attempt, _ in failures(payment):
        moment = moment_position(attempt)
        if moment is not None:
            worlds[attempt.attempt] = await world_at(store, payment, moment, attempt.channel)
    return assemble(payment, worlds)
