"""The router's figures (issue 5, "Speed"), each beside raw ``sqlite3`` doing comparable inserts.

1. The router's decision, recorded, per payment at 64 concurrent payments: a processor that
   answers at once, so everything measured is the router (a refresh of its state view, the
   evaluation of every candidate channel, two durable appends of the payment's five events).
   Reported as wall time per payment (total time / payments: what the router adds to each
   payment's cost) against raw ``sqlite3`` inserting the same five rows per payment with the
   same two commits per 64-payment wave, ``synchronous=FULL``; target under 1 ms. The median
   and 95th percentile of each ``pay()`` call's latency are shown too (they include the wait
   for the group commit the call joins).
2. ``simulate`` (``gateway.simulator``, 128 payments in flight, durability ``full``): events
   recorded per second, population set-up included; target at least 20,000 events/s. The
   baseline inserts the very same events with ``executemany`` in transactions of the run's
   mean group size.

The baseline does less than the router: no validation, no hash chain, no concurrency check, no
decisions, no asyncio.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import anyio
import msgspec
from anyio.to_thread import run_sync

from gateway import PaymentRequest, ProcessorResult, Router, RoutingConfig, Verification
from gateway.simulator import SimulationConfig, simulate
from ledger import ImportItem, open_store
from ledger.events import (
    AccountOpened,
    Candidate,
    ChannelDecided,
    CreditLineOpened,
    Event,
    PaymentAttempted,
    PaymentAuthorized,
    PaymentRequested,
    PaymentSettled,
    stream_of,
)

from ._raw import Raw, events_ddl
from ._util import Figure, Options, Target, scratch_dir, timed

__all__ = ["SIZES", "Sizes", "run"]

TITLE: Final = "router and simulator"
CONCURRENCY: Final = 64
T0: Final = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


class Sizes(msgspec.Struct, frozen=True, kw_only=True):
    router_payments: int
    accounts: int
    simulate_payments: int


SIZES: Final = {
    "quick": Sizes(router_payments=1_920, accounts=640, simulate_payments=2_000),
    "full": Sizes(router_payments=12_800, accounts=3_200, simulate_payments=20_000),
}


class _Instant:
    """A processor that authorizes at once."""

    async def verify(
        self, request: PaymentRequest, channel: str, attempt: int
    ) -> Verification | None:
        return None

    async def authorize(
        self, request: PaymentRequest, channel: str, attempt: int
    ) -> ProcessorResult:
        return ProcessorResult.authorized(f"A-{request.payment_id}")


def _setup(accounts: int) -> list[tuple[str, Event]]:
    out: list[tuple[str, Event]] = []
    for i in range(accounts):
        a = f"A{i}"
        out.append((f"account-{a}", AccountOpened(account_id=a, holder_ref="h", occurred_at=T0)))
        out.append(
            (
                f"account-{a}",
                CreditLineOpened(
                    account_id=a,
                    product="huabei",
                    limit_minor=10**12,
                    currency="CNY",
                    occurred_at=T0,
                ),
            )
        )
    return out


def _requests(sizes: Sizes) -> list[PaymentRequest]:
    return [
        PaymentRequest(
            payment_id=f"P{i}",
            account_id=f"A{i % sizes.accounts}",
            merchant="zd-auto",
            scenario="car_loan_deposit",
            amount_minor=100_000 + i,
            preferred_channel="huabei",
        )
        for i in range(sizes.router_payments)
    ]


def _payment_events(r: PaymentRequest) -> tuple[list[Event], list[Event]]:
    """The rows the router writes for one payment, in its two commits."""
    pid = r.payment_id
    candidates = tuple(
        Candidate(channel=c, eligible=True, reason="eligible")
        for c in ("huabei", "jiebei", "bank_card", "balance")
    )
    first: list[Event] = [
        PaymentRequested(
            payment_id=pid,
            account_id=r.account_id,
            merchant=r.merchant,
            scenario=r.scenario,
            amount_minor=r.amount_minor,
            currency="CNY",
            preferred_channel="huabei",
            occurred_at=T0,
        ),
        ChannelDecided(
            payment_id=pid,
            attempt=1,
            channel="huabei",
            candidates=candidates,
            rule="preferred channel, eligible",
            occurred_at=T0,
        ),
        PaymentAttempted(
            payment_id=pid, attempt=1, channel="huabei", amount_minor=r.amount_minor, occurred_at=T0
        ),
    ]
    second: list[Event] = [
        PaymentAuthorized(
            payment_id=pid,
            attempt=1,
            channel="huabei",
            amount_minor=r.amount_minor,
            auth_ref=f"A-{pid}",
            occurred_at=T0,
        ),
        PaymentSettled(
            payment_id=pid, attempt=1, channel="huabei", amount_minor=r.amount_minor, occurred_at=T0
        ),
    ]
    return first, second


async def _router_once(path: Path, sizes: Sizes) -> tuple[float, list[float]]:
    """Seconds for all payments, and each ``pay()`` call's latency."""
    latencies: list[float] = []
    async with open_store(path) as store:
        await store.import_events(
            ImportItem(stream=stream, event=event) for stream, event in _setup(sizes.accounts)
        )
        router = Router(store, _Instant(), RoutingConfig(), clock=lambda: T0)
        limiter = anyio.Semaphore(CONCURRENCY)

        async def pay(request: PaymentRequest) -> None:
            async with limiter:
                start = time.perf_counter()
                await router.pay(request)
                latencies.append(time.perf_counter() - start)

        await router.view.refresh()
        with timed() as elapsed:
            async with anyio.create_task_group() as tg:
                for request in _requests(sizes):
                    tg.start_soon(pay, request)
        return elapsed(), latencies


