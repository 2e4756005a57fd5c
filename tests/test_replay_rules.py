"""The replay engine's rules on small hand-written logs (CONTRACT section 7): the moment an
attempt is judged, the decline code as a clue only, unfinished and pending payments, several
failed attempts. Each explanation is checked against the batch pass too, on every backend."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import msgspec
import pytest
from backends import Backend

from ledger import EventStore
from ledger import events as ev
from replay import Explanation, explain, explain_payments

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
PID = "P1"


class Log:
    """Appends events one by one, each a minute after the last; remembers positions."""

    def __init__(self, store: EventStore) -> None:
        self.store = store
        self.n = 0

    async def add(self, cls: type[ev.Event], **fields: object) -> int:
        self.n += 1
        event = cls(occurred_at=T0 + timedelta(minutes=self.n), **fields)
        result = await self.store.append(ev.stream_of(event), [event])
        return result.positions[0]

    async def account(self, account_id: str = "A1", **lines: int) -> None:
        await self.add(ev.AccountOpened, account_id=account_id, holder_ref="H1")
        for product, limit in lines.items():
            await self.add(
                ev.CreditLineOpened,
                account_id=account_id,
                product=product,
                limit_minor=limit,
                currency="CNY",
            )

    async def request(self, channel: str = "huabei", amount: int = 100_000) -> int:
        return await self.add(
            ev.PaymentRequested,
            payment_id=PID,
            account_id="A1",
            merchant="zd-auto",
            scenario="car_loan_instalment",
            amount_minor=amount,
            currency="CNY",
            preferred_channel=channel,
        )

    async def attempt(self, n: int = 1, channel: str = "huabei", amount: int = 100_000) -> int:
        return await self.add(
            ev.PaymentAttempted, payment_id=PID, attempt=n, channel=channel, amount_minor=amount
        )

    async def decline(self, code: str, n: int = 1, channel: str = "huabei") -> int:
        return await self.add(
            ev.PaymentDeclined, payment_id=PID, attempt=n, channel=channel, code=code, message="x"
        )


@pytest.fixture
async def log(backend: Backend) -> AsyncIterator[Log]:
    """A new store of each backend (memory, SQLite, PostgreSQL) to write the log into."""
    async with backend.store(durability="normal") as store:
        yield Log(store)


async def _explain(log: Log) -> Explanation:
    """Explain P1 and check the batch pass says the same."""
    one = await explain(log.store, PID)
    batch = [e async for e in explain_payments(log.store) if e.payment_id == PID]
    assert [msgspec.json.encode(e) for e in batch] == [msgspec.json.encode(one)]
    return one


@pytest.mark.anyio
async def test_a_status_change_between_attempt_and_decline_does_not_count(log: Log) -> None:
    """Rule 7.1: the world an attempt met is the fold of the events below its
    ``PaymentAttempted``; an outage recorded after it, even before its decline, is not it."""
    await log.account(huabei=1_000_000)
    await log.request()
    attempted = await log.attempt()
    await log.add(ev.ChannelStatusChanged, channel="huabei", status="down", reason="x")
    await log.decline("unknown")
    exp = await _explain(log)
    assert exp.root_cause is not None
    assert (exp.root_cause.category, exp.root_cause.evidence) == ("unknown", ())
    assert f"before position {attempted}" in exp.root_cause.summary
    assert exp.attempts[0].moment == attempted


@pytest.mark.anyio
async def test_a_timeout_on_a_healthy_channel_is_its_own_evidence(log: Log) -> None:
    await log.account(huabei=1_000_000)
    await log.request()
    await log.attempt()
    declined = await log.decline("timeout")
    exp = await _explain(log)
    assert exp.root_cause is not None
    assert (exp.root_cause.category, exp.root_cause.evidence) == ("system", (declined,))
    assert "observed" in exp.root_cause.summary


@pytest.mark.anyio
async def test_invalid_details_is_a_user_action(log: Log) -> None:
    await log.account()
    await log.request("bank_card")
    await log.attempt(channel="bank_card")
    declined = await log.decline("invalid_details", channel="bank_card")
    exp = await _explain(log)
    assert exp.root_cause is not None
    assert (exp.root_cause.category, exp.root_cause.evidence) == ("user_action", (declined,))


@pytest.mark.anyio
async def test_the_code_lies_when_the_state_explains(log: Log) -> None:
    await log.account(huabei=1_000_000)
    frozen = await log.add(
        ev.CreditStatusChanged,
        account_id="A1",
        product="huabei",
        old_status="active",
        new_status="frozen",
        reason="risk review",
    )
    await log.request()
    await log.attempt()
    await log.decline("channel_unavailable")
    exp = await _explain(log)
    assert exp.root_cause is not None
    assert (exp.root_cause.category, exp.root_cause.evidence) == ("credit", (frozen,))
    assert exp.root_cause.contributing == ()
    assert "frozen" in exp.root_cause.summary


@pytest.mark.anyio
async def test_no_credit_line_at_all(log: Log) -> None:
    await log.account(jiebei=5_000_000)
    await log.request()
    await log.attempt()
    await log.decline("unknown")
    exp = await _explain(log)
    assert exp.root_cause is not None
    assert (exp.root_cause.category, exp.root_cause.evidence) == ("credit", ())
    assert "no huabei credit line" in exp.root_cause.summary


@pytest.mark.anyio
async def test_repaid_usage_is_not_evidence(log: Log) -> None:
    await log.account(huabei=200_000)
    other = "P0"
    await log.add(
        ev.PaymentRequested,
        payment_id=other,
        account_id="A1",
        merchant="m",
        scenario="retail",
        amount_minor=150_000,
        currency="CNY",
        preferred_channel="huabei",
    )
    settled = await log.add(
        ev.PaymentSettled, payment_id=other, attempt=1, channel="huabei", amount_minor=50_000
    )
    await log.add(
        ev.PaymentSettled, payment_id=other, attempt=2, channel="huabei", amount_minor=100_000
    )
    await log.add(ev.RepaymentMade, account_id="A1", product="huabei", amount_minor=60_000)
    await log.request(amount=150_000)
    await log.attempt(amount=150_000)
    await log.decline("insufficient_credit")
    exp = await _explain(log)
    assert exp.root_cause is not None
    assert exp.root_cause.category == "credit"
    # 200,000 - 50,000 left exactly 150,000; the second settlement took it below the amount
    # (the repayment brought it back to 110,000 only): that settlement is the evidence
    assert exp.root_cause.evidence == (settled + 1,)


@pytest.mark.anyio
async def test_abandoned_during_verification(log: Log) -> None:
    await log.account(huabei=1_000_000)
    await log.request()
    await log.add(
        ev.ChannelDecided, payment_id=PID, attempt=1, channel="huabei", candidates=(), rule="r"
    )
    failures = [
        await log.add(
            ev.VerificationFailed,
            payment_id=PID,
            attempt=1,
            method="otp",
            reason="wrong_code",
            remaining_tries=left,
        )
        for left in (1, 0)
    ]
    await log.add(ev.PaymentAbandoned, payment_id=PID, reason="gave up")
    exp = await _explain(log)
    assert exp.outcome == "failed"
    assert exp.root_cause is not None
    assert (exp.root_cause.category, exp.root_cause.evidence) == ("user_action", tuple(failures))
    assert exp.attempts[0].outcome == "abandoned"


@pytest.mark.anyio
async def test_a_verification_passed_after_a_slip_is_not_the_cause(log: Log) -> None:
    await log.account(huabei=1_000_000)
    await log.request()
    await log.add(
        ev.VerificationFailed,
        payment_id=PID,
        attempt=1,
        method="otp",
        reason="wrong_code",
        remaining_tries=2,
    )
    await log.add(ev.VerificationPassed, payment_id=PID, attempt=1, method="otp")
    attempted = await log.attempt()
    await log.decline("verification_failed")
    exp = await _explain(log)
    assert exp.root_cause is not None
    assert exp.root_cause.category == "unknown"
    assert "VerificationFailed" in exp.root_cause.summary
    assert f"before position {attempted}" in exp.root_cause.summary


@pytest.mark.anyio
async def test_pending_and_never_attempted_payments(log: Log) -> None:
    await log.account(huabei=1_000_000)
    await log.request()
    await log.attempt()
    exp = await _explain(log)
    assert (exp.outcome, exp.root_cause, exp.state_at_failure) == ("pending", None, None)
    await log.add(ev.PaymentAbandoned, payment_id=PID, reason="left")
    exp = await _explain(log)
    assert exp.outcome == "failed"
    assert exp.root_cause is not None
    assert exp.root_cause.category == "unknown"


@pytest.mark.anyio
async def test_abandoned_before_any_attempt(log: Log) -> None:
    await log.account()
    await log.request()
    await log.add(ev.PaymentAbandoned, payment_id=PID, reason="changed mind")
    exp = await _explain(log)
    assert exp.root_cause is not None
    assert exp.root_cause.category == "unknown"
    assert "before any attempt" in exp.root_cause.summary
    assert exp.attempts == ()


@pytest.mark.anyio
async def test_two_failed_attempts_the_last_is_the_root(log: Log) -> None:
    await log.account(huabei=1_000_000)
    down = await log.add(ev.ChannelStatusChanged, channel="huabei", status="down", reason="x")
    policy = await log.add(
        ev.ChannelPolicySet,
        merchant="zd-auto",
        scenario="car_loan_instalment",
        allowed_channels=("huabei", "balance"),
        reason="no cards",
    )
    await log.request()
    await log.attempt()
    await log.decline("channel_unavailable")
    await log.add(
        ev.FailoverTriggered,
        payment_id=PID,
        from_channel="huabei",
        to_channel="bank_card",
        reason="down",
    )
    await log.attempt(2, "bank_card")
    await log.decline("channel_not_permitted", 2, "bank_card")
    exp = await _explain(log)
    assert exp.outcome == "failed"
    causes = [(a.cause.category, a.cause.evidence) for a in exp.attempts if a.cause]
    assert causes == [("system", (down,)), ("channel_policy", (policy,))]
    assert exp.root_cause is not None
    assert exp.root_cause.category == "channel_policy"
    assert "pay by balance" in exp.root_cause.remedy
    assert exp.state_at_failure is not None
    assert exp.state_at_failure.channel.channel == "bank_card"
