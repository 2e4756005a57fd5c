"""The processor interface a service plugs into the router, and what flows through it: the
request, the processor's answers, the customer's verification, the router's outcome."""

from __future__ import annotations

from typing import Literal, Protocol

import msgspec

from ledger.events import DeclineCode, VerificationFailure, VerificationMethod

__all__ = ["PaymentOutcome", "PaymentRequest", "Processor", "ProcessorResult", "Verification"]


class PaymentRequest(msgspec.Struct, frozen=True, kw_only=True):
    """A payment the service asks the router to make."""

    payment_id: str
    account_id: str
    merchant: str
    scenario: str
    amount_minor: int
    preferred_channel: str
    currency: str = "CNY"
    correlation_id: str | None = None
    """The caller's order id; the payment id when absent."""


class ProcessorResult(msgspec.Struct, frozen=True, kw_only=True):
    """What a processor answered to an authorization."""

    status: Literal["authorized", "declined", "timeout"]
    code: DeclineCode | None = None
    message: str = ""
    auth_ref: str | None = None

    @classmethod
    def authorized(cls, auth_ref: str) -> ProcessorResult:
        return cls(status="authorized", auth_ref=auth_ref)

    @classmethod
    def declined(cls, code: DeclineCode, message: str = "") -> ProcessorResult:
        return cls(status="declined", code=code, message=message)

    @classmethod
    def timed_out(cls, message: str = "the processor did not answer in time") -> ProcessorResult:
        return cls(status="timeout", code="timeout", message=message)


class Verification(msgspec.Struct, frozen=True, kw_only=True):
    """The customer's verification of one attempt: the failed tries, then passed or not."""

    method: VerificationMethod
    failures: tuple[VerificationFailure, ...] = ()
    passed: bool = True


class Processor(Protocol):
    """The payment processor a service plugs into the router."""

    async def verify(
        self, request: PaymentRequest, channel: str, attempt: int
    ) -> Verification | None:
        """Verify the customer for this attempt; ``None`` when the channel needs none."""
        ...

    async def authorize(
        self, request: PaymentRequest, channel: str, attempt: int
    ) -> ProcessorResult:
        """Authorize the payment on ``channel``."""
        ...


class PaymentOutcome(msgspec.Struct, frozen=True, kw_only=True):
    """What :meth:`Router.pay` did."""

    payment_id: str
    status: Literal["succeeded", "failed", "pending"]
    channel: str | None
    """The last channel decided (the one that succeeded, or the last one tried)."""
    attempts: int
    code: DeclineCode | None = None
    """The last decline code."""
    reason: str = ""
    duplicate: bool = False
    """True when the payment id was already recorded: nothing was appended."""
