"""CONTRACT section 7 as properties, on random logs (:func:`logs.random_logs`).

For every payment of a drawn log, the one-payment engine, the batch pass (every payment, and
failed ones only) and the what-if agree with a direct evaluation of the conditions table: fold
every event below the attempt's moment from scratch (:func:`projections.fold`), build the
moment, ask :func:`causes.judge`. Events appended later to any other stream never change an
explanation. The same runs on the in-memory store, on SQLite and on PostgreSQL (whose indexed
reads the engine uses: payment streams' bounds, filtered pages, a channel's last event, an
account's payments), with fewer examples on the backends that write to disk.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import msgspec
import pytest
from backends import Backend
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from logs import CHANNELS, load, random_logs, run
from logs import later_event as draw_later_event

from causes import World, checks, judge, moment_of, moment_position
from ledger import EventStore, Record, open_store
from ledger import events as ev
from projections import fold
from projections.state import PaymentState
from replay import Explanation, batch, explain, explain_failed, explain_payments, whatif
from replay.assemble import failures
from replay.report.data import fleet_report
from replay.stats import Tally, stats


@asynccontextmanager
async def memory() -> AsyncIterator[EventStore]:
    async with open_store(":memory:") as store:
        yield store


def _doc(exp: Explanation) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(msgspec.json.encode(exp))
    return result


def _world(records: list[Record], payment: PaymentState, moment: int, channel: str) -> World:
    """The world at ``moment``, folded from scratch."""
    before = fold(records[: moment - 1])
    return World(
        position=moment,
        account=before.account(payment.account_id),
        channel=before.channel(channel),
        policy=before.policy(payment.merchant),
    )


def _direct(records: list[Record], payment_id: str) -> dict[int, list[tuple[str, list[int]]]]:
    """Each failed attempt's causes by a direct evaluation of the conditions table."""
    payment = fold(records).payment(payment_id)
    assert payment is not None
    found: dict[int, list[tuple[str, list[int]]]] = {}
    for attempt, ended in failures(payment):
        moment = moment_position(attempt)
        assert moment is not None
        m = moment_of(
            payment, attempt, _world(records, payment, moment, attempt.channel), ended_at=ended
        )
        found[attempt.attempt] = [(c.category, list(c.evidence)) for c in judge(m)]
    return found


def _causes(doc: dict[str, Any]) -> dict[int, tuple[str, list[int]]]:
    return {
        a["attempt"]: (a["cause"]["category"], a["cause"]["evidence"])
        for a in doc["attempts"]
        if a["cause"] is not None
    }


async def _check_log(store: EventStore, events: list[ev.Event]) -> None:
    await load(store, events)
    records = [r async for r in store.read_all()]
    payments = sorted(fold(records).payments)
    every = {e.payment_id: e async for e in explain_payments(store)}
    failed = [e.payment_id async for e in explain_failed(store)]
    assert sorted(every) == payments
    for pid in payments:
        one = await explain(store, pid)
        assert msgspec.json.encode(every[pid]) == msgspec.json.encode(one), pid
        doc = _doc(one)
        direct = _direct(records, pid)
        assert _causes(doc) == {n: causes[0] for n, causes in direct.items()}, pid
        root = doc["root_cause"]
        if doc["outcome"] == "failed" and direct:
            declined = [
                a["attempt"] for a in doc["attempts"] if a["outcome"] == "declined" and a["cause"]
            ]
            chosen = max(declined) if declined else max(direct)
            want = direct[chosen]
            assert (root["category"], root["evidence"]) == want[0], pid
            assert [(c["category"], c["evidence"]) for c in root["contributing"]] == want[1:], pid
        elif doc["outcome"] != "failed":
            assert root is None, pid
    assert failed == [p for p in every if every[p].outcome == "failed"]


@pytest.mark.parametrize(
    ("backend", "examples"),
    [("memory", 150), ("sqlite", 30), ("postgres", 20)],
    indirect=["backend"],
)
def test_engine_batch_and_direct_evaluation_agree(backend: Backend, examples: int) -> None:
    @settings(max_examples=examples, suppress_health_check=[HealthCheck.too_slow])
    @given(random_logs())
    def check(events: list[ev.Event]) -> None:
        async def body() -> None:
            async with backend.store(durability="normal") as store:
                await _check_log(store, events)

        run(body)

    check()


