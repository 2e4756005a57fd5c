"""The router: decisions per condition, the failover table, attempts, idempotency, timeouts,
cancellation and channel health."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway import (
    DEFAULT_ACTIONS,
    ChannelHealth,
    HealthConfig,
    PaymentRequest,
    ProcessorResult,
    Router,
    RoutingConfig,
    Verification,
)
from ledger import EventStore, open_store
from ledger.events import (
    AccountOpened,
    ChannelDecided,
    ChannelPolicySet,
    ChannelStatus,
    ChannelStatusChanged,
    CreditLineOpened,
    CreditStatus,
    CreditStatusChanged,
    Event,
    FailoverTriggered,
    PaymentAbandoned,
    PaymentAttempted,
    PaymentDeclined,
    VerificationFailed,
    VerificationRequested,
    stream_of,
)
from ledger.memory import MemoryEventStore
from projections import ChannelState, payment_at
from projections.view import StateView

pytestmark = pytest.mark.anyio

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


class Script:
    """A processor whose answers are given per channel; records every call."""

    def __init__(
        self,
        answers: dict[str, ProcessorResult] | None = None,
        verification: dict[str, Verification] | None = None,
    ) -> None:
        self.answers = answers or {}
        self.verification = verification or {}
        self.calls: list[tuple[str, str, int]] = []

    async def verify(
        self, request: PaymentRequest, channel: str, attempt: int
    ) -> Verification | None:
        return self.verification.get(channel)

    async def authorize(
        self, request: PaymentRequest, channel: str, attempt: int
    ) -> ProcessorResult:
        self.calls.append((request.payment_id, channel, attempt))
        return self.answers.get(channel, ProcessorResult.authorized(f"ok-{channel}"))


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def store() -> AsyncIterator[EventStore]:
    async with open_store(":memory:") as s:
        yield s


async def seed(store: EventStore, *events: Event) -> None:
    for event in events:
        await store.append(stream_of(event), [event])


def account(account_id: str = "A1", limit: int = 10_000_000, jiebei: bool = True) -> list[Event]:
    events: list[Event] = [
        AccountOpened(account_id=account_id, holder_ref="h", occurred_at=T0),
        CreditLineOpened(
            account_id=account_id,
            product="huabei",
            limit_minor=limit,
            currency="CNY",
            occurred_at=T0,
        ),
    ]
    if jiebei:
        events.append(
            CreditLineOpened(
                account_id=account_id,
                product="jiebei",
                limit_minor=limit,
                currency="CNY",
                occurred_at=T0,
            )
        )
    return events


def request(pid: str = "P1", **kw: object) -> PaymentRequest:
    fields: dict[str, object] = {
        "payment_id": pid,
        "account_id": "A1",
        "merchant": "zd-auto",
        "scenario": "car_loan_deposit",
        "amount_minor": 300_000,
        "preferred_channel": "huabei",
    }
    fields.update(kw)
    return PaymentRequest(**fields)  # type: ignore[arg-type]


async def events_of(store: EventStore, pid: str = "P1") -> list[Event]:
    return [r.event async for r in store.read_stream(f"payment-{pid}")]


def decided(events: list[Event]) -> list[ChannelDecided]:
    return [e for e in events if isinstance(e, ChannelDecided)]


def reason(decision: ChannelDecided, channel: str) -> str:
    (candidate,) = [c for c in decision.candidates if c.channel == channel]
    assert not candidate.eligible
    return candidate.reason


# --- decisions per condition ----------------------------------------------------------------


async def test_preferred_channel_when_eligible(store: EventStore) -> None:
    await seed(store, *account())
    outcome = await Router(store, Script(), clock=Clock()).pay(request())
    assert (outcome.status, outcome.channel, outcome.attempts) == ("succeeded", "huabei", 1)
    events = await events_of(store)
    assert [type(e).__name__ for e in events] == [
        "PaymentRequested",
        "ChannelDecided",
        "PaymentAttempted",
        "PaymentAuthorized",
        "PaymentSettled",
    ]
    (decision,) = decided(events)
    assert [c.channel for c in decision.candidates] == ["huabei", "jiebei", "bank_card", "balance"]
    assert all(c.eligible for c in decision.candidates)
    assert decision.attempt == 1


async def test_policy_routes_to_a_permitted_channel(store: EventStore) -> None:
    await seed(
        store,
        *account(),
        ChannelPolicySet(
            merchant="zd-auto",
            scenario="car_loan_down_payment",
            allowed_channels=("bank_card",),
            reason="down payments by card",
            occurred_at=T0,
        ),
    )
    outcome = await Router(store, Script(), clock=Clock()).pay(
        request(scenario="car_loan_down_payment")
    )
    assert (outcome.status, outcome.channel) == ("succeeded", "bank_card")
    (decision,) = decided(await events_of(store))
    assert decision.channel == "bank_card"
    assert "channel_policy: zd-auto accepts only bank_card" in reason(decision, "huabei")
    assert "channel_policy: zd-auto accepts only bank_card" in reason(decision, "balance")


async def test_channel_down_is_routed_around(store: EventStore) -> None:
    await seed(
        store,
        *account(),
        ChannelStatusChanged(channel="huabei", status="down", reason="outage", occurred_at=T0),
    )
    outcome = await Router(store, Script(), clock=Clock()).pay(request())
    assert outcome.channel == "jiebei"
    (decision,) = decided(await events_of(store))
    assert "system: huabei was down (outage)" in reason(decision, "huabei")


async def test_suspended_credit_is_routed_around(store: EventStore) -> None:
    await seed(
        store,
        *account(jiebei=False),
        CreditStatusChanged(
            account_id="A1",
            product="huabei",
            old_status="active",
            new_status="suspended",
            reason="overdue",
            occurred_at=T0,
        ),
    )
    outcome = await Router(store, Script(), clock=Clock()).pay(request())
    assert outcome.channel == "bank_card"
    (decision,) = decided(await events_of(store))
    assert "huabei credit line suspended (overdue)" in reason(decision, "huabei")
    assert "no jiebei credit line" in reason(decision, "jiebei")


async def test_insufficient_credit_is_routed_around(store: EventStore) -> None:
    await seed(store, *account(limit=100_000))
    outcome = await Router(store, Script(), clock=Clock()).pay(request())
    assert outcome.channel == "bank_card"
    (decision,) = decided(await events_of(store))
    assert (
        "credit: huabei available credit 1,000.00 CNY was below the 3,000.00 CNY amount"
        in reason(decision, "huabei")
    )


async def test_credit_used_by_earlier_payments_counts(store: EventStore) -> None:
    await seed(store, *account(limit=500_000, jiebei=False))
    router = Router(store, Script(), clock=Clock())
    first = await router.pay(request("P1"))
    second = await router.pay(request("P2"))
    assert (first.channel, second.channel) == ("huabei", "bank_card")
    (decision,) = decided(await events_of(store, "P2"))
    assert (
        "available credit 2,000.00 CNY was below the 3,000.00 CNY amount since position 7"
        in reason(decision, "huabei")
    )


async def test_no_eligible_channel_abandons_with_the_candidates(store: EventStore) -> None:
    await seed(
        store,
        *account(jiebei=False),
        ChannelPolicySet(
            merchant="zd-auto",
            scenario="car_loan_deposit",
            allowed_channels=("huabei",),
            reason="promotion",
            occurred_at=T0,
        ),
        CreditStatusChanged(
            account_id="A1",
            product="huabei",
            old_status="active",
            new_status="frozen",
            reason="risk review",
            occurred_at=T0,
        ),
    )
    script = Script()
    outcome = await Router(store, script, clock=Clock()).pay(request())
    assert outcome.status == "failed"
    assert script.calls == []
    events = await events_of(store)
    assert [type(e).__name__ for e in events] == [
        "PaymentRequested",
        "ChannelDecided",
        "PaymentAbandoned",
    ]
    decision = decided(events)[0]
    assert decision.channel == "huabei"
    assert not any(c.eligible for c in decision.candidates)
    assert "no eligible channel" in decision.rule
    state = await payment_at(store, "P1")
    assert state is not None
    assert state.outcome == "failed"


async def test_verification_failure_never_fails_over(store: EventStore) -> None:
    await seed(store, *account())
    script = Script(
        verification={
            "huabei": Verification(
                method="otp", failures=("wrong_code", "wrong_code", "expired"), passed=False
            )
        }
    )
    outcome = await Router(store, script, clock=Clock()).pay(request())
    assert (outcome.status, outcome.code, outcome.attempts) == ("failed", "verification_failed", 1)
    assert script.calls == []  # never authorized
    events = await events_of(store)
    assert isinstance(events[3], VerificationRequested)
    failures = [e for e in events if isinstance(e, VerificationFailed)]
    assert [f.remaining_tries for f in failures] == [2, 1, 0]
    assert not any(isinstance(e, FailoverTriggered) for e in events)
    assert isinstance(events[-2], PaymentDeclined)
    assert events[-2].code == "verification_failed"
    assert isinstance(events[-1], PaymentAbandoned)


async def test_verification_passed_after_a_mistype(store: EventStore) -> None:
    await seed(store, *account())
    script = Script(verification={"huabei": Verification(method="otp", failures=("wrong_code",))})
    outcome = await Router(store, script, clock=Clock()).pay(request())
    assert outcome.status == "succeeded"
    names = [type(e).__name__ for e in await events_of(store)]
    assert names[3:6] == ["VerificationRequested", "VerificationFailed", "VerificationPassed"]


# --- the state view -------------------------------------------------------------------------


class GatedStore(MemoryEventStore):
    """A store whose ``head()`` calls, once they have read the head, stop at the gates queued
    in ``gates`` (one gate each, in order; a call with no gate left goes through), and which
    counts those calls."""

    def __init__(self) -> None:
        super().__init__()
        self.heads = 0
        self.gates: list[anyio.Event] = []
        self.arrived: list[anyio.Event] = []

    def add_gate(self) -> tuple[anyio.Event, anyio.Event]:
        """A gate for the next ``head()`` call without one: (arrived at it, the gate)."""
        gate, arrived = anyio.Event(), anyio.Event()
        self.gates.append(gate)
        self.arrived.append(arrived)
        return arrived, gate

    async def head(self) -> int:
        self.heads += 1
        position = await super().head()
        if self.gates:
            gate = self.gates.pop(0)
            self.arrived.pop(0).set()
            await gate.wait()
        return position


async def test_concurrent_refreshes_share_one_read_of_the_head() -> None:
    store = GatedStore()
    await seed(store, *account())
    view = StateView(store)
    arrived, gate = store.add_gate()
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            for _ in range(50):
                tg.start_soon(view.refresh)
            await arrived.wait()
            await anyio.wait_all_tasks_blocked()
            gate.set()
    # started together, before the first one read the log: one read for all
    assert store.heads == 1
    assert view.world.position == await store.head()


async def test_a_refresh_sees_what_was_committed_before_it_was_called() -> None:
    """A call that arrives while an older refresh is running does not return with that
    refresh's (older) view: it waits for one that started after it."""
    store = GatedStore()
    await seed(store, *account("A1"))
    view = StateView(store)
    arrived, gate = store.add_gate()
    late = anyio.Event()

    async def later_refresh() -> None:
        await view.refresh()
        late.set()

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(view.refresh)  # reads the head, then stops at the gate
            await arrived.wait()
            await seed(store, *account("A2"))  # after that read, before the later call
            tg.start_soon(later_refresh)
            await anyio.wait_all_tasks_blocked()
            gate.set()
            await late.wait()
            assert view.account("A2") is not None
    assert view.world.position == await store.head()


