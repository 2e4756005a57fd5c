"""The simulated world: a population of accounts with credit lines and scores, car dealers and
lenders with channel policies, four channels, and the schedule of everything that happens to
them (maintenance windows and outages, credit deteriorations, a policy change), drawn from a
seed. :mod:`gateway.simulator` drives a router over it.
"""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta
from typing import Final, Literal

import msgspec

from ledger.events import (
    AccountOpened,
    ChannelPolicySet,
    ChannelStatusChanged,
    CreditLimitChanged,
    CreditLineOpened,
    CreditScoreChanged,
    CreditStatus,
    CreditStatusChanged,
    Event,
    RepaymentOverdue,
)

from .processor import PaymentRequest

__all__ = [
    "CHANNELS",
    "START",
    "Outage",
    "Population",
    "SimulatedPayment",
    "SimulationConfig",
    "hash01",
    "timestamp",
]

CHANNELS: Final = ("huabei", "jiebei", "bank_card", "balance")
START: Final = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)

# merchant -> scenario -> allowed channels (no entry: every channel accepted)
_POLICIES: Final[dict[str, dict[str, tuple[tuple[str, ...], str]]]] = {
    "zd-auto": {
        "car_loan_down_payment": (("bank_card",), "lender rule: down payments by bank card only"),
        "car_loan_deposit": (("huabei", "bank_card"), "deposits by huabei or bank card"),
    },
    "byd-dealer": {
        "car_loan_down_payment": (("huabei", "jiebei", "bank_card"), "no wallet balance"),
    },
    "chery-finance": {
        "car_loan_deposit": (("huabei",), "huabei instalment promotion: deposits by huabei only"),
        "car_loan_down_payment": (("huabei", "jiebei"), "credit-financed down payments only"),
    },
}
_POLICY_CHANGE: Final = (
    "byd-dealer",
    "car_loan_down_payment",
    ("bank_card", "balance"),
    "regulator: no consumer credit for down payments",
)
_MERCHANTS: Final = (
    ("zd-auto", 25),
    ("byd-dealer", 20),
    ("chery-finance", 20),
    ("gac-motor", 15),
    ("metro-mall", 20),
)
_SCENARIOS: Final = (
    ("car_loan_down_payment", 50, 1_500_000, 5_000_000),
    ("car_loan_deposit", 35, 200_000, 1_000_000),
    ("car_loan_instalment", 15, 300_000, 800_000),
)
_OUTAGE_KINDS: Final[tuple[Literal["maintenance", "down", "unannounced"], ...]] = (
    "maintenance",
    "down",
    "unannounced",
)
_PREFERRED: Final = (("huabei", 55), ("jiebei", 10), ("bank_card", 30), ("balance", 5))


class SimulationConfig(msgspec.Struct, frozen=True, kw_only=True):
    """What to simulate."""

    payments: int
    seed: int = 0
    failover: bool = True
    concurrency: int = 128
    """Payments in flight at once (more in flight: larger group commits, more events/s)."""
    tick_payments: int = 128
    """Payments per tick: all of them see the world as it was at the tick's start."""
    tick_seconds: float = 10.0
    """Simulated seconds per tick."""

    def __post_init__(self) -> None:
        if self.payments < 0:
            raise ValueError("payments must not be negative")
        if self.concurrency < 1 or self.tick_payments < 1:
            raise ValueError("concurrency and tick_payments must be at least 1")


class SimulatedPayment(msgspec.Struct, frozen=True, kw_only=True):
    """One payment of the run and what its customer will do."""

    request: PaymentRequest
    tick: int
    otp: Literal["ok", "mistype_once", "fail"] = "ok"
    bad_card: bool = False


# --- the world -----------------------------------------------------------------------------


class _Line:
    __slots__ = ("limit", "status", "used")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.status: CreditStatus = "active"
        self.used = 0


class Outage(msgspec.Struct, frozen=True):
    channel: str
    start: float
    end: float
    kind: Literal["maintenance", "down", "unannounced"]


