"""Slim events: each catalogue type cut down to the fields the projections' rows depend on, and
one decoder for them, so that a pass over a large log decodes only what it folds.

A stored event's JSON holds more than the persisted states need (a ``ChannelDecided``'s
candidates, every event's ``occurred_at``): :data:`SLIM` reads the fields listed here, with the
catalogue's own types and constraints, and skips the rest unparsed, about eight times faster
than :data:`ledger.events.DECODER` on a generated log. The store validated every event whole
against the catalogue before storing it (CONTRACT section 1), so the fields read here are the
values a full decode gives.

Two types are not cut down: a channel's or a policy's state keeps every field of its event
(``expected_until``, the allowed channels), and there are few of them, so the slim union holds
them whole.

:func:`slim_of_row` decodes a stored row's event the way :func:`ledger.store.record_from_row`
does (the JSON's own ``type`` decides; an older shape is upcast, an unknown type is an
:class:`ledger.events.UnknownEvent`, and a row that does not decode raises
:class:`ledger.errors.DamagedStoreError`), and gives a slim event, or a whole one for the two
types above and for an unknown type.
"""

from __future__ import annotations

from typing import Annotated, Final, TypeAlias

import msgspec

from ledger.events import (
    CATALOGUE,
    ENCODER,
    MAX_MINOR,
    ChannelPolicySet,
    ChannelStatusChanged,
    CreditStatus,
    Event,
    UnknownEvent,
)
from ledger.store import decode_event

__all__ = [
    "PAGE",
    "SLIM",
    "AccountOpened",
    "AnySlim",
    "ChannelDecided",
    "CreditLimitChanged",
    "CreditLineOpened",
    "CreditScoreChanged",
    "CreditStatusChanged",
    "FailoverTriggered",
    "PaymentAbandoned",
    "PaymentAttempted",
    "PaymentAuthorized",
    "PaymentDeclined",
    "PaymentRequested",
    "PaymentSettled",
    "RepaymentMade",
    "RepaymentOverdue",
    "Slim",
    "VerificationFailed",
    "VerificationPassed",
    "VerificationRequested",
    "Whole",
    "slim_of",
    "slim_of_row",
]

# The catalogue's field types (ledger.events), for the fields read here.
_Id = Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
_Text = Annotated[str, msgspec.Meta(max_length=4096)]
_Positive = Annotated[int, msgspec.Meta(gt=0, le=MAX_MINOR)]
_NonNegative = Annotated[int, msgspec.Meta(ge=0, le=MAX_MINOR)]
_Currency = Annotated[str, msgspec.Meta(pattern="^[A-Z]{3}$")]
_Attempt = Annotated[int, msgspec.Meta(ge=1, le=MAX_MINOR)]
_Score = Annotated[int, msgspec.Meta(ge=0, le=10_000)]


class Slim(msgspec.Struct, frozen=True, kw_only=True, tag_field="type", tag=True, gc=False):
    """The base of the slim events; each subclass is named (and tagged) like its catalogue
    type."""


# --- account stream ------------------------------------------------------------------------


class AccountOpened(Slim, frozen=True, kw_only=True):
    account_id: _Id
    holder_ref: _Id


class CreditLineOpened(Slim, frozen=True, kw_only=True):
    account_id: _Id
    product: _Id
    limit_minor: _NonNegative
    currency: _Currency


class CreditLimitChanged(Slim, frozen=True, kw_only=True):
    account_id: _Id
    product: _Id
    new_limit_minor: _NonNegative


class CreditScoreChanged(Slim, frozen=True, kw_only=True):
    account_id: _Id
    old_score: _Score
    new_score: _Score


class CreditStatusChanged(Slim, frozen=True, kw_only=True):
    account_id: _Id
    product: _Id
    new_status: CreditStatus
    reason: _Text


class RepaymentOverdue(Slim, frozen=True, kw_only=True):
    account_id: _Id
    product: _Id
    overdue_minor: _NonNegative
    days_overdue: _NonNegative