@st.composite
def _with_later(draw: Any) -> tuple[list[ev.Event], list[ev.Event]]:
    events = draw(random_logs())
    later: list[ev.Event] = []
    for n in range(draw(st.integers(1, 10))):
        if draw(st.integers(0, 3)) == 0:  # another payment on the same accounts, holding credit
            pid = f"PL{n}"
            channel = draw(st.sampled_from(CHANNELS))
            amount = draw(st.integers(1, 1_000_000))
            at = events[-1].occurred_at
            later += [
                ev.PaymentRequested(
                    occurred_at=at,
                    payment_id=pid,
                    account_id=draw(st.sampled_from(("A1", "A2", "A3"))),
                    merchant="zd-auto",
                    scenario="car_loan_deposit",
                    amount_minor=amount,
                    currency="CNY",
                    preferred_channel=channel,
                ),
                ev.PaymentAuthorized(
                    occurred_at=at,
                    payment_id=pid,
                    attempt=1,
                    channel=channel,
                    amount_minor=amount,
                    auth_ref="later",
                ),
            ]
        else:
            account = draw(st.sampled_from(("A1", "A2", "A3")))
            later.append(draw_later_event(draw, account, draw(st.sampled_from(("zd-auto",)))))
    return events, later


@pytest.mark.parametrize(
    ("backend", "examples"),
    [("memory", 100), ("sqlite", 20), ("postgres", 12)],
    indirect=["backend"],
)
def test_later_events_of_other_streams_never_change_an_explanation(
    backend: Backend, examples: int
) -> None:
    """Rule 7.1: whatever is appended later, to any stream but the payment's own, the
    explanation (one payment and batch) stays byte for byte the same, even when the later
    events are backdated to before the attempt."""

    @settings(max_examples=examples, suppress_health_check=[HealthCheck.too_slow])
    @given(_with_later())
    def check(case: tuple[list[ev.Event], list[ev.Event]]) -> None:
        events, later = case

        async def body() -> None:
            async with backend.store(durability="normal") as store:
                await load(store, events)
                before = {
                    e.payment_id: msgspec.json.encode(e) async for e in explain_payments(store)
                }
                await load(store, later)
                for pid, doc in before.items():
                    assert msgspec.json.encode(await explain(store, pid)) == doc, pid
                after = {
                    e.payment_id: msgspec.json.encode(e) async for e in explain_payments(store)
                }
                assert {p: after[p] for p in before} == before

        run(body)

    check()


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(random_logs())
def test_whatif_asks_the_table_of_the_world_at_the_attempt(events: list[ev.Event]) -> None:
    """A what-if on each channel gives the checks of the conditions table on the world at the
    original attempt's moment with that channel, and passes exactly when none fails."""

    async def body() -> None:
        async with memory() as store:
            await load(store, events)
            records = [r async for r in store.read_all()]
            world = fold(records)
            for pid, payment in sorted(world.payments.items()):
                points = failures(payment)
                if not points:
                    continue
                original, ended = points[-1]
                moment = moment_position(original)
                assert moment is not None
                for channel in CHANNELS:
                    got = await whatif(store, pid, channel)
                    m = moment_of(
                        payment,
                        original,
                        _world(records, payment, moment, channel),
                        channel=channel,
                        ended_at=ended,
                    )
                    assert got.checks == tuple(checks(m))
                    assert got.would_pass == all(c.status != "failed" for c in got.checks)
                    assert got.position == moment - 1

    run(body)


