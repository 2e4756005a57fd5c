"""The payment projection: the request, each attempt (the channel decision with its candidates,
the verifications, the outcome and its code), the failovers and the payment's outcome.

Outcome (CONTRACT rule 7.6): ``succeeded`` once the payment has a ``PaymentSettled``;
otherwise ``failed`` once it is abandoned, or when its highest-numbered attempt was declined and
no ``FailoverTriggered`` follows that decline; otherwise ``pending`` (an authorized but unsettled
payment is pending, and so is one whose failover was triggered and whose next attempt has not
ended).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from msgspec.structs import replace

from ledger.errors import UnknownEventTypeError
from ledger.events import (
    ChannelDecided,
    Event,
    FailoverTriggered,
    PaymentAbandoned,
    PaymentAttempted,
    PaymentAuthorized,
    PaymentDeclined,
    PaymentRequested,
    PaymentSettled,
    UnknownEvent,
    VerificationFailed,
    VerificationPassed,
    VerificationRequested,
)
from ledger.store import Record

from .state import AttemptState, FailoverState, PaymentOutcome, PaymentState, VerificationResult

__all__ = ["PAYMENT_EVENT_TYPES", "apply", "apply_event", "outcome_of"]

PAYMENT_EVENT_TYPES: Final = frozenset(
    {
        "PaymentRequested",
        "ChannelDecided",
        "PaymentAttempted",
        "VerificationRequested",
        "VerificationFailed",
        "VerificationPassed",
        "PaymentAuthorized",
        "PaymentDeclined",
        "PaymentSettled",
        "FailoverTriggered",
        "PaymentAbandoned",
    }
)
"""The event types of the ``payment-<id>`` stream."""


def outcome_of(state: PaymentState) -> PaymentOutcome:
    """The payment's outcome by CONTRACT rule 7.6 (see the module docstring)."""
    if state.settled_position is not None:
        return "succeeded"
    if state.abandoned_position is not None:
        return "failed"
    attempts = state.attempts
    if attempts:
        last = attempts[-1]
        if last.outcome == "declined":
            declined_at = last.outcome_position or 0
            for f in state.failovers:
                if f.position > declined_at:
                    return "pending"
            return "failed"
    return "pending"


def _attempt(state: PaymentState, number: int, channel: str | None, pos: int) -> AttemptState:
    attempts = state.attempts
    if attempts and attempts[-1].attempt == number:  # the common case: the latest attempt
        return attempts[-1]
    for a in attempts:
        if a.attempt == number:
            return a
    if channel is None:
        channel = state.failovers[-1].to_channel if state.failovers else state.preferred_channel
    return AttemptState(attempt=number, channel=channel, first_position=pos)


def _put(state: PaymentState, attempt: AttemptState) -> tuple[AttemptState, ...]:
    attempts = state.attempts
    if not attempts or attempts[-1].attempt < attempt.attempt:
        return (*attempts, attempt)
    if attempts[-1].attempt == attempt.attempt:
        return (*attempts[:-1], attempt)
    others = [a for a in state.attempts if a.attempt != attempt.attempt]
    others.append(attempt)
    others.sort(key=lambda a: a.attempt)
    return tuple(others)


def _decided(state: PaymentState, e: ChannelDecided, pos: int) -> PaymentState:
    a = replace(
        _attempt(state, e.attempt, e.channel, pos),
        channel=e.channel,
        decided_position=pos,
        candidates=tuple(e.candidates),
        rule=e.rule,
    )
    return replace(state, attempts=_put(state, a), position=pos)


def _attempted(state: PaymentState, e: PaymentAttempted, pos: int) -> PaymentState:
    a = replace(
        _attempt(state, e.attempt, e.channel, pos), channel=e.channel, attempted_position=pos
    )
    return replace(state, attempts=_put(state, a), position=pos)


def _verification_requested(
    state: PaymentState, e: VerificationRequested, pos: int
) -> PaymentState:
    a = _attempt(state, e.attempt, None, pos)
    return replace(state, attempts=_put(state, a), position=pos)


