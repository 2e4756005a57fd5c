"""Hypothesis strategies and log builders that the test modules share.

:func:`random_logs` draws a whole log: a few accounts with credit lines, channel outages and
recoveries, merchant policies, credit changes, and payments that go through their life in random
ways (decisions, verifications, attempts, authorizations, declines with any code, failovers,
settlements, abandonments, own events recorded late), interleaved, with ```occurred_at`` drawn
independently of the order (backdated records). :func:`later_event` draws one event for an
account's, a channel's or a merchant's stream. :func:`build` turns a drawn list of operations
(:data:`OPS`) into a plausible log with monotonic moments, for properties of the folds, and
:func:`records_of` gives its records as a store would. :func:`load` appends events one by one,
so that the *n*-th event lands at position *n*.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import anyio
from hypothesis import strategies as st

from ledger import EventStore, Record
from ledger import events as ev
from ledger.events import (
    AccountOpened,
    Candidate,
    ChannelDecided,
    ChannelPolicySet,
    ChannelStatusChanged,
    CreditLimitChanged,
    CreditLineOpened,
    CreditScoreChanged,
    CreditStatusChanged,
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
    VerificationPassed,
    VerificationRequested,
    stream_of,
)

__all__ = [
    "ACCOUNTS",
    "CHANNELS",
    "CODES",
    "MERCHANTS",
    "OPS",
    "SCENARIOS",
    "STATUSES",
    "T0",
    "build",
    "later_event",
    "load",
    "random_logs",
    "records_of",
    "run",
]

T0: Final = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
CHANNELS: Final = ("huabei", "jiebei", "bank_card", "balance")
STATUSES: Final = ("active", "limited", "suspended", "frozen", "closed")
SCENARIOS: Final = ("car_loan_down_payment", "car_loan_deposit", "car_loan_instalment", "retail")
MERCHANTS: Final = ("zd-auto", "byd-dealer")
ACCOUNTS: Final = ("A1", "A2", "A3")
CODES: Final = (
    "credit_suspended",
    "insufficient_credit",
    "channel_unavailable",
    "channel_not_permitted",
    "verification_failed",
    "invalid_details",
    "timeout",
    "risk_blocked",
    "unknown",
)

Draw = Callable[[Any], Any]
_PRODUCTS: Final = ("huabei", "jiebei")
_OP_MERCHANTS: Final = ("zd-auto", "byd-finance")
_OP_SCENARIOS: Final = ("car_loan_down_payment", "car_loan_deposit")


def _at(draw: Draw) -> datetime:
    """A moment drawn independently of the log's order: records arrive late or backdated."""
    return T0 + timedelta(minutes=draw(st.integers(0, 600)))


def later_event(draw: Draw, account: str, merchant: str, at: datetime | None = None) -> ev.Event:
    """One event of an account's, a channel's or a merchant's stream."""
    at = _at(draw) if at is None else at
    kind = draw(st.sampled_from(["channel", "policy", "status", "limit", "repay", "overdue"]))
    product = draw(st.sampled_from(("huabei", "jiebei")))
    if kind == "channel":
        return ev.ChannelStatusChanged(
            occurred_at=at,
            channel=draw(st.sampled_from(CHANNELS)),
            status=draw(st.sampled_from(("up", "degraded", "down", "maintenance"))),
            reason="drawn",
            expected_until=draw(st.none() | st.just(T0 + timedelta(minutes=30))),
        )
    if kind == "policy":
        return ev.ChannelPolicySet(
            occurred_at=at,
            merchant=merchant,
            scenario=draw(st.sampled_from(SCENARIOS[:2])),
            allowed_channels=tuple(draw(st.lists(st.sampled_from(CHANNELS), unique=True))),
            reason="drawn",
        )
    if kind == "status":
        return ev.CreditStatusChanged(
            occurred_at=at,
            account_id=account,
            product=product,
            old_status=draw(st.sampled_from(STATUSES)),
            new_status=draw(st.sampled_from(STATUSES)),
            reason="drawn",
        )
    if kind == "limit":
        return ev.CreditLimitChanged(
            occurred_at=at,
            account_id=account,
            product=product,
            old_limit_minor=100,
            new_limit_minor=draw(st.integers(0, 2_000_000)),
            reason="drawn",
        )
    if kind == "repay":
        return ev.RepaymentMade(
            occurred_at=at,
            account_id=account,
            product=product,
            amount_minor=draw(st.integers(1, 1_000_000)),
        )
    return ev.RepaymentOverdue(
        occurred_at=at,
        account_id=account,
        product=product,
        overdue_minor=draw(st.integers(0, 1_000_000)),
        days_overdue=draw(st.integers(0, 90)),
    )