class RepaymentMade(Slim, frozen=True, kw_only=True):
    account_id: _Id
    product: _Id
    amount_minor: _Positive


# --- payment stream ------------------------------------------------------------------------


class PaymentRequested(Slim, frozen=True, kw_only=True):
    payment_id: _Id
    account_id: _Id
    merchant: _Id
    scenario: _Id
    amount_minor: _Positive
    currency: _Currency
    preferred_channel: _Id


class ChannelDecided(Slim, frozen=True, kw_only=True):
    payment_id: _Id
    attempt: _Attempt
    channel: _Id


class PaymentAttempted(Slim, frozen=True, kw_only=True):
    payment_id: _Id
    attempt: _Attempt
    channel: _Id


class VerificationRequested(Slim, frozen=True, kw_only=True):
    payment_id: _Id
    attempt: _Attempt


class VerificationFailed(Slim, frozen=True, kw_only=True):
    payment_id: _Id
    attempt: _Attempt


class VerificationPassed(Slim, frozen=True, kw_only=True):
    payment_id: _Id
    attempt: _Attempt


class PaymentAuthorized(Slim, frozen=True, kw_only=True):
    payment_id: _Id
    attempt: _Attempt
    channel: _Id
    amount_minor: _Positive


class PaymentDeclined(Slim, frozen=True, kw_only=True):
    payment_id: _Id
    attempt: _Attempt
    channel: _Id


class PaymentSettled(Slim, frozen=True, kw_only=True):
    payment_id: _Id
    attempt: _Attempt
    channel: _Id
    amount_minor: _Positive


class FailoverTriggered(Slim, frozen=True, kw_only=True):
    payment_id: _Id
    to_channel: _Id


class PaymentAbandoned(Slim, frozen=True, kw_only=True):
    payment_id: _Id


AnySlim: TypeAlias = (
    AccountOpened
    | CreditLineOpened
    | CreditLimitChanged
    | CreditScoreChanged
    | CreditStatusChanged
    | RepaymentOverdue
    | RepaymentMade
    | PaymentRequested
    | ChannelDecided
    | PaymentAttempted
    | VerificationRequested
    | VerificationFailed
    | VerificationPassed
    | PaymentAuthorized
    | PaymentDeclined
    | PaymentSettled
    | FailoverTriggered
    | PaymentAbandoned
)
"""Every slim event type."""

Whole: TypeAlias = ChannelStatusChanged | ChannelPolicySet | UnknownEvent
"""What :func:`slim_of_row` gives decoded whole."""

SLIM: Final = msgspec.json.Decoder(AnySlim | ChannelStatusChanged | ChannelPolicySet)
"""The decoder of the slim union, with the two types decoded whole."""

PAGE: Final = msgspec.json.Decoder(
    list[tuple[int, AnySlim | ChannelStatusChanged | ChannelPolicySet]]
)
"""The decoder of a page of ``[position, event]`` pairs
(:meth:`ledger.store.EventStore.read_json_page`)."""

_CURRENT: Final[dict[str, int]] = {n: c.schema_version for n, c in CATALOGUE.items()}


def slim_of(event: Event) -> AnySlim | Whole:
    """The slim form of a whole event (an upcast one, or one a caller holds as a record)."""
    if isinstance(event, ChannelStatusChanged | ChannelPolicySet | UnknownEvent):
        return event
    slim: AnySlim = SLIM.decode(ENCODER.encode(event))
    return slim


def slim_of_row(type_name: str, schema: int, data: str, position: int) -> AnySlim | Whole:
    """The event of a stored row (see the module docstring)."""
    if _CURRENT.get(type_name) == schema:
        try:
            found: AnySlim | ChannelStatusChanged | ChannelPolicySet = SLIM.decode(data)
            return found
        except (msgspec.ValidationError, msgspec.DecodeError):
            pass  # decoded whole below, which says why (it raises)
    return slim_of(decode_event(type_name, schema, data, 0, position))