class Population:
    """The population and the schedule of everything that happens to it."""

    def __init__(self, config: SimulationConfig) -> None:
        rng = random.Random(f"payledger-sim:{config.seed}")
        self.config = config
        self.ticks = math.ceil(config.payments / config.tick_payments)
        self.duration = max(1, self.ticks) * config.tick_seconds
        n_accounts = max(config.tick_payments * 2, config.payments // 2)
        self.accounts = [f"A{i:06d}" for i in range(1, n_accounts + 1)]
        self.lines: dict[str, dict[str, _Line]] = {}
        self.policies: dict[str, dict[str, tuple[str, ...]]] = {
            m: {s: allowed for s, (allowed, _) in rules.items()} for m, rules in _POLICIES.items()
        }
        self.setup: list[Event] = []
        self.schedule: list[tuple[float, int, Event]] = []
        self.outages: list[Outage] = []
        seq = 0

        def at(t: float, event: Event) -> None:
            nonlocal seq
            self.schedule.append((t, seq, event))
            seq += 1

        for account in self.accounts:
            score = rng.randint(620, 800)
            self.setup.append(
                AccountOpened(account_id=account, holder_ref=f"H{account[1:]}", occurred_at=START)
            )
            self.setup.append(
                CreditScoreChanged(
                    account_id=account,
                    old_score=600,
                    new_score=score,
                    bureau="zhima",
                    occurred_at=START,
                )
            )
            lines: dict[str, _Line] = {}
            products = ["huabei"] + (["jiebei"] if rng.random() < 0.4 else [])
            for product in products:
                limit = rng.randrange(30_000_000, 60_000_001, 100_000)
                lines[product] = _Line(limit)
                self.setup.append(
                    CreditLineOpened(
                        account_id=account,
                        product=product,
                        limit_minor=limit,
                        currency="CNY",
                        occurred_at=START,
                    )
                )
            self.lines[account] = lines
            # credit deteriorations
            if rng.random() < 0.10:
                t = rng.uniform(0, self.duration * 0.8)
                product = rng.choice(products)
                kind = rng.choice(("overdue", "score", "freeze", "limit", "score_only"))
                new_status: CreditStatus | None = None
                if kind == "overdue":
                    days = rng.randint(30, 90)
                    at(
                        t,
                        RepaymentOverdue(
                            account_id=account,
                            product=product,
                            overdue_minor=rng.randrange(50_000, 500_000, 100),
                            days_overdue=days,
                            occurred_at=timestamp(t),
                        ),
                    )
                    new_status, why = "suspended", f"repayment overdue {days} days"
                elif kind in ("score", "score_only"):
                    drop = rng.randint(80, 200)
                    at(
                        t,
                        CreditScoreChanged(
                            account_id=account,
                            old_score=score,
                            new_score=score - drop,
                            bureau="zhima",
                            occurred_at=timestamp(t),
                        ),
                    )
                    if kind == "score":
                        new_status, why = "limited", f"score dropped {drop} points"
                elif kind == "freeze":
                    new_status, why = "frozen", "risk review"
                else:
                    at(
                        t,
                        CreditLimitChanged(
                            account_id=account,
                            product=product,
                            old_limit_minor=lines[product].limit,
                            new_limit_minor=50_000,
                            reason="limit review after missed repayments",
                            occurred_at=timestamp(t),
                        ),
                    )
                if new_status is not None:
                    at(
                        t + 0.001,
                        CreditStatusChanged(
                            account_id=account,
                            product=product,
                            old_status="active",
                            new_status=new_status,
                            reason=why,
                            occurred_at=timestamp(t + 0.001),
                        ),
                    )
                    if rng.random() < 0.4:
                        back = rng.uniform(t + 1, self.duration)
                        at(
                            back,
                            CreditStatusChanged(
                                account_id=account,
                                product=product,
                                old_status=new_status,
                                new_status="active",
                                reason="restored after review",
                                occurred_at=timestamp(back),
                            ),
                        )
        for merchant, rules in _POLICIES.items():
            for scenario, (allowed, reason) in rules.items():
                self.setup.append(
                    ChannelPolicySet(
                        merchant=merchant,
                        scenario=scenario,
                        allowed_channels=allowed,
                        reason=reason,
                        occurred_at=START,
                    )
                )
        merchant, scenario, allowed, reason = _POLICY_CHANGE
        at(
            self.duration / 2,
            ChannelPolicySet(
                merchant=merchant,
                scenario=scenario,
                allowed_channels=allowed,
                reason=reason,
                occurred_at=timestamp(self.duration / 2),
            ),
        )
        # channel outages
        n_outages = max(3, self.ticks // 8)
        for _ in range(n_outages):
            channel = rng.choices(CHANNELS, weights=(40, 15, 35, 10))[0]
            length = max(config.tick_seconds, rng.uniform(0.04, 0.10) * self.duration)
            start = rng.uniform(0, max(0.0, self.duration - length))
            okind = _OUTAGE_KINDS[rng.choices(range(3), weights=(35, 20, 45))[0]]
            if any(
                o.channel == channel and o.start < start + length and start < o.end
                for o in self.outages
            ):
                continue
            outage = Outage(channel, start, start + length, okind)
            self.outages.append(outage)
            if okind != "unannounced":
                at(
                    start,
                    ChannelStatusChanged(
                        channel=channel,
                        status="maintenance" if okind == "maintenance" else "down",
                        reason="scheduled maintenance"
                        if okind == "maintenance"
                        else "acquirer outage",
                        expected_until=timestamp(start + length)
                        if okind == "maintenance"
                        else None,
                        occurred_at=timestamp(start),
                    ),
                )
                at(
                    start + length,
                    ChannelStatusChanged(
                        channel=channel,
                        status="up",
                        reason="service restored",
                        occurred_at=timestamp(start + length),
                    ),
                )
        self.schedule.sort(key=lambda x: (x[0], x[1]))
        self._next = 0
        self.payments = self._payments(config)

    def _payments(self, config: SimulationConfig) -> list[SimulatedPayment]:
        out: list[SimulatedPayment] = []
        merchants = [m for m, _ in _MERCHANTS]
        m_weights = [w for _, w in _MERCHANTS]
        for tick in range(self.ticks):
            first = tick * config.tick_payments
            count = min(config.tick_payments, config.payments - first)
            tick_rng = random.Random(f"payledger-sim:{config.seed}:tick:{tick}")
            accounts = tick_rng.sample(self.accounts, count)
            for j, account in enumerate(accounts):
                i = first + j + 1
                rng = random.Random(f"payledger-sim:{config.seed}:payment:{i}")
                merchant = rng.choices(merchants, weights=m_weights)[0]
                if merchant == "metro-mall":
                    scenario, amount = "retail", rng.randrange(5_000, 200_000, 100)
                else:
                    name, _, low, high = rng.choices(
                        _SCENARIOS, weights=[s[1] for s in _SCENARIOS]
                    )[0]
                    scenario, amount = name, rng.randrange(low, high, 100)
                preferred = rng.choices(
                    [c for c, _ in _PREFERRED], weights=[w for _, w in _PREFERRED]
                )[0]
                roll = rng.random()
                otp: Literal["ok", "mistype_once", "fail"] = (
                    "fail" if roll < 0.04 else "mistype_once" if roll < 0.09 else "ok"
                )
                pid = f"P{i:07d}"
                out.append(
                    SimulatedPayment(
                        request=PaymentRequest(
                            payment_id=pid,
                            account_id=account,
                            merchant=merchant,
                            scenario=scenario,
                            amount_minor=amount,
                            preferred_channel=preferred,
                            correlation_id=f"order-{pid[1:]}",
                        ),
                        tick=tick,
                        otp=otp,
                        bad_card=rng.random() < 0.03,
                    )
                )
        return out

    def due(self, until: float) -> list[Event]:
        """The scheduled events due by ``until`` (each applied to the model)."""
        out: list[Event] = []
        while self._next < len(self.schedule) and self.schedule[self._next][0] <= until:
            event = self.schedule[self._next][2]
            self._next += 1
            if isinstance(event, CreditStatusChanged):
                self.lines[event.account_id][event.product].status = event.new_status
            elif isinstance(event, CreditLimitChanged):
                self.lines[event.account_id][event.product].limit = event.new_limit_minor
            elif isinstance(event, ChannelPolicySet):
                self.policies.setdefault(event.merchant, {})[event.scenario] = (
                    event.allowed_channels
                )
            out.append(event)
        return out

    def outage(self, channel: str, t: float) -> Outage | None:
        for o in self.outages:
            if o.kind == "unannounced" and o.channel == channel and o.start <= t < o.end:
                return o
        return None


def timestamp(seconds: float) -> datetime:
    return START + timedelta(seconds=round(seconds, 3))


def hash01(*parts: object) -> float:
    return random.Random(":".join(map(str, parts))).random()
