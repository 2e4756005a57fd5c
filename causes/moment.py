"""The moment of an attempt and the world it met (CONTRACT rules 7.1 and 7.2).

The moment of an attempt is the global position of its ``PaymentAttempted``. The account, the
channel and the policy that judge it are the fold of every event at a *lower* position: events
appended later never change the judgement, whatever their ``occurred_at``, even when they land
between the attempt and its decline. The attempt's own events (its ``ChannelDecided``,
verifications, authorization, decline) belong to it whatever their position.

An attempt recorded without a ``PaymentAttempted`` (a decision the payment was abandoned after,
a bare decline) is judged at its first own event instead: the world its decision met.
"""

from __future__ import annotations

import msgspec

from ledger.events import DeclineCode
from projections.state import (
    AccountState,
    AttemptState,
    ChannelState,
    PaymentState,
    PolicyState,
    VerificationResult,
)

__all__ = ["Moment", "World", "moment_of", "moment_position"]


class World(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """The account, the channel and the merchant's policy an attempt met: the fold of every
    event before ``position``."""

    position: int
    """The moment: every event at a lower position is in the fold, none at or above it."""
    account: AccountState | None
    """``None``: the account's stream had no event yet."""
    channel: ChannelState
    policy: PolicyState


class Moment(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One attempt (real, or considered on another channel) and the world it met: everything
    the blocking conditions of :mod:`causes.conditions` read."""

    payment_id: str
    account_id: str
    merchant: str
    scenario: str
    amount_minor: int
    currency: str
    attempt: int
    channel: str
    world: World
    verifications: tuple[VerificationResult, ...] = ()
    """The attempt's own verifications, whatever their position."""
    code: DeclineCode | None = None
    """The decline code, when the attempt was declined."""
    declined_at: int | None = None
    """The position of the attempt's ``PaymentDeclined``."""
    ended_at: int | None = None
    """The decline, or the ``PaymentAbandoned`` that ended the attempt unfinished."""


def moment_position(attempt: AttemptState) -> int | None:
    """The moment of ``attempt``: its ``PaymentAttempted``, else its first own event."""
    if attempt.attempted_position is not None:
        return attempt.attempted_position
    return attempt.first_position


def moment_of(
    payment: PaymentState,
    attempt: AttemptState,
    world: World,
    *,
    channel: str | None = None,
    ended_at: int | None = None,
) -> Moment:
    """``attempt`` of ``payment`` at its moment in ``world`` (on ``channel`` instead of its own,
    for a what-if: ``world.channel`` must then be that channel's state)."""
    declined = attempt.outcome == "declined"
    return Moment(
        payment_id=payment.payment_id,
        account_id=payment.account_id,
        merchant=payment.merchant,
        scenario=payment.scenario,
        amount_minor=payment.amount_minor,
        currency=payment.currency,
        attempt=attempt.attempt,
        channel=channel or attempt.channel,
        world=world,
        verifications=attempt.verifications,
        code=attempt.code if declined else None,
        declined_at=attempt.outcome_position if declined else None,
        ended_at=attempt.outcome_position if declined else ended_at,
    )
