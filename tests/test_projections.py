"""The projections: pure reducers (rebuild from scratch equals incremental application, the
double-entry invariant, ``used`` agrees with the receivables), time travel against a fresh fold,
the persisted projections (catch-up, crash between append and projection update, rebuild,
another projector), the subscription, unknown event types and upcasters, and the CLI's
``state`` and ``rebuild``."""

from __future__ import annotations

import json
import random
import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, Final

import anyio
import anyio.lowlevel
import msgspec
import pytest
from backends import Backend
from hypothesis import given, settings
from hypothesis import strategies as st
from logs import _OP_MERCHANTS as MERCHANTS
from logs import CHANNELS, OPS, T0, build, records_of, run

from ledger import EventStore, open_store
from ledger.errors import LedgerError, UnknownEventTypeError
from ledger.events import (
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
    stream_of,
)
from ledger.merkle import Frontier
from ledger.states import StateRow
from ledger.store import chain_hash
from ledger.tree import TREE_THRESHOLD
from projections import (
    Projector,
    World,
    account_at,
    channel_at,
    fold,
    open_projections,
    payment_at,
    policy_at,
    policy_for,
    subscribe,
)
from projections import projector as projector_module
from projections.check import check_projections
from projections.rows import NAME
from projections.working import Working
from replay.cli import main as cli


async def append_all(store: EventStore, events: Sequence[Event]) -> None:
    for event in events:
        await store.append(stream_of(event), [event])


def check_invariants(world: World) -> None:
    """Double entry balances; ``used`` is the receivable; ``held`` is the open holds."""
    for currency, totals in world.totals.items():
        assert totals.debit_minor == totals.credit_minor, currency
    debits = sum(b.debit_minor for b in world.balances.values())
    credits = sum(b.credit_minor for b in world.balances.values())
    assert debits == credits
    for aid, f in world.accounts.items():
        for product, line in f.state.credit.items():
            receivable = world.receivable(aid, product, line.currency)
            assert line.used_minor == receivable, (aid, product)
            assert line.used_minor >= 0
            assert line.held_minor == sum(
                h.amount_minor for h in f.holds.values() if h.product == product
            )
            assert line.available_minor == max(
                0, line.limit_minor - line.used_minor - line.held_minor
            )
    for key, balance in world.balances.items():
        if key[0].startswith("receivable:"):
            assert balance.balance_minor >= 0


def same_world(a: World, b: World) -> None:
    assert a.accounts == b.accounts
    assert a.payments == b.payments
    assert a.channels == b.channels
    assert a.policies == b.policies
    assert a.balances == b.balances
    assert a.totals == b.totals


def at(state: Any, position: int) -> Any:
    return None if state is None else msgspec.structs.replace(state, position=position)


# --- pure reducers ---------------------------------------------------------------------------


@settings(max_examples=60)
@given(OPS)
def test_incremental_equals_rebuild_at_every_prefix_and_invariants_hold(
    ops: list[tuple[int, int]],
) -> None:
    records = records_of(build(ops))
    live = World()
    for n, record in enumerate(records, start=1):
        live.apply(record)
        check_invariants(live)
        same_world(live, fold(records[:n]))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_long_sequences_keep_the_invariants(seed: int) -> None:
    """Hundreds of events: many payments settle, fail over, get repaid or abandoned."""
    rng = random.Random(seed)
    records = records_of(build([(rng.randrange(20), rng.randrange(10_000)) for _ in range(600)]))
    live = World()
    for n, record in enumerate(records, start=1):
        live.apply(record)
        check_invariants(live)
        if n % 97 == 0:
            same_world(live, fold(records[:n]))
    lines = [line for f in live.accounts.values() for line in f.state.credit.values()]
    assert any(line.used_minor > 0 for line in lines)
    assert sum(p.outcome == "succeeded" for p in live.payments.values()) > 3
    assert sum(p.outcome == "failed" for p in live.payments.values()) > 3