def _raw_router(path: Path, ddl: Sequence[str], sizes: Sizes) -> float:
    """Seconds for raw ``sqlite3`` to insert the same rows, two commits per 64 payments."""
    raw = Raw(path, ddl)
    try:
        setup = _setup(sizes.accounts)
        raw.commit(setup)
        requests = _requests(sizes)
        with timed() as elapsed:
            for w in range(0, len(requests), CONCURRENCY):
                wave = [_payment_events(r) for r in requests[w : w + CONCURRENCY]]
                raw.commit([(stream_of(e), e) for first, _ in wave for e in first])
                raw.commit([(stream_of(e), e) for _, second in wave for e in second])
        return elapsed()
    finally:
        raw.close()


def _p95(samples: Sequence[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]


async def _router_figures(options: Options, sizes: Sizes) -> list[Figure]:
    per_payment: list[float] = []
    raw_per_payment: list[float] = []
    medians: list[float] = []
    p95s: list[float] = []
    with scratch_dir(options) as tmp:
        ddl = await events_ddl(tmp)
        for rep in range(options.repeat):
            raw_seconds = await run_sync(_raw_router, tmp / f"raw-{rep}.db", ddl, sizes)
            seconds, latencies = await _router_once(tmp / f"router-{rep}.db", sizes)
            per_payment.append(seconds / sizes.router_payments * 1000)
            raw_per_payment.append(raw_seconds / sizes.router_payments * 1000)
            medians.append(statistics.median(latencies) * 1000)
            p95s.append(_p95(latencies) * 1000)
            options.log(
                f"router, rep {rep + 1}: {per_payment[-1]:.3f} ms/payment "
                f"(raw {raw_per_payment[-1]:.3f}), pay() median {medians[-1]:.1f} ms, "
                f"p95 {p95s[-1]:.1f} ms"
            )
    return [
        Figure.measured(
            f"router decision + recording per payment, {CONCURRENCY} concurrent",
            "ms",
            per_payment,
            raw_per_payment,
            better="lower",
            target=Target(on="value", op="<", threshold=1.0),
            note="raw: the same 5 rows per payment, 2 synchronous=FULL commits per wave of 64",
        ),
        Figure.measured(
            f"pay() latency median, {CONCURRENCY} concurrent", "ms", medians, better="lower"
        ),
        Figure.measured(f"pay() latency p95, {CONCURRENCY} concurrent", "ms", p95s, better="lower"),
    ]


def _raw_replay(
    path: Path, ddl: Sequence[str], items: list[tuple[str, Event]], group: int
) -> float:
    raw = Raw(path, ddl)
    try:
        with timed() as elapsed:
            for i in range(0, len(items), group):
                raw.commit(items[i : i + group])
        return elapsed()
    finally:
        raw.close()


async def _simulate_figure(options: Options, sizes: Sizes) -> Figure:
    rates: list[float] = []
    raw_rates: list[float] = []
    with scratch_dir(options) as tmp:
        ddl = await events_ddl(tmp)
        for rep in range(options.repeat):
            path = tmp / f"sim-{rep}.db"
            async with open_store(path) as store:
                report = await simulate(
                    store,
                    SimulationConfig(
                        payments=sizes.simulate_payments,
                        seed=options.seed + rep,
                    ),
                )
                items = [(r.stream, r.event) async for r in store.read_all()]
            rates.append(report.events_per_second)
            tick = SimulationConfig(payments=0).tick_payments
            ticks = max(1, -(-sizes.simulate_payments // tick))
            group = max(1, len(items) // (ticks * 3))
            raw_seconds = await run_sync(_raw_replay, tmp / f"raw-{rep}.db", ddl, items, group)
            raw_rates.append(len(items) / raw_seconds)
            options.log(
                f"simulate, rep {rep + 1}: {rates[-1]:,.0f} events/s "
                f"({report.events} events), raw {raw_rates[-1]:,.0f}/s in groups of {group}"
            )
    return Figure.measured(
        f"simulate, {SimulationConfig(payments=0).concurrency} payments in flight",
        "events/s",
        rates,
        raw_rates,
        target=Target(on="value", op=">=", threshold=20_000),
        note="raw: the same events, executemany per group of the run's mean group size",
    )


async def run(options: Options) -> list[Figure]:
    sizes = SIZES["quick" if options.quick else "full"]
    return [*await _router_figures(options, sizes), await _simulate_figure(options, sizes)]