async def test_a_cancelled_refresh_leaves_its_waiters_to_refresh_again() -> None:
    store = GatedStore()
    await seed(store, *account("A1"))
    view = StateView(store)
    first_arrived, first_gate = store.add_gate()
    second_arrived, _never_opened = store.add_gate()
    second = anyio.CancelScope()
    waiter_done = anyio.Event()

    async def second_refresh() -> None:
        with second:
            await view.refresh()

    async def waiter() -> None:
        await view.refresh()
        waiter_done.set()

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(view.refresh)  # refresh 1 reads the head, then is held at a gate
            await first_arrived.wait()
            await seed(store, *account("A2"))  # too late for refresh 1
            tg.start_soon(second_refresh)  # both need a refresh that starts after them
            await anyio.wait_all_tasks_blocked()
            tg.start_soon(waiter)
            await anyio.wait_all_tasks_blocked()
            first_gate.set()  # refresh 1 ends; second_refresh starts refresh 2 ...
            await second_arrived.wait()
            await anyio.wait_all_tasks_blocked()
            second.cancel()  # ... which is cancelled before it applies anything
            await waiter_done.wait()
            # the waiter did not take the cancelled refresh for a finished one
            assert view.account("A2") is not None
    assert second.cancelled_caught


# --- the failover table ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("timeout", "jiebei"),
        ("channel_unavailable", "jiebei"),
        ("channel_not_permitted", "jiebei"),
        ("credit_suspended", "bank_card"),
        ("insufficient_credit", "bank_card"),
        ("verification_failed", None),
        ("invalid_details", None),
        ("risk_blocked", None),
        ("unknown", None),
    ],
)
async def test_failover_table(store: EventStore, code: str, expected: str | None) -> None:
    await seed(store, *account())
    script = Script({"huabei": ProcessorResult.declined(code, "no")})  # type: ignore[arg-type]
    outcome = await Router(store, script, clock=Clock()).pay(request())
    events = await events_of(store)
    declined = [e for e in events if isinstance(e, PaymentDeclined)]
    assert declined[0].code == code
    assert declined[0].attempt == 1
    failovers = [e for e in events if isinstance(e, FailoverTriggered)]
    if expected is None:
        assert outcome.status == "failed"
        assert failovers == []
        assert isinstance(events[-1], PaymentAbandoned)
    else:
        assert (outcome.status, outcome.channel, outcome.attempts) == ("succeeded", expected, 2)
        assert [(f.from_channel, f.to_channel) for f in failovers] == [("huabei", expected)]
        second = decided(events)[1]
        assert second.attempt == 2
        assert second.channel == expected
        assert "already tried" in reason(second, "huabei")
        attempts = [e.attempt for e in events if isinstance(e, PaymentAttempted)]
        assert attempts == [1, 2]