def test_credit_line_arithmetic() -> None:
    """Hold on authorization, used on settlement, released on abandonment, repaid; each
    shortfall cites the event that took availability below the amount (rules 7.3, 7.5)."""
    events = build([(0, 0), (1, 0)])  # A1 with huabei, limit 100_000
    t = T0 + timedelta(days=1)

    def request(pid: str, amount: int) -> list[Event]:
        return [
            PaymentRequested(
                occurred_at=t,
                payment_id=pid,
                account_id="A1",
                merchant="zd-auto",
                scenario="car_loan_deposit",
                amount_minor=amount,
                currency="CNY",
                preferred_channel="huabei",
            ),
            PaymentAuthorized(
                occurred_at=t,
                payment_id=pid,
                attempt=1,
                channel="huabei",
                amount_minor=amount,
                auth_ref="r",
            ),
        ]

    events += request("P1", 30_000)
    events += request("P2", 20_000)
    world = fold(records_of(events))
    line = world.accounts["A1"].state.credit["huabei"]
    assert (line.used_minor, line.held_minor, line.available_minor) == (0, 50_000, 50_000)
    assert line.shortfall_position(50_001) == 6  # P2's hold took it below 50,000.01
    assert line.shortfall_position(80_001) == 4  # P1's hold took 100,000 down to 70,000
    events += [
        PaymentSettled(
            occurred_at=t, payment_id="P1", attempt=1, channel="huabei", amount_minor=30_000
        ),
        PaymentAbandoned(occurred_at=t, payment_id="P2", reason="left"),
        RepaymentOverdue(
            occurred_at=t, account_id="A1", product="huabei", overdue_minor=5000, days_overdue=3
        ),
        RepaymentMade(occurred_at=t, account_id="A1", product="huabei", amount_minor=8000),
    ]
    world = fold(records_of(events))
    line = world.accounts["A1"].state.credit["huabei"]
    assert (line.used_minor, line.held_minor, line.overdue_minor) == (22_000, 0, 0)
    assert line.overdue_position is None
    assert line.shortfall_position(78_001) == 7  # P1's hold, cited by its settlement
    assert world.payments["P1"].outcome == "succeeded"
    assert world.payments["P2"].outcome == "failed"
    assert world.receivable("A1", "huabei", "CNY") == 22_000
    assert world.balances[("payable:zd-auto", "CNY")].balance_minor == -30_000
    check_invariants(world)
    # an overpayment goes to its own account; used never drops below zero
    events.append(
        RepaymentMade(occurred_at=t, account_id="A1", product="huabei", amount_minor=25_000)
    )
    world = fold(records_of(events))
    assert world.accounts["A1"].state.credit["huabei"].used_minor == 0
    assert world.balances[("overpaid:A1:huabei", "CNY")].balance_minor == -3_000
    check_invariants(world)


def test_payment_outcome_rules() -> None:
    ops = [(0, 0), (9, 0)]  # P1 on huabei
    events = build(ops)
    t = T0 + timedelta(days=1)
    declined = PaymentDeclined(
        occurred_at=t, payment_id="P1", attempt=1, channel="huabei", code="unknown", message="m"
    )
    attempted = PaymentAttempted(
        occurred_at=t, payment_id="P1", attempt=1, channel="huabei", amount_minor=1000
    )
    world = fold(records_of([*events, attempted]))
    assert world.payments["P1"].outcome == "pending"
    world = fold(records_of([*events, attempted, declined]))
    assert world.payments["P1"].outcome == "failed"
    assert world.payments["P1"].attempts[0].code == "unknown"
    failover = FailoverTriggered(
        occurred_at=t, payment_id="P1", from_channel="huabei", to_channel="bank_card", reason="r"
    )
    world = fold(records_of([*events, attempted, declined, failover]))
    assert world.payments["P1"].outcome == "pending"
    settled = PaymentSettled(
        occurred_at=t, payment_id="P1", attempt=2, channel="bank_card", amount_minor=1000
    )
    world = fold(records_of([*events, attempted, declined, failover, settled]))
    payment = world.payments["P1"]
    assert payment.outcome == "succeeded"
    assert [a.channel for a in payment.attempts] == ["huabei", "bank_card"]
    assert world.balances[("clearing:bank_card", "CNY")].balance_minor == 1000
    check_invariants(world)


# --- time travel -----------------------------------------------------------------------------


TIME_TRAVEL_EXAMPLES: Final = {"memory": 25, "sqlite": 25, "postgres": 6}
PERSISTED_EXAMPLES: Final = {"memory": 20, "sqlite": 20, "postgres": 8}


def test_time_travel_equals_a_fresh_fold_of_the_first_n_events(backend: Backend) -> None:
    @settings(max_examples=TIME_TRAVEL_EXAMPLES[backend.kind])
    @given(OPS, st.integers(0, 100))
    def check(ops: list[tuple[int, int]], split: int) -> None:
        run(lambda: _time_travel(backend, ops, split))

    check()


