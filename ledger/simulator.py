"""A deterministic payment simulator: the load generator and the project's end-to-end test.

:func:`simulate` builds a population (accounts with credit lines and scores, car dealers and
lenders with channel policies, four channels), then drives a :class:`~ledger.routing.Router`
with a :class:`FakeProcessor` over it while the world changes under it: maintenance windows and
announced outages (``ChannelStatusChanged``), unannounced outages (the processor times out and
the router's health monitor notices), credit deteriorations (overdue repayments, score drops,
risk freezes, limit cuts) and customers who mistype their codes or card details.

Time is simulated: the run advances in *ticks* of ``tick_seconds``; world events due by a tick
are appended before it, then the tick's ``tick_payments`` payments (of distinct accounts) run
under an anyio task group, ``concurrency`` of them in flight at once, and channel health is
judged between ticks. Within a tick nothing a payment's decision depends on changes (its own
account is not shared, channel statuses and policies change only between ticks), so the
outcome does not depend on the order in which the tick's payments run. Every random choice is
drawn from the seed, so a seed gives the same events in every stream on every run (their global
interleaving within a tick follows the group commits), and the same population, world and
customers with and without failover.

Channel health is judged on first attempts only (``HealthConfig.count_failovers=False``), so a
run with failover and one without measure the same traffic: the difference between them is what
failover does, not what its extra attempts did to the health monitor.

For each failed payment the simulator knows the cause it injected (:class:`Truth`), by the
contract's order: the merchant's policy for the last channel decided, then that channel's
recorded status, then the account's credit line, then what the processor was told to do to the
attempt (an outage: ``system``; a customer's failed verification or bad card: ``user_action``).
"""

from __future__ import annotations

import math
import random
import time
from collections import defaultdict, deque
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Final, Literal, TypeAlias

import anyio
import msgspec

from .events import (
    AccountOpened,
    ChannelPolicySet,
    ChannelStatus,
    ChannelStatusChanged,
    CreditLimitChanged,
    CreditLineOpened,
    CreditScoreChanged,
    CreditStatus,
    CreditStatusChanged,
    Event,
    RepaymentOverdue,
    stream_of,
)
from .routing import (
    CREDIT_PRODUCTS,
    HealthConfig,
    PaymentOutcome,
    PaymentRequest,
    ProcessorResult,
    Router,
    RoutingConfig,
    Verification,
)
from .store import EventStore, ImportItem

__all__ = [
    "CHANNELS",
    "Category",
    "FakeProcessor",
    "SimulatedPayment",
    "SimulationConfig",
    "SimulationReport",
    "Truth",
    "simulate",
    "simulation_routing",
]

Category: TypeAlias = Literal["credit", "system", "channel_policy", "user_action", "unknown"]
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


def simulation_routing(*, failover: bool = True) -> RoutingConfig:
    """The routing configuration the simulator's payment service uses."""
    return RoutingConfig(
        channels=CHANNELS,
        routes={
            "zd-auto/car_loan_down_payment": ("bank_card", "balance"),
            "*/retail": ("balance", "bank_card", "huabei"),
        },
        failover=failover,
        max_attempts=3,
        timeout_seconds=5.0,
        health=HealthConfig(
            window_seconds=20.0,
            min_samples=20,
            degrade_at=0.4,
            recover_at=0.15,
            inline=False,
            count_failovers=False,
        ),
    )


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


class Truth(msgspec.Struct, frozen=True, kw_only=True):
    """The cause the simulator injected for a failed payment (the ``--truth`` line)."""

    payment_id: str
    category: Category


class SimulationReport(msgspec.Struct, kw_only=True):
    """What a run did."""

    payments: int = 0
    succeeded: int = 0
    failed: int = 0
    failed_by_category: dict[str, int] = msgspec.field(default_factory=dict)
    failovers: int = 0
    events: int = 0
    seconds: float = 0.0
    truth: list[Truth] = msgspec.field(default_factory=list)
    outcomes: dict[str, str] = msgspec.field(default_factory=dict)
    """Each payment's status: succeeded or failed."""

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0


# --- the world -----------------------------------------------------------------------------


class _Line:
    __slots__ = ("limit", "status", "used")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.status: CreditStatus = "active"
        self.used = 0


