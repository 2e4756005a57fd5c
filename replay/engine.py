"""The replay engine: why one payment failed, proved from the log (CONTRACT sections 5 and 7).

For every failed attempt of a payment the engine rebuilds the account, the channel and the
merchant's policy *as they were at the attempt's moment* (the fold of every event below its
``PaymentAttempted``, rule 7.1) with the projections' time travel, reading only the streams
involved, then asks the conditions table (:func:`causes.judge`) for the causes. Of the policy it
reads the rule of the payment's scenario only: it is the one rule the conditions read.
:func:`explain` answers with a handful of indexed reads (the account at every moment in one);
:mod:`replay.batch` explains every payment of a log in one pass and gives the same answers.
"""

from __future__ import annotations

from causes import World, moment_position
from ledger.errors import NotFoundError
from ledger.store import EventStore
from projections import payment_at
from projections.state import PaymentState
from projections.travel import (
    account_state_at,
    account_states_at,
    channel_state_at,
    policy_rule_at,
)

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
    """The world an attempt of ``payment`` on ``channel`` met at ``moment`` (the position of
    an event of the log): the account, the channel and the merchant's policy for the payment's
    scenario (the one rule the conditions read) folded from every event below ``moment``."""
    before = moment - 1
    return World(
        position=moment,
        account=await account_state_at(store, payment.account_id, before),
        channel=await channel_state_at(store, channel, before),
        policy=await policy_rule_at(store, payment.merchant, payment.scenario, before),
    )


async def explain(store: EventStore, payment_id: str) -> Explanation:
    """Explain one payment from the world each of its failed attempts met.

    Raises :class:`~ledger.errors.NotFoundError` when the store has no such payment.
    """
    payment = await payment_of(store, payment_id)
    moments = [
        (attempt, moment)
        for attempt, _ in failures(payment)
        if (moment := moment_position(attempt)) is not None
    ]
    # the account at every moment from one read; the channel and the policy rule at each
    accounts = await account_states_at(store, payment.account_id, [m - 1 for _, m in moments])
    worlds: dict[int, World] = {}
    for (attempt, moment), account in zip(moments, accounts, strict=True):
        worlds[attempt.attempt] = World(
            position=moment,
            account=account,
            channel=await channel_state_at(store, attempt.channel, moment - 1),
            policy=await policy_rule_at(store, payment.merchant, payment.scenario, moment - 1),
        )
    return assemble(payment, worlds)
