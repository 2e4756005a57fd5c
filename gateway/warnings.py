"""Early warnings: the ledger's monitoring side.

:func:`warnings` reads the log in position order and yields a :class:`Warning` when

- an account with a pending or recent car-loan payment (requested within
  :data:`RECENT` before the event) has a score drop (``credit_score_drop``), a repayment
  overdue 30 days or more (``repayment_overdue``), or a credit line moving away from ``active``
  (``credit_status``);
- a channel turns ``degraded``, ``down`` or ``maintenance`` (``channel_status``), or its
  technical failure rate (``timeout``/``channel_unavailable`` declines per attempt) over its
  last :data:`RATE_WINDOW` attempts rises past :data:`RATE_THRESHOLD` (``channel_failure_rate``;
  once per rise: it warns again only after the rate fell back under half the threshold).

Each warning names its subject (the stream: ``account-A1``, ``channel-huabei``), the position
of the event that raised it and, for credit warnings, the car-loan payments at stake. With
``follow=True`` the stream goes on with events appended later (:meth:`EventStore.wait_for_append`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Final, Literal, TypeAlias

import msgspec

from ledger.events import (
    ChannelStatusChanged,
    CreditLineOpened,
    CreditScoreChanged,
    CreditStatusChanged,
    PaymentAbandoned,
    PaymentAttempted,
    PaymentDeclined,
    PaymentRequested,
    PaymentSettled,
    RepaymentOverdue,
)
from ledger.money import format_money
from ledger.store import EventStore, Record

from .config import TECHNICAL_CODES

__all__ = [
    "OVERDUE_DAYS",
    "RATE_THRESHOLD",
    "RATE_WINDOW",
    "RECENT",
    "Severity",
    "Warning",
    "WarningKind",
    "Watcher",
    "warnings",
]

WarningKind: TypeAlias = Literal[
    "credit_score_drop",
    "repayment_overdue",
    "credit_status",
    "channel_status",
    "channel_failure_rate",
]
Severity: TypeAlias = Literal["info", "warning", "critical"]

RECENT: Final = timedelta(days=30)
"""How long after a car-loan payment its account's credit events still warn."""
OVERDUE_DAYS: Final = 30
RATE_WINDOW: Final = 50
RATE_THRESHOLD: Final = 0.2
RATE_MIN_ATTEMPTS: Final = 10

_TYPES: Final = (
    "CreditLineOpened",
    "PaymentRequested",
    "PaymentAttempted",
    "PaymentDeclined",
    "PaymentSettled",
    "PaymentAbandoned",
    "CreditScoreChanged",
    "CreditStatusChanged",
    "RepaymentOverdue",
    "ChannelStatusChanged",
)


class Warning(msgspec.Struct, frozen=True, kw_only=True):
    """One early warning."""

    kind: WarningKind
    severity: Severity
    subject: str
    """The stream it is about: ``account-<id>`` or ``channel-<name>``."""
    summary: str
    position: int
    """The global position of the event that raised it (the evidence)."""
    occurred_at: datetime
    payments: tuple[str, ...] = ()
    """For credit warnings: the pending or recent car-loan payments at stake."""


class _CarLoan(msgspec.Struct):
    payment_id: str
    account_id: str
    requested_at: datetime
    pending: bool = True