def _verified(
    state: PaymentState, e: VerificationFailed | VerificationPassed, pos: int
) -> PaymentState:
    a = _attempt(state, e.attempt, None, pos)
    if isinstance(e, VerificationFailed):
        result = VerificationResult(
            method=e.method,
            passed=False,
            reason=e.reason,
            remaining_tries=e.remaining_tries,
            position=pos,
        )
    else:
        result = VerificationResult(method=e.method, passed=True, position=pos)
    a = replace(a, verifications=(*a.verifications, result))
    return replace(state, attempts=_put(state, a), position=pos)


def _authorized(state: PaymentState, e: PaymentAuthorized, pos: int) -> PaymentState:
    a = replace(
        _attempt(state, e.attempt, e.channel, pos),
        outcome="authorized",
        code=None,
        message=None,
        auth_ref=e.auth_ref,
        outcome_position=pos,
        outcome_at=e.occurred_at,
    )
    return replace(state, attempts=_put(state, a), position=pos)


def _settled(state: PaymentState, e: PaymentSettled, pos: int) -> PaymentState:
    a = replace(
        _attempt(state, e.attempt, e.channel, pos),
        outcome="settled",
        code=None,
        message=None,
        outcome_position=pos,
        outcome_at=e.occurred_at,
    )
    settled = state.settled_position if state.settled_position is not None else pos
    return replace(state, attempts=_put(state, a), position=pos, settled_position=settled)


def _declined(state: PaymentState, e: PaymentDeclined, pos: int) -> PaymentState:
    a = replace(
        _attempt(state, e.attempt, e.channel, pos),
        outcome="declined",
        code=e.code,
        message=e.message,
        outcome_position=pos,
        outcome_at=e.occurred_at,
    )
    return replace(state, attempts=_put(state, a), position=pos)


def _failover(state: PaymentState, e: FailoverTriggered, pos: int) -> PaymentState:
    failover = FailoverState(
        from_channel=e.from_channel, to_channel=e.to_channel, reason=e.reason, position=pos
    )
    return replace(state, failovers=(*state.failovers, failover), position=pos)


def _abandoned(state: PaymentState, e: PaymentAbandoned, pos: int) -> PaymentState:
    return replace(
        state,
        abandoned_reason=e.reason,
        abandoned_position=pos,
        abandoned_at=e.occurred_at,
        position=pos,
    )


_Handler = Callable[[PaymentState, Any, int], PaymentState]
_HANDLERS: Final[dict[type[Event], tuple[_Handler, bool]]] = {
    # handler, whether the event can change the payment's outcome
    ChannelDecided: (_decided, True),
    PaymentAttempted: (_attempted, True),
    VerificationRequested: (_verification_requested, False),
    VerificationFailed: (_verified, False),
    VerificationPassed: (_verified, False),
    PaymentAuthorized: (_authorized, True),
    PaymentSettled: (_settled, True),
    PaymentDeclined: (_declined, True),
    FailoverTriggered: (_failover, True),
    PaymentAbandoned: (_abandoned, True),
}


def apply(state: PaymentState | None, record: Record) -> PaymentState | None:
    """The payment after ``record`` (an event of its stream); ``None`` until its
    ``PaymentRequested``. Raises :class:`UnknownEventTypeError` for an event of an unknown
    type."""
    return apply_event(state, record.event, record.position)


def apply_event(state: PaymentState | None, event: Event, pos: int) -> PaymentState | None:
    """:func:`apply` of an event at position ``pos``."""
    if isinstance(event, PaymentRequested):
        if state is not None:  # a second request in one stream: the first one stands
            return replace(state, position=pos)
        return PaymentState(
            payment_id=event.payment_id,
            account_id=event.account_id,
            merchant=event.merchant,
            scenario=event.scenario,
            amount_minor=event.amount_minor,
            currency=event.currency,
            preferred_channel=event.preferred_channel,
            requested_at=event.occurred_at,
            requested_position=pos,
            position=pos,
        )
    found = _HANDLERS.get(type(event))
    if found is None:
        if isinstance(event, UnknownEvent):
            raise UnknownEventTypeError(event.type_name, pos)
        return None if state is None else replace(state, position=pos)
    if state is None:
        return None
    handler, decisive = found
    state = handler(state, event, pos)
    if not decisive:
        return state
    outcome = outcome_of(state)
    return state if outcome == state.outcome else replace(state, outcome=outcome)