class _Outage(msgspec.Struct, frozen=True):
    channel: str
    start: float
    end: float
    kind: Literal["maintenance", "down", "unannounced"]


class _World:
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
        self.outages: list[_Outage] = []
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
                            occurred_at=_ts(t),
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
                            occurred_at=_ts(t),
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
                            occurred_at=_ts(t),
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
                            occurred_at=_ts(t + 0.001),
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
                                occurred_at=_ts(back),
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
                occurred_at=_ts(self.duration / 2),
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
            outage = _Outage(channel, start, start + length, okind)
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
                        expected_until=_ts(start + length) if okind == "maintenance" else None,
                        occurred_at=_ts(start),
                    ),
                )
                at(
                    start + length,
                    ChannelStatusChanged(
                        channel=channel,
                        status="up",
                        reason="service restored",
                        occurred_at=_ts(start + length),
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

    def outage(self, channel: str, t: float) -> _Outage | None:
        for o in self.outages:
            if o.kind == "unannounced" and o.channel == channel and o.start <= t < o.end:
                return o
        return None


def _ts(seconds: float) -> datetime:
    return START + timedelta(seconds=round(seconds, 3))


def _hash01(*parts: object) -> float:
    return random.Random(":".join(map(str, parts))).random()


# --- the fake processor --------------------------------------------------------------------


class FakeProcessor:
    """A processor that does what the simulated world says: outages time out, customers
    mistype codes and card numbers. Remembers what it injected into each attempt."""

    def __init__(self, world: _World, clock: _SimClock, customers: dict[str, SimulatedPayment]):
        self.world = world
        self.clock = clock
        self.customers = customers
        self.injected: dict[tuple[str, int], Category] = {}

    async def verify(
        self, request: PaymentRequest, channel: str, attempt: int
    ) -> Verification | None:
        if channel not in CREDIT_PRODUCTS:
            return None
        customer = self.customers[request.payment_id]
        if customer.otp == "fail":
            self.injected[(request.payment_id, attempt)] = "user_action"
            return Verification(
                method="otp", failures=("wrong_code", "wrong_code", "expired"), passed=False
            )
        if customer.otp == "mistype_once":
            return Verification(method="otp", failures=("wrong_code",), passed=True)
        return Verification(method="otp")

    async def authorize(
        self, request: PaymentRequest, channel: str, attempt: int
    ) -> ProcessorResult:
        await anyio.lowlevel.checkpoint()
        pid = request.payment_id
        t = self.clock.seconds
        if self.world.outage(channel, t) is not None:
            roll = _hash01(self.world.config.seed, pid, attempt)
            if roll < 0.85:
                self.injected[(pid, attempt)] = "system"
                if roll < 0.5:
                    return ProcessorResult.timed_out(f"{channel} did not answer")
                return ProcessorResult.declined("channel_unavailable", f"{channel} unreachable")
        if channel == "bank_card" and self.customers[pid].bad_card:
            self.injected[(pid, attempt)] = "user_action"
            return ProcessorResult.declined("invalid_details", "card number does not check")
        return ProcessorResult.authorized(f"AUTH-{pid}-{attempt}")


class _SimClock:
    """The simulated clock: the current tick's moment."""

    def __init__(self) -> None:
        self._seconds = 0.0
        self._now = _ts(0.0)

    @property
    def seconds(self) -> float:
        return self._seconds

    @seconds.setter
    def seconds(self, value: float) -> None:
        self._seconds = value
        self._now = _ts(value)

    def __call__(self) -> datetime:
        return self._now


# --- the run -------------------------------------------------------------------------------


class _Wave:
    """One tick's payments, for the worker pool: workers wait for ``ready``, take payments
    until none are left, then move on to ``after``; ``done`` is set when the last one ends.
    A wave with ``last`` set tells the workers to stop."""

    def __init__(self) -> None:
        self.todo: deque[SimulatedPayment] = deque()
        self.statuses: dict[str, ChannelStatus] = {}
        self.left = 0
        self.last = False
        self.ready = anyio.Event()
        self.done = anyio.Event()
        self.after: _Wave | None = None

    def start(
        self, payments: Sequence[SimulatedPayment], statuses: dict[str, ChannelStatus]
    ) -> _Wave:
        """Release the workers on ``payments``; returns the wave that follows."""
        self.todo.extend(payments)
        self.statuses = statuses
        self.left = len(payments)
        self.after = _Wave()
        self.ready.set()
        return self.after

    def stop(self) -> None:
        self.last = True
        self.ready.set()

    def finish_one(self) -> None:
        self.left -= 1
        if self.left == 0:
            self.done.set()


async def _append_grouped(store: EventStore, events: Sequence[Event]) -> int:
    """Append events stream by stream (each stream's in order), concurrently."""
    by_stream: dict[str, list[Event]] = defaultdict(list)
    for event in events:
        by_stream[stream_of(event)].append(event)
    async with anyio.create_task_group() as tg:
        for stream, batch in by_stream.items():
            tg.start_soon(_append_one, store, stream, batch)
    return len(events)


async def _append_one(store: EventStore, stream: str, batch: list[Event]) -> None:
    await store.append(stream, batch)


def _truth(
    world: _World,
    statuses: dict[str, ChannelStatus],
    sim: SimulatedPayment,
    outcome: PaymentOutcome,
    injected: dict[tuple[str, int], Category],
) -> Category:
    request = sim.request
    channel = outcome.channel or request.preferred_channel
    allowed = world.policies.get(request.merchant, {}).get(request.scenario)
    if allowed is not None and channel not in allowed:
        return "channel_policy"
    if statuses.get(channel, "up") != "up":
        return "system"
    if channel in CREDIT_PRODUCTS:
        line = world.lines[request.account_id].get(channel)
        if line is None or line.status != "active" or line.limit - line.used < request.amount_minor:
            return "credit"
    return injected.get((request.payment_id, outcome.attempts), "unknown")


async def simulate(
    store: EventStore,
    config: SimulationConfig,
) -> SimulationReport:
    """Run the simulation into ``store`` (which should be empty) and report what happened."""
    world = _World(config)
    clock = _SimClock()
    customers = {p.request.payment_id: p for p in world.payments}
    processor = FakeProcessor(world, clock, customers)
    router = Router(store, processor, simulation_routing(failover=config.failover), clock=clock)
    report = SimulationReport()
    started = time.perf_counter()
    head0 = await store.head()
    await store.import_events(ImportItem(stream=stream_of(e), event=e) for e in world.setup)
    by_tick: dict[int, list[SimulatedPayment]] = defaultdict(list)
    for p in world.payments:
        by_tick[p.tick].append(p)

    async def run(sim: SimulatedPayment, statuses: dict[str, ChannelStatus]) -> None:
        outcome = await router.pay(sim.request)
        pid = sim.request.payment_id
        report.outcomes[pid] = outcome.status
        if outcome.status == "succeeded" and outcome.attempts > 1:
            report.failovers += 1
        if outcome.status == "succeeded":
            report.succeeded += 1
            assert outcome.channel is not None
            line = world.lines[sim.request.account_id].get(outcome.channel)
            if line is not None:
                line.used += sim.request.amount_minor
        else:
            report.failed += 1
            category = _truth(world, statuses, sim, outcome, processor.injected)
            report.truth.append(Truth(payment_id=pid, category=category))
            report.failed_by_category[category] = report.failed_by_category.get(category, 0) + 1

    # A fixed pool of ``concurrency`` workers takes each tick's payments: cheaper than a task
    # (and a semaphore) per payment. A tick ends when its last payment is done.
    async def worker(wave: _Wave) -> None:
        while True:
            await wave.ready.wait()
            if wave.last:
                return
            while wave.todo:
                await run(wave.todo.popleft(), wave.statuses)
                wave.finish_one()
            assert wave.after is not None
            wave = wave.after

    wave = _Wave()
    async with anyio.create_task_group() as tg:
        for _ in range(config.concurrency):
            tg.start_soon(worker, wave)
        for tick in range(world.ticks):
            clock.seconds = tick * config.tick_seconds
            due = world.due(clock.seconds)
            if due:
                await _append_grouped(store, due)
            await router.check_health()
            await router.view.refresh()
            statuses = {c: router.view.channel(c).status for c in CHANNELS}
            batch = by_tick[tick]
            if batch:
                current, wave = wave, wave.start(batch, statuses)
                await current.done.wait()
            report.payments += len(batch)
        wave.stop()
    report.seconds = time.perf_counter() - started
    report.events = await store.head() - head0
    report.truth.sort(key=lambda t: t.payment_id)
    return report
