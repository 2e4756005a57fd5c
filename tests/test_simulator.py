"""The simulator: deterministic for a seed, failover saves the payments an outage would have
failed (and none that policy or credit forbid), and ``explain`` agrees with the injected cause of
every failed payment (the project's end-to-end test)."""

from __future__ import annotations

from pathlib import Path

import anyio
import msgspec
import pytest

from gateway.simulator import SimulationConfig, SimulationReport, simulate
from ledger import EventStore, open_store
from ledger.events import ChannelStatusChanged
from projections import payment_at
from replay import explain, explain_failed
from replay.cli import main

pytestmark = pytest.mark.anyio

SEED = 0
PAYMENTS = 1000


async def snapshot(store: EventStore) -> dict[tuple[str, int], bytes]:
    """Every event by (stream, version), without event ids, positions or recorded_at."""
    return {
        (r.stream, r.version): msgspec.json.encode(r.event) + (r.correlation_id or "").encode()
        async for r in store.read_all()
    }


async def test_same_seed_same_events() -> None:
    config = SimulationConfig(payments=300, seed=7, concurrency=16)
    snapshots = []
    reports = []
    for _ in range(2):
        async with open_store(":memory:") as store:
            reports.append(await simulate(store, config))
            snapshots.append(await snapshot(store))
    assert snapshots[0] == snapshots[1]
    assert reports[0].truth == reports[1].truth
    assert reports[0].outcomes == reports[1].outcomes
    assert reports[0].payments == 300
    async with open_store(":memory:") as store:
        other = await simulate(store, SimulationConfig(payments=300, seed=8, concurrency=16))
        assert await snapshot(store) != snapshots[0]
    assert other.payments == 300


async def run(store: EventStore, *, failover: bool) -> SimulationReport:
    return await simulate(store, SimulationConfig(payments=PAYMENTS, seed=SEED, failover=failover))


async def check_explanations(store: EventStore, report: SimulationReport) -> None:
    failed = {pid for pid, status in report.outcomes.items() if status == "failed"}
    assert {t.payment_id for t in report.truth} == failed
    for truth in report.truth:
        explanation = await explain(store, truth.payment_id)
        assert explanation.outcome == "failed"
        assert explanation.root_cause is not None
        assert (truth.payment_id, explanation.root_cause.category) == (
            truth.payment_id,
            truth.category,
        )
    for pid, status in report.outcomes.items():
        state = await payment_at(store, pid)
        assert state is not None
        assert state.outcome == status


async def test_failover_saves_outages_and_explain_agrees_with_the_truth(tmp_path: Path) -> None:
    async with open_store(tmp_path / "failover.db") as store:
        with_failover = await run(store, failover=True)
        await check_explanations(store, with_failover)
        assert (await store.verify()).ok
        health = [
            r.event
            async for r in store.query(types=["ChannelStatusChanged"])
            if isinstance(r.event, ChannelStatusChanged)
            and r.event.reason.startswith("failure rate")
        ]
        assert [e.status for e in health] == ["degraded", "up"]  # the monitor caught an outage
    async with open_store(":memory:") as store:
        without = await run(store, failover=False)
        await check_explanations(store, without)
    assert with_failover.payments == without.payments == PAYMENTS
    failed = {t.payment_id: t.category for t in with_failover.truth}
    failed_without = {t.payment_id: t.category for t in without.truth}
    saved = set(failed_without) - set(failed)
    # failover saves payments, and every one it saves had failed on a system cause
    assert saved
    assert {failed_without[pid] for pid in saved} == {"system"}
    assert with_failover.failed_by_category.get("system", 0) < without.failed_by_category["system"]
    # ... and none that policy or credit forbid: those fail alike, for the same reason
    forbidden = {pid for pid, c in failed_without.items() if c in ("credit", "channel_policy")}
    assert forbidden
    assert {pid for pid, c in failed.items() if c in ("credit", "channel_policy")} == forbidden
    for category in ("credit", "channel_policy"):
        assert with_failover.failed_by_category[category] == without.failed_by_category[category]
    # failover never fails a payment that would have succeeded without it
    assert set(failed) <= set(failed_without)
    # every category the simulator injects shows up
    assert set(with_failover.failed_by_category) >= {"system", "user_action", "credit"}


async def test_concurrency_exercises_the_group_commit(tmp_path: Path) -> None:
    async with open_store(tmp_path / "l.db") as store:
        report = await simulate(store, SimulationConfig(payments=256, seed=3, concurrency=64))
        assert report.events == await store.head()
        assert (await store.verify()).ok
    assert report.succeeded + report.failed == 256


def test_the_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "sim.db"
    truth = tmp_path / "truth.jsonl"
    args = ["--db", str(db), "simulate", "--payments", "200", "--seed", "5"]
    assert main([*args, "--truth", str(truth), "--json"]) == 0
    summary = msgspec.json.decode(capsys.readouterr().out)
    lines = [msgspec.json.decode(line) for line in truth.read_text().splitlines()]
    assert len(lines) == summary["failed"]
    assert summary["payments"] == 200
    assert all(set(line) == {"payment_id", "category"} for line in lines)

    async def categories() -> list[str]:
        async with open_store(db, readonly=True) as store:
            return [
                (await explain(store, line["payment_id"])).root_cause.category  # type: ignore[union-attr]
                for line in lines
            ]

    assert anyio.run(categories) == [line["category"] for line in lines]
    # a store with events is refused
    assert main(args) == 2
    assert "empty store" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["--db", str(tmp_path / "x.db"), "simulate", "--payments", "-1"])
    assert exit_info.value.code == 2


@pytest.mark.parametrize(
    ("seed", "payments", "failover"),
    [(1, 150, True), (2, 700, False), (5, 400, True), (11, 1000, True), (23, 260, False)],
)
async def test_explain_agrees_with_the_truth_for_other_seeds_and_sizes(
    seed: int, payments: int, failover: bool
) -> None:
    """The simulator injects causes by CONTRACT section 7; for every failed payment, one
    explain and the batch pass find exactly the injected category."""
    async with open_store(":memory:") as store:
        report = await simulate(
            store, SimulationConfig(payments=payments, seed=seed, failover=failover)
        )
        await check_explanations(store, report)
        truth = {t.payment_id: t.category for t in report.truth}
        batch = {
            e.payment_id: (e.root_cause.category if e.root_cause else None)
            async for e in explain_failed(store)
        }
        assert batch == truth