def test_every_decline_code_of_the_catalogue_has_its_row() -> None:
    """The table of decline codes (rule 7.4) and the catalogue's vocabulary are the same set,
    so a code added to one and not the other fails here, not later as a decline that claims
    nothing; the codes that count against a channel's health are read from the table by the
    router and the early warnings alike."""
    from typing import get_args

    from causes import DECLINE_CODES
    from gateway.config import TECHNICAL_CODES

    assert list(DECLINE_CODES) == list(get_args(ev.DeclineCode))
    assert {code for code, row in DECLINE_CODES.items() if row.technical} == TECHNICAL_CODES
    for code, row in DECLINE_CODES.items():
        assert row.code == code
        assert row.observed is None or row.fallback is None, code  # one reading, not two


def _outcome_by_the_rule(records: list[Record], payment_id: str) -> str:
    """Rule 7.6 read straight off the records, sharing no code with the read model. An
    attempt is numbered by any of its own events (rule 7.2), a decision or a decline alike."""
    mine = [r.event for r in records if getattr(r.event, "payment_id", None) == payment_id]
    if any(isinstance(e, ev.PaymentSettled) for e in mine):
        return "succeeded"
    if any(isinstance(e, ev.PaymentAbandoned) for e in mine):
        return "failed"
    numbers = (getattr(e, "attempt", None) for e in mine)
    attempts = [n for n in numbers if isinstance(n, int)]
    if not attempts:
        return "pending"
    last = max(attempts)
    declines = [
        i for i, e in enumerate(mine) if isinstance(e, ev.PaymentDeclined) and e.attempt == last
    ]
    if not declines:
        return "pending"  # the last attempt has not ended, or it was authorized and not settled
    after = mine[declines[0] + 1 :]
    return "pending" if any(isinstance(e, ev.FailoverTriggered) for e in after) else "failed"


@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow])
@given(random_logs())
def test_outcomes_follow_rule_7_6_everywhere(events: list[ev.Event]) -> None:
    """Rule 7.6 (outcomes): the payment read model, `explain`, the batch pass and `stats` give
    each payment the outcome the rule reads off its records (settled: succeeded; abandoned, or
    its last attempt declined with no failover after the decline: failed; else pending)."""

    async def body() -> None:
        async with memory() as store:
            await load(store, events)
            records = [r async for r in store.read_all()]
            world = fold(records)
            want = {pid: _outcome_by_the_rule(records, pid) for pid in world.payments}
            assert {pid: p.outcome for pid, p in world.payments.items()} == want
            every = {e.payment_id: e.outcome async for e in explain_payments(store)}
            assert every == want
            for pid in want:
                assert (await explain(store, pid)).outcome == want[pid], pid
            doc = await stats(store)
            counted = {k: sum(1 for o in want.values() if o == k) for k in ("succeeded", "failed")}
            assert (doc.succeeded, doc.failed) == (counted["succeeded"], counted["failed"])
            assert doc.pending == len(want) - doc.succeeded - doc.failed

    run(body)


@pytest.mark.parametrize(
    ("backend", "examples"),
    [("memory", 100), ("sqlite", 30), ("postgres", 20)],
    indirect=["backend"],
)
def test_stats_and_report_count_as_if_every_payment_were_explained(
    backend: Backend, examples: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``stats`` and the report explain only the payments with a decline or an abandonment and
    count the others from their state (``explain_payments(plain=...)``): the document must be
    the one a tally of every payment's explanation gives, for the whole log and for periods cut
    anywhere in it (pages of 3 positions, so payments end on every page)."""
    monkeypatch.setattr(batch, "_PAGE", 3)

    @settings(max_examples=examples, suppress_health_check=[HealthCheck.too_slow])
    @given(random_logs(), st.data())
    def check(events: list[ev.Event], data: st.DataObject) -> None:
        times = sorted({e.occurred_at for e in events})
        since = data.draw(st.one_of(st.none(), st.sampled_from(times)))
        until = data.draw(st.one_of(st.none(), st.sampled_from(times)))

        async def body() -> None:
            async with backend.store(durability="normal") as store:
                await load(store, events)
                reference = Tally(since=since, until=until)
                async for exp in explain_payments(store):
                    reference.add(exp)
                want = reference.document()
                assert await stats(store, since=since, until=until) == want
                report = await fleet_report(store, since=since, until=until)
                assert report.stats == want

        run(body)

    check()
