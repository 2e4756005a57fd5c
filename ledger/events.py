"""The event catalogue (CONTRACT section 2): one frozen msgspec Struct per event type.

Each Struct's tag (the JSON ``type``) is its class name. Constraints are msgspec ``Meta``
annotations, so they are checked on every decode; the store also checks events built in
Python (msgspec does not validate ``__init__``) by round-tripping them through :data:`DECODER`
before they are appended.

Schema evolution follows msgspec's rules: a new field gets a default, a field's type never
changes. A shape that must change for real bumps the type's ``schema_version`` and registers an
upcaster (:func:`register_upcaster`) from the old shape to the new one.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, ClassVar, Final, Literal, TypeAlias

import msgspec

__all__ = [
    "CATALOGUE",
    "DECODER",
    "ENCODER",
    "MAX_MINOR",
    "AccountOpened",
    "AnyEvent",
    "Candidate",
    "ChannelDecided",
    "ChannelPolicySet",
    "ChannelStatus",
    "ChannelStatusChanged",
    "CreditLimitChanged",
    "CreditLineOpened",
    "CreditScoreChanged",
    "CreditStatus",
    "CreditStatusChanged",
    "DeclineCode",
    "Event",
    "FailoverTriggered",
    "PaymentAbandoned",
    "PaymentAttempted",
    "PaymentAuthorized",
    "PaymentDeclined",
    "PaymentRequested",
    "PaymentSettled",
    "RepaymentMade",
    "RepaymentOverdue",
    "UnknownEvent",
    "VerificationFailed",
    "VerificationFailure",
    "VerificationMethod",
    "VerificationPassed",
    "VerificationRequested",
    "register_upcaster",
    "stream_of",
    "upcast",
]

# --- closed vocabularies -------------------------------------------------------------------

CreditStatus: TypeAlias = Literal["active", "limited", "suspended", "frozen", "closed"]
ChannelStatus: TypeAlias = Literal["up", "degraded", "down", "maintenance"]
VerificationMethod: TypeAlias = Literal["otp", "password", "biometric"]
VerificationFailure: TypeAlias = Literal["wrong_code", "expired", "not_entered"]
DeclineCode: TypeAlias = Literal[
    "credit_suspended",
    "insufficient_credit",
    "channel_unavailable",
    "channel_not_permitted",
    "verification_failed",
    "invalid_details",
    "timeout",
    "risk_blocked",
    "unknown",
]

# --- field types ---------------------------------------------------------------------------

Id = Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
"""A non-empty identifier (account, payment, merchant, channel, product, scenario)."""
Text = Annotated[str, msgspec.Meta(max_length=4096)]
"""Free text: a reason or a message."""
MAX_MINOR: Final = 2**63 - 1
"""The largest amount the ledger stores (an SQLite INTEGER)."""
PositiveMinor = Annotated[int, msgspec.Meta(gt=0, le=MAX_MINOR)]
"""A payment or repayment amount in minor units (fen): strictly positive."""
NonNegativeMinor = Annotated[int, msgspec.Meta(ge=0, le=MAX_MINOR)]
"""A limit or balance in minor units: never negative."""
Currency = Annotated[str, msgspec.Meta(pattern="^[A-Z]{3}$")]
"""An ISO 4217 code."""
Timestamp = Annotated[datetime, msgspec.Meta(tz=True)]
"""An RFC 3339 timestamp with its zone; the store accepts only UTC."""
Attempt = Annotated[int, msgspec.Meta(ge=1, le=MAX_MINOR)]
Score = Annotated[int, msgspec.Meta(ge=0, le=10_000)]
Count = Annotated[int, msgspec.Meta(ge=0, le=MAX_MINOR)]


class Event(msgspec.Struct, frozen=True, kw_only=True, tag_field="type", tag=True, gc=False):
    """The base of every catalogue event. ``type`` in JSON is the subclass's name."""

    schema_version: ClassVar[int] = 1
    occurred_at: Timestamp

    @property
    def type(self) -> str:
        """The event's catalogue name (its JSON ``type``)."""
        return type(self).__name__