async def test_credit_fallback_can_be_turned_off(store: EventStore) -> None:
    await seed(store, *account())
    script = Script({"huabei": ProcessorResult.declined("credit_suspended")})
    config = RoutingConfig(credit_fallback=False)
    outcome = await Router(store, script, config, clock=Clock()).pay(request())
    assert outcome.status == "failed"
    assert [c for _, c, _ in script.calls] == ["huabei"]


async def test_no_failover_stops_at_the_first_decline(store: EventStore) -> None:
    await seed(store, *account())
    script = Script({"huabei": ProcessorResult.timed_out()})
    outcome = await Router(store, script, RoutingConfig(failover=False), clock=Clock()).pay(
        request()
    )
    assert (outcome.status, outcome.code) == ("failed", "timeout")
    assert len(script.calls) == 1


async def test_maximum_attempts_is_enforced(store: EventStore) -> None:
    await seed(store, *account())
    script = Script({c: ProcessorResult.timed_out() for c in ("huabei", "jiebei", "bank_card")})
    outcome = await Router(store, script, RoutingConfig(max_attempts=2), clock=Clock()).pay(
        request()
    )
    assert (outcome.status, outcome.attempts) == ("failed", 2)
    events = await events_of(store)
    assert [e.attempt for e in events if isinstance(e, PaymentAttempted)] == [1, 2]
    assert isinstance(events[-1], PaymentAbandoned)
    assert "maximum of 2 attempts" in events[-1].reason