@dataclass
class _Payment:
    """Where a drawn payment is in its life."""

    pid: str
    account: str
    merchant: str
    scenario: str
    amount: int
    channel: str
    phase: str = "new"
    attempt: int = 0
    ended: list[int] = field(default_factory=list)
    """Attempts that were declined (their own events may still come, late)."""


def _payment_step(draw: Draw, p: _Payment) -> list[ev.Event]:
    """The next events of ``p``'s life, drawn among those its phase allows."""
    at = _at(draw)
    pid, n = p.pid, p.attempt
    if p.phase == "new":
        p.phase = "requested"
        return [
            ev.PaymentRequested(
                occurred_at=at,
                payment_id=pid,
                account_id=p.account,
                merchant=p.merchant,
                scenario=p.scenario,
                amount_minor=p.amount,
                currency="CNY",
                preferred_channel=p.channel,
            )
        ]
    if p.phase in ("requested", "failover"):
        p.attempt += 1
        p.phase = "decided"
        candidate = ev.Candidate(channel=p.channel, eligible=True, reason="drawn")
        return [
            ev.ChannelDecided(
                occurred_at=at,
                payment_id=pid,
                attempt=p.attempt,
                channel=p.channel,
                candidates=(candidate,),
                rule="drawn",
            )
        ]
    if p.phase in ("settled", "abandoned"):
        if p.ended and draw(st.integers(0, 3)) == 0:  # an own event of a declined attempt, late
            return [_verification(draw, pid, draw(st.sampled_from(p.ended)), at)]
        return []
    choices = {
        "decided": ["verify", "attempted", "abandon", "decline"],
        "attempted": ["verify", "authorize", "decline", "decline", "abandon"],
        "authorized": ["settle", "settle", "decline", "abandon"],
        "declined": ["failover", "failover", "abandon", "late"],
    }[p.phase]
    move = draw(st.sampled_from(choices))
    if move == "verify":
        return [_verification(draw, pid, n, at)]
    if move == "attempted":
        p.phase = "attempted"
        return [
            ev.PaymentAttempted(
                occurred_at=at, payment_id=pid, attempt=n, channel=p.channel, amount_minor=p.amount
            )
        ]
    if move == "authorize":
        p.phase = "authorized"
        return [
            ev.PaymentAuthorized(
                occurred_at=at,
                payment_id=pid,
                attempt=n,
                channel=p.channel,
                amount_minor=p.amount,
                auth_ref=f"AUTH-{pid}-{n}",
            )
        ]
    if move == "settle":
        p.phase = "settled"
        return [
            ev.PaymentSettled(
                occurred_at=at, payment_id=pid, attempt=n, channel=p.channel, amount_minor=p.amount
            )
        ]
    if move == "decline":
        p.phase = "declined"
        p.ended.append(n)
        return [
            ev.PaymentDeclined(
                occurred_at=at,
                payment_id=pid,
                attempt=n,
                channel=p.channel,
                code=draw(st.sampled_from(CODES)),
                message="drawn",
            )
        ]
    if move == "failover":
        to = draw(st.sampled_from(CHANNELS))
        failover = ev.FailoverTriggered(
            occurred_at=at, payment_id=pid, from_channel=p.channel, to_channel=to, reason="drawn"
        )
        p.channel, p.phase = to, "failover"
        return [failover]
    if move == "late":
        return [_verification(draw, pid, draw(st.sampled_from(p.ended)), at)]
    p.phase = "abandoned"
    return [ev.PaymentAbandoned(occurred_at=at, payment_id=pid, reason="drawn")]


def _verification(draw: Draw, pid: str, attempt: int, at: datetime) -> ev.Event:
    if draw(st.booleans()):
        return ev.VerificationPassed(occurred_at=at, payment_id=pid, attempt=attempt, method="otp")
    return ev.VerificationFailed(
        occurred_at=at,
        payment_id=pid,
        attempt=attempt,
        method="otp",
        reason=draw(st.sampled_from(("wrong_code", "expired", "not_entered"))),
        remaining_tries=draw(st.integers(0, 2)),
    )


@st.composite
def random_logs(draw: Draw, *, payments: int = 4, noise: int = 12) -> list[ev.Event]:
    """A whole log (see the module docstring): accounts first, then everything interleaved."""
    events: list[ev.Event] = []
    for account in ACCOUNTS:
        events.append(ev.AccountOpened(occurred_at=T0, account_id=account, holder_ref="H"))
        for product in ("huabei", "jiebei"):
            if draw(st.integers(0, 3)) > 0:
                events.append(
                    ev.CreditLineOpened(
                        occurred_at=T0,
                        account_id=account,
                        product=product,
                        limit_minor=draw(st.integers(0, 2_000_000)),
                        currency="CNY",
                    )
                )
    live = [
        _Payment(
            pid=f"P{i}",
            account=draw(st.sampled_from(ACCOUNTS)),
            merchant=draw(st.sampled_from(MERCHANTS)),
            scenario=draw(st.sampled_from(SCENARIOS[:2])),
            amount=draw(st.integers(1, 1_000_000)),
            channel=draw(st.sampled_from(CHANNELS)),
        )
        for i in range(1, draw(st.integers(1, payments)) + 1)
    ]
    steps = draw(st.integers(len(live) * 3, len(live) * 8 + noise))
    for _ in range(steps):
        if draw(st.integers(0, 3)) == 0:
            account = draw(st.sampled_from(ACCOUNTS))
            events.append(later_event(draw, account, draw(st.sampled_from(MERCHANTS))))
        else:
            events += _payment_step(draw, draw(st.sampled_from(live)))
    return events


