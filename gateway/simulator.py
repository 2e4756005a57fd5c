"""A deterministic payment simulator: the load generator and the project's end-to-end test.

:func:`simulate` builds a population (accounts with credit lines and scores, car dealers and
lenders with channel policies, four channels), then drives a :class:`~gateway.router.Router`
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
order of CONTRACT section 7: the merchant's policy for the last channel decided, then that
channel's recorded status, then a timeout (the caller's own observation), then the account's
credit line, then what the customer did (a failed verification or a bad card:
``user_action``), and last an ``channel_unavailable`` decline with nothing else to blame.
"""

from __future__ import annotations

import time
from collections import defaultdict, deque
from collections.abc import Sequence
from datetime import datetime
from typing import Literal, TypeAlias

import anyio
import anyio.lowlevel
import msgspec

from ledger.events import ChannelStatus, Event, stream_of
from ledger.store import EventStore, ImportItem

from ._population import (
    CHANNELS,
    Population,
    SimulatedPayment,
    SimulationConfig,
    hash01,
    timestamp,
)
from .config import CREDIT_PRODUCTS, HealthConfig, RoutingConfig
from .processor import PaymentOutcome, PaymentRequest, ProcessorResult, Verification
from .router import Router

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


# --- the fake processor --------------------------------------------------------------------


class FakeProcessor:
    """A processor that does what the simulated world says: outages time out, customers
    mistype codes and card numbers. Remembers what it injected into each attempt."""

    def __init__(self, world: Population, clock: _SimClock, customers: dict[str, SimulatedPayment]):
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
            roll = hash01(self.world.config.seed, pid, attempt)
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
        self._now = timestamp(0.0)

    @property
    def seconds(self) -> float:
        return self._seconds

    @seconds.setter
    def seconds(self, value: float) -> None:
        self._seconds = value
        self._now = timestamp(value)

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
    world: Population,
    statuses: dict[str, ChannelStatus],
    sim: SimulatedPayment,
    outcome: PaymentOutcome,
    injected: dict[tuple[str, int], Category],
) -> Category:
    """The cause the simulator knows it injected, by the order of CONTRACT rule 7.3 (policy,
    the channel's status, a timeout the caller observed, credit, the customer), then rule 7.4
    (an unavailable channel with nothing else to blame), from the simulator's own model."""
    request = sim.request
    channel = outcome.channel or request.preferred_channel
    allowed = world.policies.get(request.merchant, {}).get(request.scenario)
    if allowed is not None and channel not in allowed:
        return "channel_policy"
    if statuses.get(channel, "up") != "up":
        return "system"
    if outcome.code == "timeout":
        return "system"
    if channel in CREDIT_PRODUCTS:
        line = world.lines[request.account_id].get(channel)
        if line is None or line.status != "active" or line.limit - line.used < request.amount_minor:
            return "credit"
    cause = injected.get((request.payment_id, outcome.attempts))
    if cause == "user_action":
        return cause
    if outcome.code == "channel_unavailable":
        return "system"
    return "unknown"


async def simulate(
    store: EventStore,
    config: SimulationConfig,
) -> SimulationReport:
    """Run the simulation into ``store`` (which should be empty) and report what happened."""
    world = Population(config)
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