async def test_every_channel_failing_ends_without_another_candidate(store: EventStore) -> None:
    await seed(store, *account())
    script = Script(
        {c: ProcessorResult.timed_out() for c in ("huabei", "jiebei", "bank_card", "balance")}
    )
    outcome = await Router(store, script, RoutingConfig(max_attempts=9), clock=Clock()).pay(
        request()
    )
    assert (outcome.status, outcome.attempts) == ("failed", 4)
    last = (await events_of(store))[-1]
    assert isinstance(last, PaymentAbandoned)
    assert "no other eligible channel" in last.reason


def test_routes_and_actions_are_configuration() -> None:
    config = RoutingConfig(
        routes={"zd-auto/car_loan_down_payment": ("bank_card",), "*/retail": ("balance",)},
        actions={**DEFAULT_ACTIONS, "unknown": "failover"},
    )
    assert config.order_for("zd-auto", "car_loan_down_payment", "huabei") == ("huabei", "bank_card")
    assert config.order_for("x", "retail", "balance") == ("balance",)
    assert config.order_for("x", "car_loan_deposit", "jiebei")[0] == "jiebei"
    assert config.action_for("unknown") == "failover"
    assert config.action_for("not-a-code") == "stop"
    with pytest.raises(ValueError, match="max_attempts"):
        RoutingConfig(max_attempts=0)
    with pytest.raises(ValueError, match="unknown action"):
        RoutingConfig(actions={"timeout": "retry"})  # type: ignore[dict-item]