async def _time_travel(backend: Backend, ops: list[tuple[int, int]], split: int) -> None:
    events = build(ops)
    records = records_of(events)
    async with backend.store(durability="normal") as store:
        await append_all(store, events)
        head = len(events)
        # persisted projections part of the way: time travel must not read them
        async with Projector.open(store) as projector:
            await projector.catch_up(to_position=split % (head + 1))
        accounts = [*sorted({getattr(e, "account_id", "") for e in events} - {""}), "nobody"]
        payments = sorted({getattr(e, "payment_id", "") for e in events} - {""})
        for n in sorted({0, 1, head // 3, head // 2, head - 1, head, split % (head + 1)}):
            if n < 0:
                continue
            expected = fold(records[:n])
            for aid in accounts:
                assert await account_at(store, aid, position=n) == at(expected.account(aid), n)
            for pid in payments:
                assert await payment_at(store, pid, position=n) == at(expected.payment(pid), n)
            for channel in CHANNELS:
                assert await channel_at(store, channel, position=n) == at(
                    expected.channel(channel), n
                )
            for merchant in MERCHANTS:
                assert await policy_at(store, merchant, position=n) == at(
                    expected.policy(merchant), n
                )
        # one scenario's rule, from the store's index of the policy stream, at any bound in
        # any order (the index grows as later bounds are asked for)
        bounds = sorted({0, 1, head // 3, head // 2, head - 1, head, split % (head + 1)})
        for n in [*reversed(bounds), *bounds, head + 5]:
            expected = fold(records[: max(0, n)])
            for merchant in MERCHANTS:
                rules = expected.policy(merchant).rules
                for scenario in ("car_loan_down_payment", "car_loan_deposit", "retail"):
                    found = await policy_for(store, merchant, scenario, position=n)
                    assert found.position == min(max(0, n), head)
                    assert found.rules == ({scenario: rules[scenario]} if scenario in rules else {})
        # as_of bounds by occurred_at (minute n-1 after T0 is event n)
        n = max(1, head // 2)
        moment = T0 + timedelta(minutes=n - 1, seconds=30)
        expected = fold(records[:n])
        for aid in accounts:
            assert await account_at(store, aid, as_of=moment) == at(expected.account(aid), n)


@pytest.mark.anyio
async def test_account_at_without_projection_tables(backend: Backend) -> None:
    events = build([(0, 1), (1, 0), (9, 0), (10, 2), (10, 2), (10, 0), (5, 400), (9, 1), (10, 2)])
    records = records_of(events)
    expected = fold(records).account("A1")
    assert expected is not None
    assert expected.credit["huabei"].used_minor > 0
    async with backend.store() as store:
        await append_all(store, events)
        assert await account_at(store, "A1") == at(expected, len(events))
        assert await account_at(store, "A1", position=3) == at(fold(records[:3]).account("A1"), 3)
        assert await account_at(store, "A9") is None
        assert await account_at(store, "A1", as_of=T0 - timedelta(days=1)) is None


# --- persisted projections -------------------------------------------------------------------


def test_persisted_projection_after_catch_up_equals_the_pure_fold(backend: Backend) -> None:
    @settings(max_examples=PERSISTED_EXAMPLES[backend.kind])
    @given(OPS, st.integers(1, 7))
    def check(ops: list[tuple[int, int]], batch: int) -> None:
        run(lambda: _persisted(backend, ops, batch))

    check()


async def _persisted(backend: Backend, ops: list[tuple[int, int]], batch: int) -> None:
    events = build(ops)
    async with backend.place() as place:
        async with place.open(durability="normal") as store:
            half = len(events) // 2
            await append_all(store, events[:half])
            async with Projector.open(store) as projector:
                await projector.catch_up(batch_size=batch)
        async with place.open(durability="normal") as store:  # another process, say
            await append_all(store, events[half:])
            async with Projector.open(store) as projector:  # a fresh one: loads what it needs
                assert await projector.catch_up(batch_size=batch) == len(events)
                persisted = await projector.load_world()
                same_world(persisted, fold(records_of(events)))
                check_invariants(persisted)
                await check_payment_rows(store, persisted)
                assert (await check_projections(store)).ok
                result = await projector.rebuild()
                assert result.events == len(events)
                rebuilt = await projector.load_world()
                same_world(rebuilt, fold(records_of(events)))
                await check_payment_rows(store, rebuilt)
                assert (await check_projections(store)).ok


async def check_payment_rows(store: EventStore, world: World) -> None:
    """One ``payment`` row per payment, its summary agreeing with its state."""
    rows = []
    async for page in store.states.scan(NAME, "payment"):
        for row in page:
            doc = json.loads(row.summary)
            rows.append(
                (
                    row.key,
                    doc["account_id"],
                    doc["merchant"],
                    doc["scenario"],
                    doc["channel"],
                    doc["outcome"],
                    doc["amount_minor"],
                    doc["currency"],
                    doc["requested_position"],
                    row.position,
                )
            )
            assert row.group == doc["account_id"]
    expected = [
        (
            p.payment_id,
            p.account_id,
            p.merchant,
            p.scenario,
            p.attempts[-1].channel if p.attempts else p.preferred_channel,
            p.outcome,
            p.amount_minor,
            p.currency,
            p.requested_position,
            p.position,
        )
        for p in world.payments.values()
    ]
    assert sorted(rows) == sorted(expected)


@pytest.mark.anyio
async def test_rebuild_stops_at_an_unknown_type_while_the_next_pages_are_being_read(
    tmp_path: Path,
) -> None:
    events = build([(0, 0), (1, 0), (9, 0), (10, 2), (10, 2), (10, 0), (5, 9)] * 3)
    path = tmp_path / "ledger.db"
    async with open_store(path) as store:
        await append_all(store, events)
    bad = _raw_append(path, "payment-P1", "PaymentRefunded", 1, {"payment_id": "P1"})
    async with open_store(path) as store:
        later = build([(0, 0), (0, 1)] * 10)[1:]
        for event in later:
            await store.append(stream_of(event), [event])
        async with Projector.open(store) as projector:
            seen: list[tuple[int, int]] = []
            with pytest.raises(UnknownEventTypeError) as info:
                await projector.rebuild(lambda done, total: seen.append((done, total)))
            assert info.value.position == bad
            assert await projector.checkpoint() == bad - 1
            assert seen[0] == (0, bad + len(later))
            assert [done for done, _ in seen] == sorted(done for done, _ in seen)
            assert seen[-1][0] == bad - 1
            world = await projector.load_world()
            same_world(world, fold(records_of(events)))
            await check_payment_rows(store, world)
            with pytest.raises(UnknownEventTypeError):
                await projector.catch_up()  # it stays stopped there
            assert await projector.checkpoint() == bad - 1


@pytest.mark.anyio
async def test_rebuild_reports_an_undecodable_row_as_it_is_and_writes_nothing(
    tmp_path: Path,
) -> None:
    events = build([(0, 0), (1, 0), (9, 0), (10, 2), (10, 2), (10, 0), (5, 9)] * 3)
    path = tmp_path / "ledger.db"
    async with open_store(path) as store:
        await append_all(store, events)
        async with Projector.open(store) as projector:
            await projector.catch_up()
    bad = _raw_append(path, "payment-P9", "PaymentRequested", 1, {"payment_id": "P9"})
    async with open_store(path) as store:
        for event in build([(0, 0), (0, 1)] * 10)[1:]:
            await store.append(stream_of(event), [event])
        async with Projector.open(store) as projector:
            with pytest.raises(LedgerError, match=f"position {bad}: stored PaymentRequested"):
                await projector.rebuild()  # a plain LedgerError, not a group
            assert await projector.checkpoint() == len(events)  # the old rows stand
            same_world(await projector.load_world(), fold(records_of(events)))


@pytest.mark.anyio
async def test_crash_between_append_and_projection_update_is_repaired_on_reopen(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = build([(0, 0), (1, 0), (9, 0), (10, 2), (10, 2), (10, 0), (9, 5), (10, 2)] * 3)
    third = len(events) // 3
    async with backend.place() as place:
        async with place.open() as store:
            await append_all(store, events[:third])
            async with Projector.open(store) as projector:
                await projector.catch_up()
            # appended, then the process "dies" before the projection update
            await append_all(store, events[third : 2 * third])
        async with place.open() as store, Projector.open(store) as projector:
            if place.kind == "memory":  # nothing for a dictionary to refuse: the commit dies
                states: Any = store.states
                commit = states.commit

                async def dying_commit(*args: Any, **kwargs: Any) -> bool:
                    raise LedgerError("derived state: the process died")

                monkeypatch.setattr(states, "commit", dying_commit)
            else:
                # the projection update dies half way, after writing rows: its transaction
                # leaves nothing (a row the database refuses ends it)
                real = projector_module.written_rows

                def dying(world: Working, *, dirty_only: bool = True) -> list[StateRow]:
                    rows = real(world, dirty_only=dirty_only)
                    poison = StateRow("zz", "poison", None, 0, "{}", b"")  # type: ignore[arg-type]
                    return [*rows, poison]

                monkeypatch.setattr(projector_module, "written_rows", dying)
            with pytest.raises(LedgerError, match="derived state"):
                await projector.catch_up(batch_size=3)
            assert await projector.checkpoint() == third
            monkeypatch.undo()
            await append_all(store, events[2 * third :])
            # the same projector retries: its cache ran ahead, so it must apply nothing twice
            assert await projector.catch_up(batch_size=3) == len(events)
            same_world(await projector.load_world(), fold(records_of(events)))
            assert (await check_projections(store)).ok
        async with place.open() as store, Projector.open(store) as projector:
            assert await projector.catch_up() == len(events)  # nothing left to do
            same_world(await projector.load_world(), fold(records_of(events)))
        if place.kind == "memory":
            assert commit is not None


@pytest.mark.anyio
async def test_projection_rows_of_another_version_are_ignored_then_rebuilt(
    backend: Backend,
) -> None:
    events = build([(0, 0), (1, 0), (9, 0), (10, 2), (10, 2), (10, 0), (5, 9)] * 2)
    expected = fold(records_of(events))
    async with backend.place() as place:
        async with place.open() as store:
            await append_all(store, events)
            async with Projector.open(store) as projector:
                await projector.catch_up()
            # a future payledger's rows, unreadable here, at the same checkpoint
            states = store.states
            cp = await states.checkpoint(NAME)
            future = [
                msgspec.structs.replace(row, state=b"\x00")
                async for page in states.scan(NAME, "account")
                for row in page
            ]
            assert future
            assert await states.commit(
                NAME, future, position=cp.position, version=99, expected=cp.position
            )
        async with place.open(readonly=True) as store:
            assert await account_at(store, "A1") == at(expected.account("A1"), len(events))
            report = await check_projections(store)
            assert report.ok  # ignored, not trusted
            assert report.reason is not None
            assert "version 99" in report.reason
        async with place.open() as store, Projector.open(store) as projector:
            assert await projector.checkpoint() == 0  # ignored until folded again
            assert await projector.catch_up() == len(events)
            same_world(await projector.load_world(), expected)
            assert (await check_projections(store)).ok
            assert (await store.states.checkpoint(NAME)).version != 99


@pytest.mark.anyio
async def test_two_projectors_on_one_store_never_apply_an_event_twice(backend: Backend) -> None:
    events = build([(0, 0), (1, 0), (9, 0), (10, 2), (10, 2), (10, 0), (5, 77)] * 4)
    async with backend.place() as place, place.open() as first, place.open() as second:
        async with Projector.open(first) as one, Projector.open(second) as two:
            for i, event in enumerate(events):
                await first.append(stream_of(event), [event])
                await (one if i % 3 else two).catch_up(batch_size=2)
            await one.catch_up()
            await two.catch_up()
            same_world(await two.load_world(), fold(records_of(events)))
            same_world(await one.load_world(), fold(records_of(events)))
        assert (await check_projections(second)).ok


@pytest.mark.anyio
async def test_two_projectors_racing_for_one_checkpoint(backend: Backend) -> None:
    """Two projectors (two store objects: two processes, say) catch up from the same checkpoint
    at once, each from two tasks: one commit wins, the other writes nothing and starts again
    from the winner's checkpoint; one projector's tasks take turns (they share its cache)."""
    events = build([(0, 0), (1, 0), (9, 0), (10, 2), (10, 2), (10, 0), (5, 77)] * 4)
    async with backend.place() as place, place.open() as first, place.open() as second:
        await append_all(first, events)
        async with Projector.open(first) as one, Projector.open(second) as two:
            async with anyio.create_task_group() as tg:
                for projector in (one, two, one, two):
                    tg.start_soon(partial(projector.catch_up, batch_size=3))
            assert await one.checkpoint() == len(events)
            same_world(await two.load_world(), fold(records_of(events)))
        assert (await check_projections(first)).ok


@pytest.mark.anyio
async def test_follow_keeps_up_with_appends_from_another_store_object(backend: Backend) -> None:
    events = build([(0, 0), (1, 0), (9, 0), (10, 2), (10, 2), (10, 0)] * 3)
    async with backend.place() as place, place.open() as writer, place.open() as reader:
        await append_all(writer, events[:5])
        async with Projector.open(reader) as projector, anyio.create_task_group() as tg:
            tg.start_soon(projector.follow)
            await append_all(writer, events[5:])  # another store object: polled or notified
            with anyio.fail_after(10):
                while await projector.checkpoint() < len(events):  # noqa: ASYNC110
                    await anyio.sleep(0.01)  # the projector is another connection: poll it
            tg.cancel_scope.cancel()
        async with Projector.open(reader) as projector:
            same_world(await projector.load_world(), fold(records_of(events)))


@pytest.mark.anyio
async def test_check_names_a_row_edited_behind_the_stores_back(backend: Backend) -> None:
    """``projections.check`` folds the log and names the first row that differs, whichever
    column was edited: a summary (what users query), a state (what the projector resumes from),
    a payment moved to another account's group."""
    events = build([(0, 0), (1, 0), (9, 0), (10, 2), (10, 2), (10, 0), (5, 9), (9, 1)] * 2)
    edits: list[tuple[str, str, dict[str, Any], str]] = [
        ("account", "A1", {"summary": '{"holder_ref":"h","score":850,"credit":{}}'}, "summary"),
        ("account", "A1", {"state": b"\x91\x00"}, "state"),
        ("payment", "P1", {"group": "A2"}, "group"),
    ]
    for kind, key, change, field in edits:
        async with backend.place() as place:
            async with place.open() as store:
                await append_all(store, events)
                async with Projector.open(store) as projector:
                    await projector.catch_up()
                good = await check_projections(store)
                assert good.ok
                assert good.rows > 5
            await place.edit_row(NAME, kind, key, **change)
            async with place.open(readonly=True) as store:
                report = await check_projections(store)
                assert not report.ok
                assert (report.kind, report.key) == (kind, key)
                assert report.reason == f"its {field} differ from the log's fold"
                assert report.rows < good.rows
            async with place.open() as store, Projector.open(store) as projector:
                await projector.rebuild()
                assert (await check_projections(store)).ok


@pytest.mark.anyio
async def test_open_projections_follows_appends_and_reports_an_unknown_type(
    tmp_path: Path,
) -> None:
    events = build([(0, 0), (1, 0), (9, 0), (10, 2), (10, 2), (10, 0), (5, 9)] * 2)
    path = tmp_path / "ledger.db"
    async with open_store(path) as store:
        await append_all(store, events[:3])
        async with open_projections(store) as projector:
            await append_all(store, events[3:])
            with anyio.fail_after(10):
                while await projector.checkpoint() < len(events):  # noqa: ASYNC110
                    await anyio.sleep(0.01)
            same_world(await projector.load_world(), fold(records_of(events)))
            assert projector.error is None
    bad = _raw_append(path, "payment-P1", "PaymentRefunded", 1, {"payment_id": "P1"})
    async with open_store(path) as store, open_projections(store) as projector:
        assert projector.error is not None
        assert projector.error.position == bad
        assert await projector.checkpoint() == bad - 1


# --- subscription ----------------------------------------------------------------------------


@pytest.mark.anyio
async def test_subscribe_yields_every_event_once_including_those_appended_while_waiting(
    tmp_path: Path,
) -> None:
    events = build([(0, 0), (1, 0), (9, 0), (10, 2), (10, 2), (7, 5)] * 3)
    path = tmp_path / "ledger.db"
    seen: list[int] = []
    async with open_store(path) as store, open_store(path, readonly=True) as other:
        await append_all(store, events[:4])

        async def consume(source: EventStore, into: list[int], start: int) -> None:
            async for record in subscribe(source, from_position=start, page_size=3):
                into.append(record.position)
                if record.position == len(events):
                    return

        seen_other: list[int] = []
        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                tg.start_soon(consume, store, seen, 1)
                tg.start_soon(consume, other, seen_other, 3)
                await anyio.sleep(0.05)
                for event in events[4:]:
                    await store.append(stream_of(event), [event])
                    await anyio.lowlevel.checkpoint()
    assert seen == list(range(1, len(events) + 1))
    assert seen_other == list(range(3, len(events) + 1))


# --- schema evolution ------------------------------------------------------------------------


def _raw_append(path: Path, stream: str, type_name: str, schema: int, data: dict[str, Any]) -> int:
    """Write an event row the way an older or newer payledger would have (a raw insert)."""
    with sqlite3.connect(path) as conn:
        position, prev = conn.execute("SELECT position, hash FROM ledger_head").fetchone()
        conn.execute("INSERT OR IGNORE INTO streams (name) VALUES (?)", (stream,))
        (number,) = conn.execute("SELECT id FROM streams WHERE name = ?", (stream,)).fetchone()
        version = conn.execute(
            "SELECT coalesce(max(version), 0) FROM events WHERE stream_no = ?", (number,)
        ).fetchone()[0]
        position += 1
        payload = json.dumps({"type": type_name, **data})
        occurred = int((T0 - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds() * 1_000_000)
        eid = f"00000000-0000-4000-8000-{position:012d}"
        digest = chain_hash(
            prev, position, stream, version + 1, eid, None, None, occurred, schema, payload
        )
        conn.execute(
            "INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, ?, ?, ?)",
            (
                position,
                stream,
                version + 1,
                type_name,
                schema,
                occurred,
                occurred,
                eid,
                payload,
                digest,
                number,
            ),
        )
        (kept,) = conn.execute("SELECT frontier FROM ledger_head").fetchone()
        frontier = Frontier.from_bytes(kept)
        for node, node_hash in frontier.append([digest], threshold=TREE_THRESHOLD):
            conn.execute(
                "INSERT INTO ledger_tree VALUES (?, ?, ?)", (node.level, node.index, node_hash)
            )
        conn.execute(
            "UPDATE ledger_head SET position = ?, hash = ?, frontier = ? WHERE id = 1",
            (position, digest, frontier.to_bytes()),
        )
    conn.close()
    return int(position)


@pytest.mark.anyio
async def test_an_unknown_event_type_is_reported_and_the_checkpoint_stops_before_it(
    tmp_path: Path,
) -> None:
    events = build([(0, 0), (1, 0), (9, 0), (10, 2)])
    path = tmp_path / "ledger.db"
    async with open_store(path) as store:
        await append_all(store, events)
    bad = _raw_append(
        path, "payment-P1", "PaymentRefunded", 1, {"payment_id": "P1", "amount_minor": 5}
    )
    async with open_store(path) as store:
        later = build([(0, 0), (0, 1)])[1:]
        await store.append("account-A2", later)
        async with Projector.open(store) as projector:
            with pytest.raises(UnknownEventTypeError) as info:
                await projector.catch_up(batch_size=100)
            assert info.value.position == bad
            assert info.value.type_name == "PaymentRefunded"
            assert await projector.checkpoint() == bad - 1
            with pytest.raises(UnknownEventTypeError):
                await projector.catch_up()
            assert await projector.checkpoint() == bad - 1
            same_world(await projector.load_world(), fold(records_of(events)))
            with pytest.raises(UnknownEventTypeError):
                await projector.rebuild()
            assert await projector.checkpoint() == bad - 1
        with pytest.raises(UnknownEventTypeError):
            await payment_at(store, "P1")
        assert await payment_at(store, "P1", position=bad - 1) is not None


@pytest.mark.anyio
async def test_an_upcaster_turns_an_old_stored_shape_into_the_current_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """RepaymentMade at (test-only) schema version 2; version 1 named the amount ``amount``."""
    import ledger.events
    import ledger.rows

    monkeypatch.setattr(RepaymentMade, "schema_version", 2)
    monkeypatch.setitem(ledger.rows._CURRENT_SCHEMA, "RepaymentMade", 2)
    monkeypatch.setattr(ledger.events, "_UPCASTERS", dict(ledger.events._UPCASTERS))

    def v1_to_v2(payload: dict[str, Any]) -> dict[str, Any]:
        payload = dict(payload)
        payload["amount_minor"] = payload.pop("amount")
        return payload

    ledger.events.register_upcaster("RepaymentMade", 1, v1_to_v2)
    events = build([(0, 0), (1, 0), (9, 0), (10, 2), (10, 2), (10, 0)])
    path = tmp_path / "ledger.db"
    async with open_store(path) as store:
        await append_all(store, events)
    position = _raw_append(
        path,
        "account-A1",
        "RepaymentMade",
        1,
        {
            "occurred_at": "2026-03-01T09:00:00Z",
            "account_id": "A1",
            "product": "huabei",
            "amount": 400,
        },
    )
    async with open_store(path) as store:
        (record,) = [r async for r in store.read_all(from_position=position)]
        assert isinstance(record.event, RepaymentMade)
        assert record.event.amount_minor == 400
        before = await account_at(store, "A1", position=position - 1)
        after = await account_at(store, "A1", position=position)
        assert before is not None
        assert after is not None
        used = before.credit["huabei"].used_minor
        assert used > 400
        assert after.credit["huabei"].used_minor == used - 400
        async with Projector.open(store) as projector:
            assert await projector.catch_up() == position
            world = await projector.load_world()
            assert world.accounts["A1"].state.credit["huabei"].used_minor == used - 400
            check_invariants(world)


# --- the command line ------------------------------------------------------------------------


@pytest.mark.anyio
async def test_cli_state_and_rebuild(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    events = build([(0, 0), (1, 0), (9, 0), (10, 2), (10, 2), (10, 0), (6, 720), (4, 7)])
    path = tmp_path / "ledger.db"
    async with open_store(path) as store:
        await append_all(store, events)
    expected = fold(records_of(events)).account("A1")
    assert expected is not None
    db = str(path)

    def run(*argv: str) -> tuple[int, str, str]:
        code = cli(["--db", db, *argv])
        out, err = capsys.readouterr()
        return code, out, err

    code, out, _ = await anyio.to_thread.run_sync(run, "state", "--account", "A1", "--json")
    assert code == 0
    doc = json.loads(out)
    line = expected.credit["huabei"]
    assert doc == {
        "account_id": "A1",
        "position": len(events),
        "score": 720,
        "credit": {
            "huabei": {
                "status": line.status,
                "limit_minor": line.limit_minor,
                "used_minor": line.used_minor,
                "held_minor": line.held_minor,
                "available_minor": line.available_minor,
                "overdue_minor": line.overdue_minor,
                "currency": line.currency,
            }
        },
    }
    code, out, _ = await anyio.to_thread.run_sync(run, "state", "--account", "A1", "--at", "2")
    assert code == 0
    assert "A1" in out
    assert "huabei" in out
    code, out, _ = await anyio.to_thread.run_sync(
        run, "state", "--account", "A1", "--as-of", "2026-03-01T09:01:00Z", "--json"
    )
    assert json.loads(out)["position"] == 2
    code, _, err = await anyio.to_thread.run_sync(run, "state", "--account", "ZZ")
    assert code == 1
    assert "ZZ" in err
    code, out, _ = await anyio.to_thread.run_sync(run, "rebuild", "--json")
    assert code == 0
    assert json.loads(out)["events"] == len(events)
    code, out, _ = await anyio.to_thread.run_sync(run, "rebuild")
    assert code == 0
    assert f"{len(events)} events" in out
    async with open_store(path, readonly=True) as store:
        assert await store.head() == len(events)  # rebuild wrote projections, never events
        assert (await store.verify()).ok
        async with Projector.open(store) as projector:
            assert await projector.checkpoint() == len(events)


def test_verify_names_an_edited_projection_row(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A projection row edited behind the store's back (a payment moved to another account) is
    a finding of ``payledger verify``: exit 1, one line naming the row; ``rebuild`` repairs it."""
    path = tmp_path / "ledger.db"
    events = build([(0, 0), (1, 0), (9, 0), (10, 2), (10, 2), (10, 0)] * 3)

    async def setup() -> None:
        async with open_store(path) as store:
            await append_all(store, events)
            async with Projector.open(store) as projector:
                await projector.catch_up()

    anyio.run(setup)
    assert cli(["--db", str(path), "verify"]) == 0
    assert "agree with the log" in capsys.readouterr().out
    with sqlite3.connect(path) as conn:
        key = conn.execute(
            "SELECT key FROM ledger_states WHERE kind = 'payment' ORDER BY key LIMIT 1"
        ).fetchone()[0]
        conn.execute(
            "UPDATE ledger_states SET grp = 'A-ELSEWHERE' WHERE kind = 'payment' AND key = ?",
            (key,),
        )
    conn.close()
    assert cli(["--db", str(path), "verify"]) == 1
    out = capsys.readouterr().out
    (line,) = [line for line in out.splitlines() if "ALTERED" in line]
    assert f"projection row payment {key!r}" in line
    assert "group" in line
    assert cli(["--db", str(path), "verify", "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] is False
    assert (doc["projections"]["kind"], doc["projections"]["key"]) == ("payment", key)
    assert cli(["--db", str(path), "rebuild"]) == 0
    assert cli(["--db", str(path), "verify"]) == 0
