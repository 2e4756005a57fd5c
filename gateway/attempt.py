"""One attempt on one channel: the customer's verification, then the authorization, each
bounded by the configured timeout; what the processor answered becomes events and a result
(a call that does not finish in time is a ``timeout`` decline, the caller's own observation)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import anyio

from ledger.events import Event, VerificationFailed, VerificationPassed, VerificationRequested

from .config import RoutingConfig
from .processor import PaymentRequest, Processor, ProcessorResult, Verification

__all__ = ["run_attempt"]


async def run_attempt(
    processor: Processor,
    config: RoutingConfig,
    clock: Callable[[], datetime],
    request: PaymentRequest,
    channel: str,
    attempt: int,
) -> tuple[list[Event], ProcessorResult]:
    """Verification and authorization, each under the timeout; the verification events and
    the result (a timeout is a ``timeout`` decline)."""
    events: list[Event] = []
    timeout = config.timeout_seconds
    verification: Verification | None = None
    with anyio.move_on_after(timeout) as scope:
        verification = await processor.verify(request, channel, attempt)
    if scope.cancelled_caught:
        return events, ProcessorResult.timed_out("verification did not finish in time")
    if verification is not None:
        pid = request.payment_id
        method = verification.method
        events.append(
            VerificationRequested(
                payment_id=pid, attempt=attempt, method=method, occurred_at=clock()
            )
        )
        tries = config.verification_tries
        failures = verification.failures[:tries]
        for i, why in enumerate(failures):
            events.append(
                VerificationFailed(
                    payment_id=pid,
                    attempt=attempt,
                    method=method,
                    reason=why,
                    remaining_tries=tries - i - 1,
                    occurred_at=clock(),
                )
            )
        if not verification.passed or len(failures) >= tries:
            return events, ProcessorResult.declined(
                "verification_failed", f"{method} verification failed {len(failures)} times"
            )
        events.append(
            VerificationPassed(payment_id=pid, attempt=attempt, method=method, occurred_at=clock())
        )
    result: ProcessorResult | None = None
    with anyio.move_on_after(timeout) as scope:
        result = await processor.authorize(request, channel, attempt)
    if scope.cancelled_caught or result is None:
        return events, ProcessorResult.timed_out(f"no answer from {channel} within {timeout:g} s")
    return events, result