# --- idempotency ----------------------------------------------------------------------------


async def test_a_retried_payment_id_is_not_recorded_twice(store: EventStore) -> None:
    await seed(store, *account())
    script = Script()
    router = Router(store, script, clock=Clock())
    first = await router.pay(request())
    head = await store.head()
    again = await Router(store, script, clock=Clock()).pay(request(amount_minor=999))
    assert await store.head() == head
    assert again.duplicate
    assert not first.duplicate
    assert (again.status, again.channel) == ("succeeded", "huabei")
    assert len(script.calls) == 1


async def test_concurrent_retries_record_one_payment(tmp_path: Path) -> None:
    async with open_store(tmp_path / "l.db") as store:
        await seed(store, *account())
        outcomes = []

        async def pay(router: Router) -> None:
            outcomes.append(await router.pay(request()))

        async with anyio.create_task_group() as tg:
            for _ in range(8):
                tg.start_soon(pay, Router(store, Script(), clock=Clock()))
        assert sum(not o.duplicate for o in outcomes) == 1
        names = [type(e).__name__ for e in await events_of(store)]
        assert names.count("PaymentRequested") == 1
        assert names[-1] == "PaymentSettled"
        assert (await store.verify()).ok


# --- timeouts and cancellation --------------------------------------------------------------