class Candidate(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One channel a router considered, with whether it was eligible and why."""

    channel: Id
    eligible: bool
    reason: Text


# --- account stream ------------------------------------------------------------------------


class AccountOpened(Event, frozen=True, kw_only=True):
    account_id: Id
    holder_ref: Id


class CreditLineOpened(Event, frozen=True, kw_only=True):
    account_id: Id
    product: Id
    limit_minor: NonNegativeMinor
    currency: Currency


class CreditLimitChanged(Event, frozen=True, kw_only=True):
    account_id: Id
    product: Id
    old_limit_minor: NonNegativeMinor
    new_limit_minor: NonNegativeMinor
    reason: Text


class CreditScoreChanged(Event, frozen=True, kw_only=True):
    account_id: Id
    old_score: Score
    new_score: Score
    bureau: Id


class CreditStatusChanged(Event, frozen=True, kw_only=True):
    account_id: Id
    product: Id
    old_status: CreditStatus
    new_status: CreditStatus
    reason: Text


class RepaymentOverdue(Event, frozen=True, kw_only=True):
    account_id: Id
    product: Id
    overdue_minor: NonNegativeMinor
    days_overdue: Count


class RepaymentMade(Event, frozen=True, kw_only=True):
    account_id: Id
    product: Id
    amount_minor: PositiveMinor


# --- channel and policy streams ------------------------------------------------------------


class ChannelStatusChanged(Event, frozen=True, kw_only=True):
    channel: Id
    status: ChannelStatus
    reason: Text
    expected_until: Timestamp | None = None


class ChannelPolicySet(Event, frozen=True, kw_only=True):
    merchant: Id
    scenario: Id
    allowed_channels: tuple[Id, ...]
    reason: Text


# --- payment stream ------------------------------------------------------------------------


class PaymentRequested(Event, frozen=True, kw_only=True):
    payment_id: Id
    account_id: Id
    merchant: Id
    scenario: Id
    amount_minor: PositiveMinor
    currency: Currency
    preferred_channel: Id


class ChannelDecided(Event, frozen=True, kw_only=True):
    payment_id: Id
    attempt: Attempt
    channel: Id
    candidates: tuple[Candidate, ...]
    rule: Text


class PaymentAttempted(Event, frozen=True, kw_only=True):
    payment_id: Id
    attempt: Attempt
    channel: Id
    amount_minor: PositiveMinor


class VerificationRequested(Event, frozen=True, kw_only=True):
    payment_id: Id
    attempt: Attempt
    method: VerificationMethod


class VerificationFailed(Event, frozen=True, kw_only=True):
    payment_id: Id
    attempt: Attempt
    method: VerificationMethod
    reason: VerificationFailure
    remaining_tries: Count


class VerificationPassed(Event, frozen=True, kw_only=True):
    payment_id: Id
    attempt: Attempt
    method: VerificationMethod


class PaymentAuthorized(Event, frozen=True, kw_only=True):
    payment_id: Id
    attempt: Attempt
    channel: Id
    amount_minor: PositiveMinor
    auth_ref: Id


class PaymentDeclined(Event, frozen=True, kw_only=True):
    payment_id: Id
    attempt: Attempt
    channel: Id
    code: DeclineCode
    message: Text


class PaymentSettled(Event, frozen=True, kw_only=True):
    payment_id: Id
    attempt: Attempt
    channel: Id
    amount_minor: PositiveMinor


class FailoverTriggered(Event, frozen=True, kw_only=True):
    payment_id: Id
    from_channel: Id
    to_channel: Id
    reason: Text


class PaymentAbandoned(Event, frozen=True, kw_only=True):
    payment_id: Id
    reason: Text


AnyEvent: TypeAlias = (
    AccountOpened
    | CreditLineOpened
    | CreditLimitChanged
    | CreditScoreChanged
    | CreditStatusChanged
    | RepaymentOverdue
    | RepaymentMade
    | ChannelStatusChanged
    | ChannelPolicySet
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
"""The tagged union of every catalogue type."""

CATALOGUE: Final[dict[str, type[Event]]] = {
    cls.__name__: cls
    for cls in (
        AccountOpened,
        CreditLineOpened,
        CreditLimitChanged,
        CreditScoreChanged,
        CreditStatusChanged,
        RepaymentOverdue,
        RepaymentMade,
        ChannelStatusChanged,
        ChannelPolicySet,
        PaymentRequested,
        ChannelDecided,
        PaymentAttempted,
        VerificationRequested,
        VerificationFailed,
        VerificationPassed,
        PaymentAuthorized,
        PaymentDeclined,
        PaymentSettled,
        FailoverTriggered,
        PaymentAbandoned,
    )
}
"""Every catalogue type by its name."""

DECODER: Final = msgspec.json.Decoder(AnyEvent)
"""The one decoder for the union, built once (JSON of an event, ``type`` included)."""
ENCODER: Final = msgspec.json.Encoder()
"""The one encoder (msgspec encodes Struct fields in declaration order: canonical bytes)."""


class UnknownEvent(Event, frozen=True, kw_only=True):
    """A stored event whose type this version does not know. Never appended; read paths yield
    it so that a caller can report it instead of crashing."""

    type_name: str
    payload: str
    position: int


# --- schema evolution ----------------------------------------------------------------------

Upcaster: TypeAlias = Callable[[dict[str, Any]], dict[str, Any]]
_UPCASTERS: dict[tuple[str, int], Upcaster] = {}


def register_upcaster(type_name: str, from_version: int, fn: Upcaster) -> None:
    """Register ``fn`` to turn the stored shape ``from_version`` of ``type_name`` (a dict of
    the event's JSON) into shape ``from_version + 1``. Upcasters chain up to the type's current
    ``schema_version``."""
    if type_name not in CATALOGUE:
        raise ValueError(f"unknown event type {type_name!r}")
    if from_version < 1 or from_version >= CATALOGUE[type_name].schema_version:
        raise ValueError(
            f"{type_name} is at schema version {CATALOGUE[type_name].schema_version}; "
            f"cannot register an upcaster from version {from_version}"
        )
    _UPCASTERS[(type_name, from_version)] = fn


def upcast(type_name: str, stored_version: int, payload: dict[str, Any]) -> dict[str, Any]:
    """Apply the registered upcasters from ``stored_version`` to the current version.

    Raises ``LookupError`` when a step has no upcaster."""
    current = CATALOGUE[type_name].schema_version
    version = stored_version
    while version < current:
        fn = _UPCASTERS.get((type_name, version))
        if fn is None:
            raise LookupError(f"no upcaster for {type_name} from schema version {version}")
        payload = fn(payload)
        version += 1
    return payload


# --- streams -------------------------------------------------------------------------------

_ACCOUNT_TYPES: Final = frozenset(
    {
        "AccountOpened",
        "CreditLineOpened",
        "CreditLimitChanged",
        "CreditScoreChanged",
        "CreditStatusChanged",
        "RepaymentOverdue",
        "RepaymentMade",
    }
)


def stream_of(event: Event) -> str:
    """The stream an event belongs in (CONTRACT section 2): ``account-<account_id>``,
    ``channel-<channel>``, ``policy-<merchant>`` or ``payment-<payment_id>``."""
    name = type(event).__name__
    if name in _ACCOUNT_TYPES:
        prefix, key = "account-", "account_id"
    elif name == "ChannelStatusChanged":
        prefix, key = "channel-", "channel"
    elif name == "ChannelPolicySet":
        prefix, key = "policy-", "merchant"
    else:
        prefix, key = "payment-", "payment_id"
    return prefix + str(getattr(event, key))
