"""Channel routing with failover: the payment-service side of the ledger.

A :class:`Router` takes a :class:`PaymentRequest`, evaluates every candidate channel against the
merchant's policy for the scenario, the channel's health and the account's credit as the
projections hold them now, and records each step in the payment's stream::

    PaymentRequested, ChannelDecided(1), PaymentAttempted(1),
    [VerificationRequested, VerificationFailed..., VerificationPassed],
    PaymentAuthorized(1), PaymentSettled(1)                       # or
    PaymentDeclined(1), FailoverTriggered, ChannelDecided(2), ... # or
    PaymentDeclined(n), PaymentAbandoned

Every append carries the payment stream's ``expected_version`` (the first one ``0``: the stream
must not exist yet), so a retried request with a payment id already recorded appends nothing and
returns the recorded outcome (``duplicate=True``). The store gives the events its time-ordered
ids, so the event-id index grows at its right edge.

The processor is an interface the service implements (:class:`Processor`); each call runs under
``anyio.move_on_after(config.timeout_seconds)`` and a call that does not finish in time is a
``PaymentDeclined`` with code ``timeout``. Cancelling :meth:`Router.pay` leaves the stream
consistent: a payment cut short is closed with ``PaymentAbandoned`` (shielded).

What to do after a decline is the :class:`RoutingConfig`'s decline-code table
(:data:`DEFAULT_ACTIONS`). Channel health (:class:`ChannelHealth`) watches the technical failure
rate (``timeout``, ``channel_unavailable``) of each channel over a sliding time window and
records ``ChannelStatusChanged`` to ``degraded`` (then back ``up``, with hysteresis) with the
measured rate as its reason; a degraded channel is routed around except for a small share of
probe payments that let it recover.

State is read from an in-memory :class:`projections.World` that the router keeps in step with
the log (:class:`projections.view.StateView`): before each decision it applies every event
appended since its last look, so decisions reflect the log, including other writers' events.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime

import anyio

from ledger.errors import ConcurrencyError
from ledger.events import (
    Candidate,
    ChannelDecided,
    ChannelStatusChanged,
    DeclineCode,
    Event,
    FailoverTriggered,
    PaymentAbandoned,
    PaymentAttempted,
    PaymentAuthorized,
    PaymentDeclined,
    PaymentRequested,
    PaymentSettled,
)
from ledger.store import EventStore
from projections.view import StateView

from .attempt import run_attempt
from .candidates import clip, evaluate
from .config import TECHNICAL_CODES, RoutingConfig
from .health import ChannelHealth
from .processor import PaymentOutcome, PaymentRequest, Processor

__all__ = ["Router"]


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Router:
    """Routes payments across channels and records every decision in the store."""

    def __init__(
        self,
        store: EventStore,
        processor: Processor,
        config: RoutingConfig | None = None,
        *,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.store = store
        self.processor = processor
        self.config = config if config is not None else RoutingConfig()
        self.clock = clock
        self.view = StateView(store)
        self.health = ChannelHealth(self.config.health)
        self._health_lock = anyio.Lock()

    # --- evaluating candidates -------------------------------------------------------------

    def evaluate(
        self,
        request: PaymentRequest,
        *,
        tried: Mapping[str, str] | None = None,
        non_credit_only: bool = False,
        attempt: int = 1,
    ) -> tuple[list[Candidate], str | None, str]:
        """Every candidate channel with its eligibility and reason, the chosen channel
        (``None``: none eligible) and the rule that chose it, from the current view
        (:func:`gateway.candidates.evaluate`)."""
        return evaluate(
            self.view,
            self.config,
            request,
            tried=tried,
            non_credit_only=non_credit_only,
            attempt=attempt,
        )

    # --- recording -------------------------------------------------------------------------

    async def _append(self, request: PaymentRequest, events: list[Event], version: int) -> int:
        stream = f"payment-{request.payment_id}"
        result = await self.store.append(
            stream,
            events,
            expected_version=version,
            correlation_id=request.correlation_id or request.payment_id,
        )
        self.view.note(stream, events, result)
        return result.version

    async def _recorded(self, request: PaymentRequest) -> PaymentOutcome:
        """The outcome of a payment id already in the log."""
        await self.view.refresh()
        state = self.view.payment(request.payment_id)
        if state is None:  # pragma: no cover - the conflict says it exists
            return PaymentOutcome(
                payment_id=request.payment_id,
                status="pending",
                channel=None,
                attempts=0,
                reason="already being recorded",
                duplicate=True,
            )
        last = state.attempts[-1] if state.attempts else None
        codes = [a.code for a in state.attempts if a.code is not None]
        return PaymentOutcome(
            payment_id=request.payment_id,
            status=state.outcome,
            channel=None if last is None else last.channel,
            attempts=len(state.attempts),
            code=codes[-1] if codes else None,
            reason=state.abandoned_reason or "already recorded",
            duplicate=True,
        )

    # --- one attempt -------------------------------------------------------------------------

    # --- paying ----------------------------------------------------------------------------

    async def pay(self, request: PaymentRequest) -> PaymentOutcome:
        """Route and record one payment; see the module docstring.

        A payment id already in the log is not recorded again: the recorded outcome is returned
        with ``duplicate=True``.
        """
        state: dict[str, int] = {"version": 0, "appending": 0}
        try:
            return await self._pay(request, state)
        except anyio.get_cancelled_exc_class():
            if state["version"] > 0 or state["appending"]:  # only a payment this call recorded
                with anyio.CancelScope(shield=True):
                    await self._close_cancelled(request)
            raise

    async def _close_cancelled(self, request: PaymentRequest) -> None:
        """Close a payment cut short by a cancellation with ``PaymentAbandoned``."""
        with anyio.move_on_after(30):
            stream = f"payment-{request.payment_id}"
            records = [r async for r in self.store.read_stream(stream)]
            if not records or isinstance(records[-1].event, (PaymentAbandoned, PaymentSettled)):
                return
            if isinstance(records[-1].event, PaymentAuthorized) and not self.config.settle:
                return
            with contextlib.suppress(ConcurrencyError):
                await self._append(
                    request,
                    [
                        PaymentAbandoned(
                            payment_id=request.payment_id,
                            reason="cancelled by the caller before the payment finished",
                            occurred_at=self.clock(),
                        )
                    ],
                    records[-1].version,
                )

    async def _pay(self, request: PaymentRequest, state: dict[str, int]) -> PaymentOutcome:
        pid = request.payment_id
        await self.view.refresh()
        if self.view.payment(pid) is not None:
            return await self._recorded(request)
        pending: list[Event] = [
            PaymentRequested(
                payment_id=pid,
                account_id=request.account_id,
                merchant=request.merchant,
                scenario=request.scenario,
                amount_minor=request.amount_minor,
                currency=request.currency,
                preferred_channel=request.preferred_channel,
                occurred_at=self.clock(),
            )
        ]
        tried: dict[str, str] = {}
        non_credit_only = False
        attempt = 1
        candidates, chosen, rule = self.evaluate(request)
        last_code: DeclineCode | None = None

        async def record(events: list[Event]) -> None:
            state["appending"] = 1
            try:
                state["version"] = await self._append(request, events, state["version"])
            except ConcurrencyError:  # the payment id is recorded already: a retry
                raise _Duplicate from None

        try:
            while True:
                channel = chosen or request.preferred_channel
                pending.append(
                    ChannelDecided(
                        payment_id=pid,
                        attempt=attempt,
                        channel=channel,
                        candidates=tuple(candidates),
                        rule=rule,
                        occurred_at=self.clock(),
                    )
                )
                if chosen is None:
                    reason = clip(
                        "no eligible channel: "
                        + "; ".join(f"{c.channel}: {c.reason}" for c in candidates)
                    )
                    pending.append(
                        PaymentAbandoned(payment_id=pid, reason=reason, occurred_at=self.clock())
                    )
                    await record(pending)
                    return PaymentOutcome(
                        payment_id=pid,
                        status="failed",
                        channel=channel,
                        attempts=attempt,
                        code=last_code,
                        reason=reason,
                    )
                pending.append(
                    PaymentAttempted(
                        payment_id=pid,
                        attempt=attempt,
                        channel=chosen,
                        amount_minor=request.amount_minor,
                        occurred_at=self.clock(),
                    )
                )
                await record(pending)
                pending, result = await run_attempt(
                    self.processor, self.config, self.clock, request, chosen, attempt
                )
                if result.status == "authorized":
                    ref = result.auth_ref or f"{pid}-{attempt}"
                    pending.append(
                        PaymentAuthorized(
                            payment_id=pid,
                            attempt=attempt,
                            channel=chosen,
                            amount_minor=request.amount_minor,
                            auth_ref=ref,
                            occurred_at=self.clock(),
                        )
                    )
                    if self.config.settle:
                        pending.append(
                            PaymentSettled(
                                payment_id=pid,
                                attempt=attempt,
                                channel=chosen,
                                amount_minor=request.amount_minor,
                                occurred_at=self.clock(),
                            )
                        )
                    await record(pending)
                    await self._observe(chosen, attempt, failed=False)
                    return PaymentOutcome(
                        payment_id=pid,
                        status="succeeded",
                        channel=chosen,
                        attempts=attempt,
                        code=last_code,
                        reason=f"authorized on {chosen} ({ref})",
                    )
                code: DeclineCode = result.code or "unknown"
                last_code = code
                message = result.message or code
                pending.append(
                    PaymentDeclined(
                        payment_id=pid,
                        attempt=attempt,
                        channel=chosen,
                        code=code,
                        message=message,
                        occurred_at=self.clock(),
                    )
                )
                tried[chosen] = f"attempt {attempt} declined {code}"
                action = self.config.action_for(code)
                stop_reason: str | None = None
                if action == "stop":
                    stop_reason = f"attempt {attempt} on {chosen} declined {code}: no failover"
                elif attempt >= self.config.max_attempts:
                    stop_reason = (
                        f"attempt {attempt} on {chosen} declined {code}: "
                        f"maximum of {self.config.max_attempts} attempts reached"
                    )
                else:
                    if action == "fallback_non_credit":
                        non_credit_only = True
                    await self.view.refresh()
                    nxt_candidates, nxt, nxt_rule = self.evaluate(
                        request, tried=tried, non_credit_only=non_credit_only, attempt=attempt + 1
                    )
                    if nxt is None:
                        stop_reason = (
                            f"attempt {attempt} on {chosen} declined {code}: no other eligible "
                            "channel: "
                            + "; ".join(
                                f"{c.channel}: {c.reason}"
                                for c in nxt_candidates
                                if c.channel not in tried
                            )
                        )
                if stop_reason is not None:
                    stop_reason = clip(stop_reason)
                    pending.append(
                        PaymentAbandoned(
                            payment_id=pid, reason=stop_reason, occurred_at=self.clock()
                        )
                    )
                    await record(pending)
                    await self._observe(chosen, attempt, failed=code in TECHNICAL_CODES)
                    return PaymentOutcome(
                        payment_id=pid,
                        status="failed",
                        channel=chosen,
                        attempts=attempt,
                        code=code,
                        reason=stop_reason,
                    )
                assert nxt is not None
                pending.append(
                    FailoverTriggered(
                        payment_id=pid,
                        from_channel=chosen,
                        to_channel=nxt,
                        reason=f"attempt {attempt} declined {code} ({message}): {action}",
                        occurred_at=self.clock(),
                    )
                )
                await self._observe(chosen, attempt, failed=code in TECHNICAL_CODES)
                attempt += 1
                candidates, chosen, rule = nxt_candidates, nxt, nxt_rule
        except _Duplicate:
            return await self._recorded(request)

    # --- health ----------------------------------------------------------------------------

    async def _observe(self, channel: str, attempt: int, *, failed: bool) -> None:
        if not self.config.health.enabled:
            return
        if attempt > 1 and not self.config.health.count_failovers:
            return
        self.health.observe(channel, self.clock(), failed)
        if self.config.health.inline:
            state = self.view.channel(channel)
            if self.health.verdict(state, self.clock()) is not None:
                await self.check_health([channel])

    async def check_health(
        self, channels: Sequence[str] | None = None
    ) -> list[ChannelStatusChanged]:
        """Record the status changes the measured failure rates call for; returns them."""
        if not self.config.health.enabled:
            return []
        changes: list[ChannelStatusChanged] = []
        async with self._health_lock:
            await self.view.refresh()
            now = self.clock()
            for channel in channels if channels is not None else self.health.channels():
                state = self.view.channel(channel)
                verdict = self.health.verdict(state, now)
                if verdict is None:
                    continue
                status, reason = verdict
                event = ChannelStatusChanged(
                    channel=channel, status=status, reason=reason, occurred_at=now
                )
                stream = f"channel-{channel}"
                try:
                    await self.store.append(
                        stream, [event], expected_version=await self.store.stream_version(stream)
                    )
                except ConcurrencyError:
                    continue  # another writer changed it: judge again next time
                changes.append(event)
            if changes:
                await self.view.refresh()
        return changes


class _Duplicate(Exception):
    """Internal: the payment id was already recorded."""
