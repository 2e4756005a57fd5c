"""Realistic, deterministic events for the benchmarks: accounts, channels, policies, payments.

The mix follows the catalogue (CONTRACT section 2): an account opens with a credit line and later
sees score, limit and status changes, repayments and overdue notices; a payment is requested, a
channel is decided among candidates, the customer may be asked to verify, the attempt is
authorized or declined, sometimes fails over to another channel, and is settled or abandoned.
Events of concurrent payments interleave in the log as they would in production.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import msgspec

from ledger.events import (
    AccountOpened,
    Candidate,
    ChannelDecided,
    ChannelPolicySet,
    ChannelStatus,
    ChannelStatusChanged,
    CreditLimitChanged,
    CreditLineOpened,
    CreditScoreChanged,
    CreditStatus,
    CreditStatusChanged,
    DeclineCode,
    Event,
    FailoverTriggered,
    PaymentAbandoned,
    PaymentAttempted,
    PaymentAuthorized,
    PaymentDeclined,
    PaymentRequested,
    PaymentSettled,
    RepaymentMade,
    RepaymentOverdue,
    VerificationFailed,
    VerificationFailure,
    VerificationMethod,
    VerificationPassed,
    VerificationRequested,
    stream_of,
)

__all__ = ["START", "account_history", "ledger_events", "payment_flow"]

START = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
CHANNELS = ("huabei", "jiebei", "bank_card", "balance")
MERCHANTS = ("zd-auto", "byd-finance", "geely-credit", "nio-pay", "dealer-42")
SCENARIOS = ("car_loan_down_payment", "car_loan_deposit", "car_loan_instalment", "retail")
DECLINES: tuple[DeclineCode, ...] = (
    "credit_suspended",
    "insufficient_credit",
    "channel_unavailable",
    "timeout",
    "risk_blocked",
    "unknown",
)
METHODS: tuple[VerificationMethod, ...] = ("otp", "password", "biometric")
FAILURES: tuple[VerificationFailure, ...] = ("wrong_code", "expired", "not_entered")
STATUSES: tuple[CreditStatus, ...] = ("active", "limited", "suspended", "frozen")
CHANNEL_STATUSES: tuple[ChannelStatus, ...] = ("degraded", "down", "maintenance", "up")


def _at(event: Event, t: datetime) -> Event:
    """``event`` with ``occurred_at`` moved to ``t`` (keeps the log in time order)."""
    return msgspec.structs.replace(event, occurred_at=t)


def payment_flow(rng: random.Random, payment_id: str, account_id: str, t: datetime) -> list[Event]:
    """The events of one payment (3 to 11 of them), starting at ``t``."""
    second = timedelta(seconds=1)
    amount = rng.randrange(10_000, 5_000_000)
    preferred = rng.choice(CHANNELS[:3])
    events: list[Event] = [
        PaymentRequested(
            occurred_at=t,
            payment_id=payment_id,
            account_id=account_id,
            merchant=rng.choice(MERCHANTS),
            scenario=rng.choice(SCENARIOS),
            amount_minor=amount,
            currency="CNY",
            preferred_channel=preferred,
        )
    ]
    attempts = 2 if rng.random() < 0.12 else 1
    channel = preferred
    for attempt in range(1, attempts + 1):
        t += second
        events.append(
            ChannelDecided(
                occurred_at=t,
                payment_id=payment_id,
                attempt=attempt,
                channel=channel,
                candidates=tuple(
                    Candidate(
                        channel=c,
                        eligible=c == channel or rng.random() < 0.5,
                        reason="eligible" if c == channel else "lower priority for scenario",
                    )
                    for c in CHANNELS[: rng.randrange(2, 5)]
                ),
                rule="prefer customer's channel when eligible",
            )
        )
        if rng.random() < 0.4:
            t += second
            method = rng.choice(METHODS)
            events.append(
                VerificationRequested(
                    occurred_at=t, payment_id=payment_id, attempt=attempt, method=method
                )
            )
            t += 20 * second
            if rng.random() < 0.1:
                events.append(
                    VerificationFailed(
                        occurred_at=t,
                        payment_id=payment_id,
                        attempt=attempt,
                        method=method,
                        reason=rng.choice(FAILURES),
                        remaining_tries=rng.randrange(0, 3),
                    )
                )
                events.append(
                    PaymentAbandoned(
                        occurred_at=t + second, payment_id=payment_id, reason="verification"
                    )
                )
                return events
            events.append(
                VerificationPassed(
                    occurred_at=t, payment_id=payment_id, attempt=attempt, method=method
                )
            )
        t += second
        events.append(
            PaymentAttempted(
                occurred_at=t,
                payment_id=payment_id,
                attempt=attempt,
                channel=channel,
                amount_minor=amount,
            )
        )
        t += 2 * second
        if attempt < attempts or rng.random() < 0.08:
            events.append(
                PaymentDeclined(
                    occurred_at=t,
                    payment_id=payment_id,
                    attempt=attempt,
                    channel=channel,
                    code=rng.choice(DECLINES),
                    message="declined by processor",
                )
            )
            if attempt < attempts:
                target = "bank_card" if channel != "bank_card" else "balance"
                events.append(
                    FailoverTriggered(
                        occurred_at=t + second,
                        payment_id=payment_id,
                        from_channel=channel,
                        to_channel=target,
                        reason="decline on first channel",
                    )
                )
                channel = target
                continue
            events.append(
                PaymentAbandoned(occurred_at=t + second, payment_id=payment_id, reason="declined")
            )
            return events
        events.append(
            PaymentAuthorized(
                occurred_at=t,
                payment_id=payment_id,
                attempt=attempt,
                channel=channel,
                amount_minor=amount,
                auth_ref=f"AUTH-{payment_id}-{attempt}",
            )
        )
        events.append(
            PaymentSettled(
                occurred_at=t + 3 * second,
                payment_id=payment_id,
                attempt=attempt,
                channel=channel,
                amount_minor=amount,
            )
        )
    return events


def account_history(
    rng: random.Random, account_id: str, count: int, t: datetime = START
) -> list[Event]:
    """``count`` events of one account stream: opened, a credit line, then its life."""
    minute = timedelta(minutes=1)
    limit = rng.randrange(1_000_000, 10_000_000, 100)
    score = rng.randrange(550, 800)
    status: CreditStatus = "active"
    events: list[Event] = [
        AccountOpened(occurred_at=t, account_id=account_id, holder_ref=f"H-{account_id}"),
        CreditLineOpened(
            occurred_at=t + minute,
            account_id=account_id,
            product="huabei",
            limit_minor=limit,
            currency="CNY",
        ),
    ]
    while len(events) < count:
        t += rng.randrange(1, 600) * minute
        roll = rng.random()
        if roll < 0.35:
            events.append(
                RepaymentMade(
                    occurred_at=t,
                    account_id=account_id,
                    product="huabei",
                    amount_minor=rng.randrange(100, 500_000),
                )
            )
        elif roll < 0.6:
            new_score = max(0, min(10_000, score + rng.randrange(-40, 41)))
            events.append(
                CreditScoreChanged(
                    occurred_at=t,
                    account_id=account_id,
                    old_score=score,
                    new_score=new_score,
                    bureau="zhima",
                )
            )
            score = new_score
        elif roll < 0.8:
            new_limit = max(0, limit + rng.randrange(-500_000, 500_001, 100))
            events.append(
                CreditLimitChanged(
                    occurred_at=t,
                    account_id=account_id,
                    product="huabei",
                    old_limit_minor=limit,
                    new_limit_minor=new_limit,
                    reason="periodic review",
                )
            )
            limit = new_limit
        elif roll < 0.9:
            events.append(
                RepaymentOverdue(
                    occurred_at=t,
                    account_id=account_id,
                    product="huabei",
                    overdue_minor=rng.randrange(100, 200_000),
                    days_overdue=rng.randrange(1, 60),
                )
            )
        else:
            new_status = rng.choice(STATUSES)
            events.append(
                CreditStatusChanged(
                    occurred_at=t,
                    account_id=account_id,
                    product="huabei",
                    old_status=status,
                    new_status=new_status,
                    reason="risk review" if new_status != "active" else "review cleared",
                )
            )
            status = new_status
    return events[:count]


def ledger_events(count: int, seed: int = 0) -> Iterator[tuple[str, Event]]:
    """``count`` events of a production-like log as ``(stream, event)``, in time order.

    Channels and merchant policies first, then accounts opening and paying: about one account per
    five payments, up to 64 payments in flight at once (their events interleave), and now and
    then a credit-line change, a repayment or a channel incident.
    """
    rng = random.Random(seed)
    emitted = 0
    t = START

    def emit(event: Event) -> tuple[str, Event]:
        nonlocal emitted
        emitted += 1
        return stream_of(event), event

    for channel in CHANNELS:
        if emitted < count:
            yield emit(
                ChannelStatusChanged(occurred_at=t, channel=channel, status="up", reason="boot")
            )
    for merchant in MERCHANTS:
        if emitted < count:
            yield emit(
                ChannelPolicySet(
                    occurred_at=t,
                    merchant=merchant,
                    scenario="car_loan_down_payment",
                    allowed_channels=("bank_card", "huabei"),
                    reason="lender rule",
                )
            )
    accounts: list[tuple[str, list[Event]]] = []
    in_flight: list[list[Event]] = []
    payments = 0
    second = timedelta(seconds=1)
    while emitted < count:
        t += second
        roll = rng.random()
        if not accounts or roll < 0.04:
            account_id = f"A{len(accounts) + 1:07d}"
            history = account_history(rng, account_id, rng.randrange(2, 8), t)
            accounts.append((account_id, history[2:]))
            for event in history[:2]:
                if emitted < count:
                    yield emit(event)
        elif roll < 0.07:
            _, rest = accounts[rng.randrange(len(accounts))]
            if rest:
                event = rest.pop(0)
                yield emit(_at(event, t))
        elif roll < 0.0705:
            status = rng.choice(CHANNEL_STATUSES)
            yield emit(
                ChannelStatusChanged(
                    occurred_at=t,
                    channel=rng.choice(CHANNELS),
                    status=status,
                    reason="incident" if status != "up" else "recovered",
                )
            )
        elif len(in_flight) < 64 and (roll < 0.25 or not in_flight):
            payments += 1
            account_id = accounts[rng.randrange(len(accounts))][0]
            flow = payment_flow(rng, f"P{payments:08d}", account_id, t)
            in_flight.append(flow)
        else:
            index = rng.randrange(len(in_flight))
            flow = in_flight[index]
            yield emit(_at(flow.pop(0), t))
            if not flow:
                in_flight[index] = in_flight[-1]
                in_flight.pop()