class Watcher:
    """The state the warnings need, fed one record at a time (:meth:`feed`)."""

    def __init__(self) -> None:
        self._car_loans: dict[str, _CarLoan] = {}
        self._by_account: dict[str, dict[str, _CarLoan]] = {}
        self._attempts: dict[str, deque[bool]] = {}
        self._attempt_channel: dict[tuple[str, int], str] = {}
        self._rate_alarm: dict[str, bool] = {}
        self._currency: dict[tuple[str, str], str] = {}  # (account, product) -> currency

    def _at_stake(self, account_id: str, at: datetime) -> tuple[str, ...]:
        loans = self._by_account.get(account_id)
        if not loans:
            return ()
        return tuple(
            sorted(
                p.payment_id for p in loans.values() if p.pending or at - p.requested_at <= RECENT
            )
        )

    def _attempt(self, channel: str, failed: bool) -> float | None:
        window = self._attempts.setdefault(channel, deque(maxlen=RATE_WINDOW))
        window.append(failed)
        if len(window) < RATE_MIN_ATTEMPTS:
            return None
        return sum(window) / len(window)

    def feed(self, record: Record) -> list[Warning]:
        """The warnings ``record`` raises (it must come in position order)."""
        event = record.event
        pos = record.position
        at = event.occurred_at
        if isinstance(event, CreditLineOpened):
            self._currency[(event.account_id, event.product)] = event.currency
            return []
        if isinstance(event, PaymentRequested):
            if event.scenario.startswith("car_loan"):
                loan = _CarLoan(event.payment_id, event.account_id, at)
                self._car_loans[event.payment_id] = loan
                self._by_account.setdefault(event.account_id, {})[event.payment_id] = loan
            return []
        if isinstance(event, PaymentAttempted):
            self._attempt_channel[(event.payment_id, event.attempt)] = event.channel
            return []
        if isinstance(event, PaymentSettled | PaymentAbandoned):
            done = self._car_loans.get(event.payment_id)
            if done is not None:
                done.pending = False
            if isinstance(event, PaymentSettled):
                channel = self._attempt_channel.pop((event.payment_id, event.attempt), None)
                if channel is not None:
                    self._attempt(channel, False)
            return []
        if isinstance(event, PaymentDeclined):
            self._attempt_channel.pop((event.payment_id, event.attempt), None)
            rate = self._attempt(event.channel, event.code in TECHNICAL_CODES)
            if rate is None:
                return []
            alarmed = self._rate_alarm.get(event.channel, False)
            if not alarmed and rate >= RATE_THRESHOLD:
                self._rate_alarm[event.channel] = True
                n = len(self._attempts[event.channel])
                return [
                    Warning(
                        kind="channel_failure_rate",
                        severity="warning",
                        subject=f"channel-{event.channel}",
                        summary=(
                            f"{event.channel} technical failure rate rose to {rate:.2f} over its "
                            f"last {n} attempts (latest: {event.code} at position {pos})"
                        ),
                        position=pos,
                        occurred_at=at,
                    )
                ]
            if alarmed and rate < RATE_THRESHOLD / 2:
                self._rate_alarm[event.channel] = False
            return []
        if isinstance(event, ChannelStatusChanged):
            if event.status == "up":
                return []
            severity: Severity = (
                "critical"
                if event.status == "down"
                else "warning"
                if event.status == "degraded"
                else "info"
            )
            until = (
                f", expected until {event.expected_until:%Y-%m-%dT%H:%M:%SZ}"
                if (event.expected_until)
                else ""
            )
            return [
                Warning(
                    kind="channel_status",
                    severity=severity,
                    subject=f"channel-{event.channel}",
                    summary=f"{event.channel} is {event.status} ({event.reason}){until}",
                    position=pos,
                    occurred_at=at,
                )
            ]
        if isinstance(event, CreditScoreChanged | RepaymentOverdue | CreditStatusChanged):
            return self._credit(event, pos, at)
        return []

    def _credit(
        self,
        event: CreditScoreChanged | RepaymentOverdue | CreditStatusChanged,
        pos: int,
        at: datetime,
    ) -> list[Warning]:
        kind: WarningKind
        severity: Severity
        if isinstance(event, CreditScoreChanged):
            if event.new_score >= event.old_score:
                return []
            kind, severity = "credit_score_drop", "warning"
            what = f"credit score dropped {event.old_score} -> {event.new_score} ({event.bureau})"
        elif isinstance(event, RepaymentOverdue):
            if event.days_overdue < OVERDUE_DAYS:
                return []
            kind = "repayment_overdue"
            currency = self._currency.get((event.account_id, event.product), "")
            severity = "critical" if event.days_overdue >= 90 else "warning"
            what = (
                f"{event.product} repayment overdue {event.days_overdue} days "
                f"({format_money(event.overdue_minor, currency)})"
            )
        else:
            if event.old_status != "active" or event.new_status == "active":
                return []
            kind = "credit_status"
            severity = "warning" if event.new_status == "limited" else "critical"
            what = (
                f"{event.product} credit line {event.old_status} -> {event.new_status} "
                f"({event.reason})"
            )
        payments = self._at_stake(event.account_id, at)
        if not payments:
            return []
        shown = ", ".join(payments[:3]) + (
            f" and {len(payments) - 3} more" if len(payments) > 3 else ""
        )
        return [
            Warning(
                kind=kind,
                severity=severity,
                subject=f"account-{event.account_id}",
                summary=f"account {event.account_id}: {what}; car-loan payments at stake: {shown}",
                position=pos,
                occurred_at=at,
                payments=payments,
            )
        ]


async def warnings(
    store: EventStore,
    *,
    since: datetime | int | None = None,
    follow: bool = False,
) -> AsyncIterator[Warning]:
    """The early warnings of the log, in position order.

    ``since``: only warnings raised by events that occurred at or after this moment (a
    ``datetime``) or at or after this position (an ``int``); the events before it are still
    read, for context. ``follow``: after the log's end, wait for new events and go on (until the
    caller stops iterating or is cancelled).
    """
    watcher = Watcher()
    position = 0
    while True:
        head = await store.head()
        async for record in store.query(types=_TYPES, from_position=position + 1, to_position=head):
            for warning in watcher.feed(record):
                if since is None:
                    yield warning
                elif isinstance(since, datetime):
                    if warning.occurred_at >= since:
                        yield warning
                elif warning.position >= since:
                    yield warning
        position = head
        if not follow:
            return
        await store.wait_for_append(position)
