"""Incidents (CONTRACT section 4): every failed payment of the period is in exactly one incident,
grouped by its root cause's category and evidence (``unknown`` by channel and decline code),
with the amounts that did not go through and the payments failover saved from the same cause."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from backends import Backend
from hypothesis import HealthCheck, given, settings
from logs import T0, load, random_logs, run

from gateway import SimulationConfig, simulate
from ledger import events as ev
from ledger import open_store
from replay import explain, explain_payments
from replay.cli import main
from replay.incidents import Incident, group_incidents, incidents, key_of_attempt

REQUIRED = {
    "category",
    "evidence",
    "summary",
    "first_failure_at",
    "last_failure_at",
    "payments_failed",
    "payment_ids",
    "amount_failed_minor",
    "saved_by_failover",
}


def _check_partition(found: list[Incident], failed: dict[str, Any]) -> None:
    """Every failed payment in exactly one incident, with that incident's cause."""
    members = [pid for i in found for pid in i.payment_ids]
    assert sorted(members) == sorted(failed), "every failed payment, once"
    for i in found:
        assert i.payments_failed == len(i.payment_ids)
        for pid in i.payment_ids:
            exp = failed[pid]
            assert exp.root_cause.category == i.category
            if i.category != "unknown":
                assert tuple(exp.root_cause.evidence) == i.evidence
        amounts: dict[str, int] = {}
        for pid in i.payment_ids:
            amounts[failed[pid].currency] = amounts.get(failed[pid].currency, 0) + (
                failed[pid].amount_minor
            )
        assert i.amount_failed_minor == amounts
        assert i.first_failure_at <= i.last_failure_at
    ranks = [i.payments_failed for i in found]
    assert ranks == sorted(ranks, reverse=True)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("backend", "seed", "payments"),
    [
        ("memory", 3, 1500),
        ("memory", 8, 900),
        ("sqlite", 3, 900),
        ("postgres", 3, 900),
        ("postgres", 8, 500),
    ],
    indirect=["backend"],
)
async def test_incidents_partition_a_simulated_fleet(
    backend: Backend, seed: int, payments: int
) -> None:
    async with backend.store(durability="normal") as store:
        await simulate(store, SimulationConfig(payments=payments, seed=seed))
        every = [e async for e in explain_payments(store)]
        failed = {e.payment_id: e for e in every if e.outcome == "failed"}
        found = await incidents(store)
        _check_partition(found, failed)
        assert len(found) < len(failed), "failures share causes: fewer incidents than payments"
        # failover saves: succeeded payments with an attempt that failed for the same cause
        keys = {
            (i.category, i.evidence, i.channel if i.category == "unknown" else None, i.code)
            for i in found
        }
        for i in found:
            key = (i.category, i.evidence, i.channel if i.category == "unknown" else None, i.code)
            want = sorted(
                e.payment_id
                for e in every
                if e.outcome == "succeeded" and key in {key_of_attempt(a) for a in e.attempts}
            )
            assert list(i.saved_payment_ids) == want
            assert i.saved_by_failover == len(want)
        assert keys
        # one incident's payments all explain to the same cause
        biggest = found[0]
        for pid in biggest.payment_ids[:5]:
            exp = await explain(store, pid)
            assert exp.root_cause is not None
            assert exp.root_cause.category == biggest.category


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(random_logs())
def test_incidents_partition_random_logs(events: list[ev.Event]) -> None:
    async def body() -> None:
        async with open_store(":memory:") as store:
            await load(store, events)
            every = [e async for e in explain_payments(store)]
            failed = {e.payment_id: e for e in every if e.outcome == "failed"}
            _check_partition(await incidents(store), failed)
            # grouping the explanations of every payment gives the same incidents
            assert group_incidents(every) == await incidents(store)

    run(body)


@pytest.mark.anyio
async def test_the_period_bounds_each_failure_by_when_it_failed() -> None:
    async with open_store(":memory:") as store:
        await simulate(store, SimulationConfig(payments=800, seed=4))
        everything = await incidents(store)
        times = sorted({i.first_failure_at for i in everything})
        middle = times[len(times) // 2]
        before = await incidents(store, until=middle)
        after = await incidents(store, since=middle + timedelta(microseconds=1))

        def ids(found: list[Incident]) -> set[str]:
            return {p for i in found for p in i.payment_ids}

        assert ids(before) | ids(after) == ids(everything)
        assert not ids(before) & ids(after)
        assert all(i.last_failure_at <= middle for i in before)
        assert all(i.first_failure_at > middle for i in after)


@pytest.mark.anyio
async def test_failover_saved_counts_payments_that_met_the_same_cause() -> None:
    """Two payments meet the same outage on huabei: one fails over to bank card and succeeds,
    the other has nowhere to go. One incident, one payment failed, one saved."""
    t = T0
    events: list[ev.Event] = [
        ev.AccountOpened(occurred_at=t, account_id="A1", holder_ref="H"),
        ev.CreditLineOpened(
            occurred_at=t, account_id="A1", product="huabei", limit_minor=10**7, currency="CNY"
        ),
        ev.ChannelStatusChanged(occurred_at=t, channel="huabei", status="down", reason="outage"),
    ]
    for pid, saved in (("P1", True), ("P2", False)):
        events += [
            ev.PaymentRequested(
                occurred_at=t,
                payment_id=pid,
                account_id="A1",
                merchant="zd-auto",
                scenario="car_loan_deposit",
                amount_minor=100_000,
                currency="CNY",
                preferred_channel="huabei",
            ),
            ev.PaymentAttempted(
                occurred_at=t, payment_id=pid, attempt=1, channel="huabei", amount_minor=100_000
            ),
            ev.PaymentDeclined(
                occurred_at=t + timedelta(minutes=1),
                payment_id=pid,
                attempt=1,
                channel="huabei",
                code="channel_unavailable",
                message="down",
            ),
        ]
        if saved:
            events += [
                ev.FailoverTriggered(
                    occurred_at=t,
                    payment_id=pid,
                    from_channel="huabei",
                    to_channel="bank_card",
                    reason="down",
                ),
                ev.PaymentAttempted(
                    occurred_at=t,
                    payment_id=pid,
                    attempt=2,
                    channel="bank_card",
                    amount_minor=100_000,
                ),
                ev.PaymentSettled(
                    occurred_at=t,
                    payment_id=pid,
                    attempt=2,
                    channel="bank_card",
                    amount_minor=100_000,
                ),
            ]
        else:
            events.append(ev.PaymentAbandoned(occurred_at=t, payment_id=pid, reason="gave up"))
    async with open_store(":memory:") as store:
        await load(store, events)
        (incident,) = await incidents(store)
    assert (incident.category, incident.evidence) == ("system", (3,))
    assert incident.payment_ids == ("P2",)
    assert incident.saved_payment_ids == ("P1",)
    assert (incident.saved_by_failover, incident.amount_failed_minor) == (1, {"CNY": 100_000})


def test_the_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "s.db")
    assert main(["--db", db, "simulate", "--payments", "600", "--seed", "2", "--json"]) == 0
    capsys.readouterr()
    assert main(["--db", db, "incidents", "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert lines
    for doc in lines:
        assert set(doc) >= REQUIRED
        assert doc["payments_failed"] == len(doc["payment_ids"])
    assert main(["--db", db, "stats", "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert sum(doc["payments_failed"] for doc in lines) == stats["failed"]
    assert main(["--db", db, "incidents"]) == 0
    out = capsys.readouterr().out
    assert "incidents, by payments failed" in out
    assert f"{stats['failed']} failed payments in {len(lines)} incidents" in out