class Hanging(Script):
    """Never answers on ``huabei``."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = anyio.Event()

    async def authorize(
        self, request: PaymentRequest, channel: str, attempt: int
    ) -> ProcessorResult:
        if channel == "huabei":
            self.entered.set()
            await anyio.sleep_forever()
        return await super().authorize(request, channel, attempt)


async def test_a_processor_that_never_answers_times_out(store: EventStore) -> None:
    await seed(store, *account())
    config = RoutingConfig(timeout_seconds=0.01)
    outcome = await Router(store, Hanging(), config, clock=Clock()).pay(request())
    assert (outcome.status, outcome.channel, outcome.attempts) == ("succeeded", "jiebei", 2)
    declined = [e for e in await events_of(store) if isinstance(e, PaymentDeclined)]
    assert [(d.channel, d.code) for d in declined] == [("huabei", "timeout")]


async def test_cancelling_pay_leaves_the_log_consistent(tmp_path: Path) -> None:
    async with open_store(tmp_path / "l.db") as store:
        await seed(store, *account())
        processor = Hanging()
        router = Router(store, processor, RoutingConfig(timeout_seconds=3600), clock=Clock())
        async with anyio.create_task_group() as tg:
            tg.start_soon(router.pay, request())
            await processor.entered.wait()
            retry = await Router(store, Script(), clock=Clock()).pay(request())
            assert retry.duplicate
            assert retry.status == "pending"  # the first call is still at the processor
            tg.cancel_scope.cancel()
        events = await events_of(store)
        assert isinstance(events[-1], PaymentAbandoned)
        assert "cancelled" in events[-1].reason
        state = await payment_at(store, "P1")
        assert state is not None
        assert state.outcome == "failed"
        assert (await store.verify()).ok
        # the payment id stays recorded: a retry appends nothing
        again = await Router(store, Script(), clock=Clock()).pay(request())
        assert again.duplicate
        assert again.status == "failed"


# --- channel health -------------------------------------------------------------------------


async def test_failures_degrade_a_channel_and_it_is_routed_around(store: EventStore) -> None:
    await seed(store, *account(limit=10**9))
    clock = Clock()
    health = HealthConfig(min_samples=4, degrade_at=0.5, recover_at=0.2, probe_every=10**9)
    script = Script({"huabei": ProcessorResult.declined("channel_unavailable")})
    router = Router(store, script, RoutingConfig(health=health), clock=clock)
    for i in range(4):
        outcome = await router.pay(request(f"P{i}"))
        assert outcome.channel == "jiebei"
    changes = [r.event async for r in store.read_stream("channel-huabei")]
    assert len(changes) == 1
    change = changes[0]
    assert isinstance(change, ChannelStatusChanged)
    assert change.status == "degraded"
    assert change.reason == "failure rate 1.00 over last 4 attempts"
    script.calls.clear()
    outcome = await router.pay(request("P9"))
    assert outcome.attempts == 1
    assert outcome.channel == "jiebei"
    assert [c for _, c, _ in script.calls] == ["jiebei"]
    (decision,) = decided(await events_of(store, "P9"))
    assert "system: huabei was degraded (failure rate 1.00" in reason(decision, "huabei")


async def test_a_degraded_channel_recovers_through_probes(store: EventStore) -> None:
    await seed(store, *account(limit=10**9))
    clock = Clock()
    health = HealthConfig(min_samples=4, recover_samples=3, window_seconds=60, probe_every=1)
    script = Script({"huabei": ProcessorResult.declined("channel_unavailable")})
    router = Router(store, script, RoutingConfig(health=health), clock=clock)
    for i in range(4):
        await router.pay(request(f"P{i}"))
    assert router.view.channel("huabei").status == "degraded"
    script.answers.clear()  # huabei is back
    clock.now = T0 + timedelta(seconds=61)  # the failures have left the window
    outcomes = [await router.pay(request(f"Q{i}")) for i in range(3)]
    assert [o.channel for o in outcomes] == ["huabei"] * 3  # probes
    (decision,) = decided(await events_of(store, "Q0"))
    assert "tried as a probe" in decision.candidates[0].reason
    statuses = [r.event async for r in store.read_stream("channel-huabei")]
    assert [(e.status, e.reason) for e in statuses if isinstance(e, ChannelStatusChanged)] == [
        ("degraded", "failure rate 1.00 over last 4 attempts"),
        ("up", "failure rate 0.00 over last 3 attempts"),
    ]


def test_health_has_hysteresis() -> None:
    health = ChannelHealth(HealthConfig(min_samples=10, degrade_at=0.5, recover_at=0.2))
    clock = T0
    up = _channel("up")
    for i in range(10):
        health.observe("huabei", clock, failed=i < 4)  # 0.4: below degrade_at
    assert health.verdict(up, clock) is None
    health.observe("huabei", clock, failed=True)
    health.observe("huabei", clock, failed=True)  # 6/12 = 0.5
    assert health.verdict(up, clock) == ("degraded", "failure rate 0.50 over last 12 attempts")
    degraded = _channel("degraded", "failure rate 0.50 over last 12 attempts")
    for _ in range(8):
        health.observe("huabei", clock, failed=False)  # 6/20 = 0.3: between the thresholds
    assert health.verdict(degraded, clock) is None
    assert health.verdict(up, clock) is None
    for _ in range(10):
        health.observe("huabei", clock, failed=False)  # 6/30 = 0.2
    assert health.verdict(degraded, clock) == ("up", "failure rate 0.20 over last 30 attempts")
    # a degraded status set by someone else is not the monitor's to lift
    assert health.verdict(_channel("degraded", "operator"), clock) is None
    # the window slides
    later = clock + timedelta(seconds=61)
    assert health.rate("huabei", later) == (0.0, 0)


def _channel(status: ChannelStatus, why: str = "") -> ChannelState:
    return ChannelState(channel="huabei", status=status, reason=why)


@given(
    outcomes=st.lists(st.booleans(), min_size=1, max_size=60),
    degrade=st.floats(0.05, 1.0),
)
def test_health_rate_is_the_share_of_failures(outcomes: list[bool], degrade: float) -> None:
    health = ChannelHealth(HealthConfig(min_samples=1, degrade_at=degrade, recover_at=0.0))
    for failed in outcomes:
        health.observe("huabei", T0, failed)
    rate, n = health.rate("huabei", T0)
    assert n == len(outcomes)
    assert rate == sum(outcomes) / len(outcomes)
    verdict = health.verdict(_channel("up"), T0)
    assert (verdict is not None) == (rate >= degrade)


# --- the decision against a model -----------------------------------------------------------

CHANNELS = ("huabei", "jiebei", "bank_card", "balance")


@settings(max_examples=40)
@given(
    preferred=st.sampled_from(CHANNELS),
    allowed=st.none() | st.sets(st.sampled_from(CHANNELS)),
    statuses=st.fixed_dictionaries(
        {c: st.sampled_from(["up", "down", "maintenance", "degraded"]) for c in CHANNELS}
    ),
    lines=st.fixed_dictionaries(
        {
            c: st.none()
            | st.tuples(
                st.sampled_from(["active", "limited", "suspended", "frozen"]),
                st.integers(0, 600_000),
            )
            for c in ("huabei", "jiebei")
        }
    ),
)
async def test_the_decision_follows_policy_health_and_credit(
    preferred: str,
    allowed: set[str] | None,
    statuses: dict[str, ChannelStatus],
    lines: dict[str, tuple[CreditStatus, int] | None],
) -> None:
    events: list[Event] = [AccountOpened(account_id="A1", holder_ref="h", occurred_at=T0)]
    for product, line in lines.items():
        if line is not None:
            status, limit = line
            events.append(
                CreditLineOpened(
                    account_id="A1",
                    product=product,
                    limit_minor=limit,
                    currency="CNY",
                    occurred_at=T0,
                )
            )
            if status != "active":
                events.append(
                    CreditStatusChanged(
                        account_id="A1",
                        product=product,
                        old_status="active",
                        new_status=status,
                        reason="r",
                        occurred_at=T0,
                    )
                )
    if allowed is not None:
        events.append(
            ChannelPolicySet(
                merchant="zd-auto",
                scenario="car_loan_deposit",
                allowed_channels=tuple(sorted(allowed)),
                reason="r",
                occurred_at=T0,
            )
        )
    for channel, channel_status in statuses.items():
        if channel_status != "up":
            events.append(
                ChannelStatusChanged(
                    channel=channel, status=channel_status, reason="r", occurred_at=T0
                )
            )

    def eligible(channel: str) -> bool:
        if allowed is not None and channel not in allowed:
            return False
        if statuses[channel] != "up":
            return False
        if channel in ("huabei", "jiebei"):
            line = lines[channel]
            return line is not None and line[0] == "active" and line[1] >= 300_000
        return True

    order = list(dict.fromkeys([preferred, *CHANNELS]))
    expected = next((c for c in order if eligible(c)), None)
    health = HealthConfig(probe_every=10**9)
    async with open_store(":memory:") as store:
        await seed(store, *events)
        script = Script()
        outcome = await Router(store, script, RoutingConfig(health=health), clock=Clock()).pay(
            request(preferred_channel=preferred)
        )
        (decision,) = decided(await events_of(store))
    assert [c.channel for c in decision.candidates] == order
    assert [c.eligible for c in decision.candidates] == [eligible(c) for c in order]
    if expected is None:
        assert outcome.status == "failed"
        assert decision.channel == preferred
        assert script.calls == []
    else:
        assert outcome.status == "succeeded"
        assert decision.channel == expected == outcome.channel
        assert [c for _, c, _ in script.calls] == [expected]
