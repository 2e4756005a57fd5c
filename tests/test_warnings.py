"""Early warnings: credit deteriorations around car-loan payments, channel trouble."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
import anyio.lowlevel
import msgspec
import pytest

from gateway.warnings import Warning, warnings
from ledger import EventStore, open_store
from ledger.events import (
    AccountOpened,
    ChannelStatusChanged,
    CreditScoreChanged,
    CreditStatusChanged,
    Event,
    PaymentAttempted,
    PaymentDeclined,
    PaymentRequested,
    PaymentSettled,
    RepaymentOverdue,
    stream_of,
)
from replay.cli import main

pytestmark = pytest.mark.anyio

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
async def store() -> AsyncIterator[EventStore]:
    async with open_store(":memory:") as s:
        yield s


async def seed(store: EventStore, *events: Event) -> None:
    for event in events:
        await store.append(stream_of(event), [event])


def requested(
    pid: str, account: str, scenario: str = "car_loan_down_payment", at: datetime = T0
) -> PaymentRequested:
    return PaymentRequested(
        payment_id=pid,
        account_id=account,
        merchant="zd-auto",
        scenario=scenario,
        amount_minor=3_000_000,
        currency="CNY",
        preferred_channel="huabei",
        occurred_at=at,
    )


def score(account: str, old: int, new: int, at: datetime = T0) -> CreditScoreChanged:
    return CreditScoreChanged(
        account_id=account, old_score=old, new_score=new, bureau="zhima", occurred_at=at
    )


async def collect(store: EventStore, **kw: object) -> list[Warning]:
    return [w async for w in warnings(store, **kw)]  # type: ignore[arg-type]


async def test_credit_warnings_for_accounts_with_car_loan_payments(store: EventStore) -> None:
    await seed(
        store,
        AccountOpened(account_id="A1", holder_ref="h1", occurred_at=T0),
        AccountOpened(account_id="A2", holder_ref="h2", occurred_at=T0),
        AccountOpened(account_id="A3", holder_ref="h3", occurred_at=T0),
        requested("P1", "A1"),
        requested("P3", "A3", scenario="retail"),
        score("A1", 720, 610),
        score("A2", 720, 610),  # no payment at all
        score("A3", 720, 610),  # a retail payment only
        score("A1", 610, 650),  # a rise
        RepaymentOverdue(
            account_id="A1", product="huabei", overdue_minor=50_000, days_overdue=10, occurred_at=T0
        ),
        RepaymentOverdue(
            account_id="A1", product="huabei", overdue_minor=50_000, days_overdue=35, occurred_at=T0
        ),
        RepaymentOverdue(
            account_id="A2", product="huabei", overdue_minor=50_000, days_overdue=95, occurred_at=T0
        ),
        CreditStatusChanged(
            account_id="A1",
            product="huabei",
            old_status="active",
            new_status="suspended",
            reason="overdue",
            occurred_at=T0,
        ),
        CreditStatusChanged(
            account_id="A1",
            product="huabei",
            old_status="suspended",
            new_status="active",
            reason="repaid",
            occurred_at=T0,
        ),
        CreditStatusChanged(
            account_id="A3",
            product="huabei",
            old_status="active",
            new_status="frozen",
            reason="risk",
            occurred_at=T0,
        ),
    )
    found = await collect(store)
    assert [(w.kind, w.subject, w.severity) for w in found] == [
        ("credit_score_drop", "account-A1", "warning"),
        ("repayment_overdue", "account-A1", "warning"),
        ("credit_status", "account-A1", "critical"),
    ]
    assert all(w.payments == ("P1",) for w in found)
    assert [w.position for w in found] == [6, 11, 13]
    assert "720 -> 610" in found[0].summary
    assert "35 days" in found[1].summary
    assert "active -> suspended (overdue)" in found[2].summary


async def test_an_old_settled_car_loan_payment_no_longer_counts(store: EventStore) -> None:
    await seed(
        store,
        requested("P1", "A1"),
        PaymentAttempted(
            payment_id="P1", attempt=1, channel="huabei", amount_minor=3_000_000, occurred_at=T0
        ),
        PaymentSettled(
            payment_id="P1", attempt=1, channel="huabei", amount_minor=3_000_000, occurred_at=T0
        ),
        score("A1", 720, 600, at=T0 + timedelta(days=10)),
        score("A1", 600, 500, at=T0 + timedelta(days=45)),
        requested("P2", "A1", at=T0 + timedelta(days=60)),
        score("A1", 500, 400, at=T0 + timedelta(days=200)),  # P2 is still pending
    )
    found = await collect(store)
    assert [(w.payments, w.position) for w in found] == [(("P1",), 4), (("P2",), 7)]


async def test_channel_warnings(store: EventStore) -> None:
    events: list[Event] = [
        ChannelStatusChanged(
            channel="huabei", status="degraded", reason="failure rate 0.6", occurred_at=T0
        ),
        ChannelStatusChanged(channel="huabei", status="up", reason="recovered", occurred_at=T0),
        ChannelStatusChanged(channel="bank_card", status="down", reason="outage", occurred_at=T0),
        ChannelStatusChanged(
            channel="balance",
            status="maintenance",
            reason="upgrade",
            occurred_at=T0,
            expected_until=T0 + timedelta(hours=2),
        ),
    ]
    await seed(store, *events)
    found = await collect(store)
    assert [(w.subject, w.severity) for w in found] == [
        ("channel-huabei", "warning"),
        ("channel-bank_card", "critical"),
        ("channel-balance", "info"),
    ]
    assert {w.kind for w in found} == {"channel_status"}
    assert "expected until 2026-03-01T11:00:00Z" in found[2].summary


async def test_a_rising_failure_rate_warns_once(store: EventStore) -> None:
    events: list[Event] = []
    for i in range(40):
        pid = f"P{i}"
        events.append(requested(pid, f"A{i}", scenario="retail"))
        events.append(
            PaymentAttempted(
                payment_id=pid, attempt=1, channel="jiebei", amount_minor=100, occurred_at=T0
            )
        )
        if i >= 20 and i % 2 == 0:  # from the 21st payment on, half time out
            events.append(
                PaymentDeclined(
                    payment_id=pid,
                    attempt=1,
                    channel="jiebei",
                    code="timeout",
                    message="t",
                    occurred_at=T0,
                )
            )
        elif i % 5 == 0:
            events.append(
                PaymentDeclined(
                    payment_id=pid,
                    attempt=1,
                    channel="jiebei",
                    code="invalid_details",
                    message="x",
                    occurred_at=T0,
                )
            )
        else:
            events.append(
                PaymentSettled(
                    payment_id=pid, attempt=1, channel="jiebei", amount_minor=100, occurred_at=T0
                )
            )
    await seed(store, *events)
    found = await collect(store)
    assert [(w.kind, w.subject) for w in found] == [("channel_failure_rate", "channel-jiebei")]
    assert "rose to 0.2" in found[0].summary


async def test_since_filters_by_time_and_position(store: EventStore) -> None:
    await seed(
        store,
        requested("P1", "A1"),
        score("A1", 700, 600, at=T0 + timedelta(hours=1)),
        score("A1", 600, 500, at=T0 + timedelta(hours=3)),
    )
    assert [w.position for w in await collect(store, since=T0 + timedelta(hours=2))] == [3]
    assert [w.position for w in await collect(store, since=2)] == [2, 3]


async def test_follow_yields_warnings_as_they_are_appended(tmp_path: Path) -> None:
    async with open_store(tmp_path / "l.db") as store:
        await seed(store, requested("P1", "A1"))
        got: list[Warning] = []
        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:

                async def watch() -> None:
                    async for w in warnings(store, follow=True):
                        got.append(w)
                        tg.cancel_scope.cancel()

                tg.start_soon(watch)
                await anyio.lowlevel.checkpoint()
                await seed(store, score("A1", 700, 650))
        assert [w.kind for w in got] == ["credit_score_drop"]


def test_the_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "l.db"

    async def build() -> None:
        async with open_store(db) as store:
            await seed(
                store,
                requested("P1", "A1"),
                score("A1", 700, 600),
                ChannelStatusChanged(
                    channel="huabei",
                    status="down",
                    reason="outage",
                    occurred_at=T0 + timedelta(hours=1),
                ),
            )

    anyio.run(build)
    assert main(["--db", str(db), "warnings", "--json"]) == 0
    lines = capsys.readouterr().out.splitlines()
    docs = [msgspec.json.decode(line) for line in lines]
    assert [d["kind"] for d in docs] == ["credit_score_drop", "channel_status"]
    assert docs[0]["subject"] == "account-A1"
    assert docs[0]["position"] == 2
    assert main(["--db", str(db), "warnings", "--since", "2026-03-01T09:30:00Z"]) == 0
    out = capsys.readouterr().out
    assert "channel-huabei" in out
    assert "account-A1" not in out
    assert main(["--db", str(db), "warnings", "--since", "yesterday"]) == 2
    assert "--since" in capsys.readouterr().err