# --- an op-driven builder: a log from a list of (op, number), for properties of the folds ---
class _Sim:
    """Turns a list of (op, number) into a plausible, valid event sequence."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.accounts: list[str] = []
        self.lines: dict[tuple[str, str], dict[str, Any]] = {}
        self.payments: dict[str, dict[str, Any]] = {}
        self.score: dict[str, int] = {}

    def at(self) -> datetime:
        return T0 + timedelta(minutes=len(self.events))

    def emit(self, event_type: type[Event], **fields: Any) -> None:
        self.events.append(event_type(occurred_at=self.at(), **fields))

    def account(self, n: int) -> str:
        return self.accounts[n % len(self.accounts)]

    def line(self, n: int) -> tuple[str, str] | None:
        keys = sorted(self.lines)
        return keys[n % len(keys)] if keys else None

    def step(self, op: int, n: int) -> None:
        if op == 0 or not self.accounts:
            aid = f"A{len(self.accounts) + 1}"
            self.accounts.append(aid)
            self.emit(AccountOpened, account_id=aid, holder_ref=f"H{n % 100}")
            if n % 3:  # most accounts get a credit line straight away
                self.step(1, len(self.accounts) - 1 + len(self.accounts) * (n % 2))
            return
        if op == 1:
            aid = self.account(n)
            product = _PRODUCTS[n % 2]
            if (aid, product) not in self.lines:
                limit = 100_000 * (1 + n % 50)
                self.lines[(aid, product)] = {"status": "active", "limit": limit}
                self.emit(
                    CreditLineOpened,
                    account_id=aid,
                    product=product,
                    limit_minor=limit,
                    currency="CNY",
                )
            return
        if op in (2, 3, 4, 5):
            key = self.line(n)
            if key is None:
                return
            aid, product = key
            line = self.lines[key]
            if op == 2:
                new = 100_000 * (n % 60)
                self.emit(
                    CreditLimitChanged,
                    account_id=aid,
                    product=product,
                    old_limit_minor=line["limit"],
                    new_limit_minor=new,
                    reason="review",
                )
                line["limit"] = new
            elif op == 3:
                new_status = STATUSES[n % len(STATUSES)]
                self.emit(
                    CreditStatusChanged,
                    account_id=aid,
                    product=product,
                    old_status=line["status"],
                    new_status=new_status,
                    reason="risk",
                )
                line["status"] = new_status
            elif op == 4:
                self.emit(
                    RepaymentOverdue,
                    account_id=aid,
                    product=product,
                    overdue_minor=1000 * (n % 20),
                    days_overdue=n % 90,
                )
            else:
                self.emit(RepaymentMade, account_id=aid, product=product, amount_minor=1 + n)
            return
        if op == 6:
            aid = self.account(n)
            old = self.score.get(aid, 700)
            self.score[aid] = n % 1000
            self.emit(
                CreditScoreChanged,
                account_id=aid,
                old_score=old,
                new_score=n % 1000,
                bureau="sesame",
            )
            return
        if op == 7:
            self.emit(
                ChannelStatusChanged,
                channel=CHANNELS[n % 4],
                status=("up", "degraded", "down", "maintenance")[n // 4 % 4],
                reason="ops",
            )
            return
        if op == 8:
            allowed = tuple(c for i, c in enumerate(CHANNELS) if (n >> i) & 1)
            self.emit(
                ChannelPolicySet,
                merchant=_OP_MERCHANTS[n % 2],
                scenario=_OP_SCENARIOS[n // 2 % 2],
                allowed_channels=allowed,
                reason="rule",
            )
            return
        if op == 9:
            aid = self.account(n)
            pid = f"P{len(self.payments) + 1}"
            amount = 1000 * (1 + n % 300)
            products = [p for (a, p) in sorted(self.lines) if a == aid]
            # mostly on one of the account's credit lines
            channel = products[n % len(products)] if products and n % 4 else CHANNELS[n % 4]
            self.payments[pid] = {"attempt": 0, "phase": "requested", "channel": channel}
            self.emit(
                PaymentRequested,
                payment_id=pid,
                account_id=aid,
                merchant=_OP_MERCHANTS[n % 2],
                scenario=_OP_SCENARIOS[n % 2],
                amount_minor=amount,
                currency="CNY",
                preferred_channel=channel,
            )
            self.payments[pid]["amount"] = amount
            return
        # op >= 10: advance a payment
        open_ids = [p for p, s in self.payments.items() if s["phase"] != "done"]
        if not open_ids:
            return
        pid = open_ids[n % len(open_ids)]
        for step in range(1 + (op - 10) // 4):  # one to three steps of the same payment
            if self.payments[pid]["phase"] != "done":
                self.advance(pid, n + step * 7)

    def advance(self, pid: str, n: int) -> None:
        p = self.payments[pid]
        phase, channel, amount = p["phase"], p["channel"], p["amount"]
        if phase == "requested":
            p["attempt"] += 1
            candidates = tuple(
                Candidate(channel=c, eligible=c == channel, reason="ok") for c in CHANNELS
            )
            self.emit(
                ChannelDecided,
                payment_id=pid,
                attempt=p["attempt"],
                channel=channel,
                candidates=candidates,
                rule="preferred",
            )
            self.emit(
                PaymentAttempted,
                payment_id=pid,
                attempt=p["attempt"],
                channel=channel,
                amount_minor=amount,
            )
            p["phase"] = "attempted"
        elif phase == "attempted":
            choice = n % 5
            if choice == 0:
                self.emit(VerificationRequested, payment_id=pid, attempt=p["attempt"], method="otp")
                self.emit(
                    VerificationFailed,
                    payment_id=pid,
                    attempt=p["attempt"],
                    method="otp",
                    reason="wrong_code",
                    remaining_tries=n % 3,
                )
            elif choice == 1:
                self.emit(VerificationPassed, payment_id=pid, attempt=p["attempt"], method="otp")
            elif choice in (2, 3):
                self.emit(
                    PaymentAuthorized,
                    payment_id=pid,
                    attempt=p["attempt"],
                    channel=channel,
                    amount_minor=amount,
                    auth_ref=f"R{n}",
                )
                p["phase"] = "authorized"
            else:
                self.emit(
                    PaymentDeclined,
                    payment_id=pid,
                    attempt=p["attempt"],
                    channel=channel,
                    code=("unknown", "timeout", "insufficient_credit")[n % 3],
                    message="no",
                )
                p["phase"] = "declined"
        elif phase == "authorized":
            choice = n % 4
            if choice in (0, 1):
                self.emit(
                    PaymentSettled,
                    payment_id=pid,
                    attempt=p["attempt"],
                    channel=channel,
                    amount_minor=amount,
                )
                p["phase"] = "done"
            elif choice == 2:
                self.emit(PaymentAbandoned, payment_id=pid, reason="customer left")
                p["phase"] = "done"
            else:
                self.emit(
                    PaymentDeclined,
                    payment_id=pid,
                    attempt=p["attempt"],
                    channel=channel,
                    code="risk_blocked",
                    message="reversed",
                )
                p["phase"] = "declined"
        elif phase == "declined":
            if n % 2:
                to = CHANNELS[(CHANNELS.index(channel) + 1 + n) % 4]
                self.emit(
                    FailoverTriggered,
                    payment_id=pid,
                    from_channel=channel,
                    to_channel=to,
                    reason="x",
                )
                p["channel"] = to
                p["phase"] = "requested"
            else:
                self.emit(PaymentAbandoned, payment_id=pid, reason="gave up")
                p["phase"] = "done"


def build(ops: Sequence[tuple[int, int]]) -> list[Event]:
    sim = _Sim()
    for op, n in ops:
        sim.step(op, n)
    return sim.events


OPS = st.lists(st.tuples(st.integers(0, 19), st.integers(0, 10_000)), min_size=1, max_size=80)
"""Ops 0-9 make account, credit, channel, policy and payment-request events; 10-19 advance a
payment (decide, attempt, verify, authorize, decline, settle, fail over, abandon)."""


def records_of(events: Sequence[Event]) -> list[Record]:
    """Records as a store would give them (positions 1..n, stream versions)."""
    versions: dict[str, int] = {}
    out = []
    for i, event in enumerate(events, start=1):
        stream = stream_of(event)
        versions[stream] = versions.get(stream, 0) + 1
        out.append(Record(i, stream, versions[stream], event, f"id-{i}", event.occurred_at))
    return out


async def load(store: EventStore, events: Sequence[ev.Event]) -> list[int]:
    """Append ``events`` one by one (each to its own stream); returns their positions."""
    positions: list[int] = []
    for event in events:
        result = await store.append(ev.stream_of(event), [event])
        positions.extend(result.positions)
    return positions


def run(fn: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run a coroutine function in a fresh event loop (for hypothesis tests, which are
    synchronous)."""
    anyio.run(fn)
