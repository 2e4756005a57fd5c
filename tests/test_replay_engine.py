"""The replay engine against the incident fixtures (field by field, and its batch pass), the
generator's truth, its own batch pass, and the rule that an explanation depends only on the
events up to the failure: every test on each backend (memory, SQLite and PostgreSQL), through
the ``backend`` fixture.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest
from backends import Backend, Place
from hypothesis import given, settings
from hypothesis import strategies as st
from logs import CHANNELS, SCENARIOS, later_event, run

import fixtures
from fixtures.generate import generate
from ledger import EventStore
from ledger import events as ev
from ledger.codec import read_lines
from ledger.errors import LedgerError, NotFoundError
from replay import Explanation, explain, explain_failed, explain_payments, whatif

CASES = [
    (name, exp["payment_id"])
    for name in fixtures.incident_names()
    for exp in fixtures.expected(name)["explain"]
]


async def _import(store: EventStore, name: str) -> None:
    with fixtures.incident_path(name).open("rb") as handle:
        await store.import_events(read_lines(handle, source=name))


@asynccontextmanager
async def _loaded(backend: Backend, name: str) -> AsyncIterator[EventStore]:
    """Incident ``name`` imported into a new store of ``backend``, read back through a
    read-only store object."""
    async with backend.place() as place:
        async with place.open(durability="normal") as store:
            await _import(store, name)
        async with place.open(readonly=True) as store:
            yield store


def _doc(exp: Explanation) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(msgspec.json.encode(exp))
    return result


def _own_positions(name: str, payment_id: str) -> set[int]:
    """The positions of the payment's own events in incident ``name``."""
    with fixtures.incident_path(name).open("rb") as handle:
        return {
            n
            for n, line in enumerate(handle, start=1)
            if json.loads(line)["stream"] == f"payment-{payment_id}"
        }


def _cause(c: dict[str, Any] | None) -> tuple[str, list[int]] | None:
    return None if c is None else (c["category"], list(c["evidence"]))


# --- the incidents -------------------------------------------------------------------------


def _check_expected(name: str, want: dict[str, Any], got: dict[str, Any]) -> None:
    """One payment's explanation field by field against its expected JSON."""
    payment_id = want["payment_id"]
    where = f"{name}: {payment_id}"
    assert got["payment_id"] == payment_id, where
    assert got["outcome"] == want["outcome"], where
    if want["root_cause"] is None:
        assert got["root_cause"] is None, where
    else:
        root = got["root_cause"]
        assert root["category"] == want["root_cause"]["category"], where
        assert root["evidence"] == want["root_cause"]["evidence"], where
        assert [_cause(c) for c in root["contributing"]] == [
            _cause(c) for c in want["root_cause"]["contributing"]
        ], where
        assert root["summary"], where
        assert root["remedy"], where
        # evidence never cites an event after the failure, apart from the attempt's own events,
        # which belong to it whatever their position (CONTRACT rule 7.2): its decline where the
        # code is the proof (rule 7.4), a failed verification recorded after the decline
        last_failed = max(a["failed_at"] for a in got["attempts"] if a["failed_at"])
        own = _own_positions(name, payment_id)
        assert all(p < last_failed or p in own for p in root["evidence"]), where
    assert len(got["attempts"]) == len(want["attempts"]), where
    for g, w in zip(got["attempts"], want["attempts"], strict=True):
        assert (g["attempt"], g["channel"], g["outcome"], g["code"]) == (
            w["attempt"],
            w["channel"],
            w["outcome"],
            w["code"],
        ), where
        assert _cause(g["cause"]) == _cause(w["cause"]), where
    assert set(got) >= {"payment_id", "outcome", "root_cause", "attempts", "state_at_failure"}
    if any(a["cause"] for a in got["attempts"]):
        assert set(got["state_at_failure"]) >= {"account", "channel", "policy"}, where


@pytest.mark.anyio
@pytest.mark.parametrize("name", fixtures.incident_names())
async def test_incident_matches_expected(backend: Backend, name: str) -> None:
    """Incident ``name`` imported into a new store of ``backend`` (memory, SQLite, PostgreSQL)
    and read back through a read-only store object: each expected payment's explanation field
    by field against the expected JSON; the batch pass says what ``explain`` says of every
    payment, ``explain_failed`` lists the failed ones, and the expected failed payments are
    exactly the ones the batch found failed among them."""
    expected = fixtures.expected(name)["explain"]
    async with backend.place() as place:
        async with place.open(durability="normal") as store:
            await _import(store, name)
        async with place.open(readonly=True) as store:
            for want in expected:
                _check_expected(name, want, _doc(await explain(store, want["payment_id"])))
            batch = [exp async for exp in explain_payments(store)]
            assert batch, name
            for exp in batch:
                one = await explain(store, exp.payment_id)
                assert msgspec.json.encode(exp) == msgspec.json.encode(one), exp.payment_id
            failed = [exp.payment_id async for exp in explain_failed(store)]
    assert failed == [e.payment_id for e in batch if e.outcome == "failed"]
    wanted = {e["payment_id"] for e in expected}
    assert wanted & {e.payment_id for e in batch if e.outcome == "failed"} == {
        e["payment_id"] for e in expected if e["outcome"] == "failed"
    }


@pytest.mark.anyio
async def test_remedies_and_summaries_are_concrete(backend: Backend) -> None:
    checks = {
        "credit_suspended_overdue": ("pay the overdue amount", "suspended"),
        "policy_bank_card_only": (
            "pay by bank_card: zd-auto accepts only bank_card for car_loan_down_payment",
            "zd-auto accepts only bank_card",
        ),
        "channel_maintenance": (
            "retry after the maintenance window ends at 2026-03-03T02:00:00Z",
            "maintenance",
        ),
        "unknown_cause": ("ask the processor", "missing evidence"),
    }
    for name, (remedy, summary) in checks.items():
        (payment_id,) = fixtures.index()[fixtures.incident_names().index(name)]["payments"]
        async with _loaded(backend, name) as store:
            exp = await explain(store, payment_id)
        assert exp.root_cause is not None
        assert remedy in exp.root_cause.remedy, name
        assert summary in exp.root_cause.summary, name


@pytest.mark.anyio
async def test_unknown_payment_is_not_found(backend: Backend) -> None:
    async with _loaded(backend, "failover_saved") as store:
        with pytest.raises(NotFoundError, match="no payment"):
            await explain(store, "P-nope")
        with pytest.raises(NotFoundError):
            await whatif(store, "P-nope", "bank_card")


@pytest.mark.anyio
async def test_explaining_twice_gives_identical_json(backend: Backend) -> None:
    for name in dict.fromkeys(name for name, _ in CASES):
        async with _loaded(backend, name) as store:
            for payment_id in (p for n, p in CASES if n == name):
                first = msgspec.json.encode(await explain(store, payment_id))
                second = msgspec.json.encode(await explain(store, payment_id))
                assert first == second, payment_id


# --- what if -------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_whatif_bank_card_passes_where_policy_blocked_huabei(backend: Backend) -> None:
    async with _loaded(backend, "policy_bank_card_only") as store:
        card = await whatif(store, "P-20260301-0007", "bank_card")
        again = await whatif(store, "P-20260301-0007", "huabei")
    assert card.would_pass
    checks = {c.check: c for c in card.checks}
    assert checks["policy"].status == "passed"
    assert checks["policy"].evidence == (1,)
    assert checks["credit_status"].status == "not_applicable"
    assert checks["verification"].status == "passed"
    assert card.original_cause is not None
    assert card.original_cause.category == "channel_policy"
    assert not again.would_pass
    assert {c.check: c.status for c in again.checks}["policy"] == "failed"


@pytest.mark.anyio
async def test_whatif_checks_credit_of_the_other_product(backend: Backend) -> None:
    async with _loaded(backend, "noisy_neighbours") as store:
        huabei = await whatif(store, "P-20260301-0024", "huabei")
        with pytest.raises(LedgerError, match="did not fail"):
            await whatif(store, "P-20260218-0005", "huabei", attempt=1)
        with pytest.raises(NotFoundError, match="no attempt 7"):
            await whatif(store, "P-20260301-0024", "huabei", attempt=7)
    checks = {c.check: c for c in huabei.checks}
    # the huabei line of A2101: active, 30,000 limit, repaid: enough for 12,000
    assert checks["credit_status"].status == "passed"
    assert checks["available_credit"].status == "passed"
    assert huabei.would_pass
    assert huabei.position == 43  # the world below the attempt's PaymentAttempted (44)


@pytest.mark.anyio
async def test_whatif_carries_a_failed_verification_over(backend: Backend) -> None:
    async with _loaded(backend, "verification_failed") as store:
        result = await whatif(store, "P-20260307-0014", "bank_card")
    checks = {c.check: c for c in result.checks}
    assert checks["verification"].status == "failed"
    assert checks["verification"].evidence == (15, 16, 17)
    assert not result.would_pass


# --- a generated log -----------------------------------------------------------------------


@dataclass(frozen=True)
class Generated:
    """The generated log imported into a store of one backend, and the generator's truth."""

    place: Place
    truth: dict[str, str]


@pytest.fixture(scope="module")
def generated_log() -> tuple[list[bytes], dict[str, str]]:
    """20,000 generated lines and the generator's truth (once for every backend)."""
    truth: dict[str, str] = {}
    lines = list(generate(20_000, 11, on_failure=truth.__setitem__))
    return lines, truth


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    """Module-scoped here (asyncio, as in ``conftest``), so that :func:`generated` can be: one
    import per backend, its store (a memory store's object too) living on one event loop."""
    return "asyncio"


@pytest.fixture(scope="module")
async def generated(
    backend: Backend, generated_log: tuple[list[bytes], dict[str, str]]
) -> AsyncIterator[Generated]:
    """The generated log imported into a new store of ``backend`` for the module's tests."""
    lines, truth = generated_log
    async with backend.place() as place:
        async with place.open(durability="normal") as store:
            await store.import_events(read_lines(lines))
        yield Generated(place, truth)


@pytest.mark.anyio
async def test_engine_agrees_with_the_generators_truth(
    generated: Generated,
) -> None:
    truth = generated.truth
    assert len(truth) > 100
    async with generated.place.open(readonly=True) as store:
        got = {
            exp.payment_id: exp.root_cause.category if exp.root_cause else None
            async for exp in explain_failed(store)
        }
    assert got == truth


@pytest.mark.anyio
async def test_batch_agrees_with_explain_on_a_generated_log(
    generated: Generated,
) -> None:
    async with generated.place.open(readonly=True) as store:
        outcomes: dict[str, int] = {}
        checked = 0
        async for exp in explain_payments(store):
            outcomes[exp.outcome] = outcomes.get(exp.outcome, 0) + 1
            if exp.outcome == "failed" or any(a.cause for a in exp.attempts):
                one = await explain(store, exp.payment_id)
                assert msgspec.json.encode(exp) == msgspec.json.encode(one), exp.payment_id
                checked += 1
    assert checked > 100
    assert outcomes["succeeded"] > outcomes["failed"] > 0


@pytest.mark.anyio
async def test_since_keeps_later_payments(generated: Generated) -> None:
    async with generated.place.open(readonly=True) as store:
        every = [exp async for exp in explain_failed(store)]
        middle = every[len(every) // 2]
        requested: dict[str, datetime] = {}
        async for rec in store.query(types=["PaymentRequested"]):
            requested[rec.stream.removeprefix("payment-")] = rec.event.occurred_at
        since = requested[middle.payment_id]
        later = [exp.payment_id async for exp in explain_failed(store, since=since)]
    assert later == [e.payment_id for e in every if requested[e.payment_id] >= since]
    assert 0 < len(later) < len(every)


# --- later events never change an explanation ----------------------------------------------

T_LATER = datetime(2026, 4, 1, tzinfo=UTC)


def _later_payment(
    draw: Callable[[Any], Any], account: str, merchant: str, n: int
) -> list[ev.Event]:
    at = T_LATER + timedelta(minutes=n)
    pid = f"P-LATER-{n}"
    channel = draw(st.sampled_from(CHANNELS))
    amount = draw(st.integers(1, 10**7))
    out: list[ev.Event] = [
        ev.PaymentRequested(
            occurred_at=at,
            payment_id=pid,
            account_id=account,
            merchant=merchant,
            scenario=draw(st.sampled_from(SCENARIOS)),
            amount_minor=amount,
            currency="CNY",
            preferred_channel=channel,
        ),
        ev.PaymentAttempted(
            occurred_at=at, payment_id=pid, attempt=1, channel=channel, amount_minor=amount
        ),
        ev.PaymentAuthorized(
            occurred_at=at,
            payment_id=pid,
            attempt=1,
            channel=channel,
            amount_minor=amount,
            auth_ref="AUTH-LATER",
        ),
    ]
    if draw(st.booleans()):
        out.append(
            ev.PaymentSettled(
                occurred_at=at, payment_id=pid, attempt=1, channel=channel, amount_minor=amount
            )
        )
    return out


@st.composite
def later_logs(draw: Callable[[Any], Any]) -> tuple[str, str, list[ev.Event]]:
    name, payment_id = draw(st.sampled_from(CASES))
    account, merchant = _ACCOUNT_AND_MERCHANT[payment_id]
    events: list[ev.Event] = []
    for n in range(draw(st.integers(1, 8))):
        if draw(st.integers(0, 3)) == 0:
            events += _later_payment(draw, account, merchant, n)
        else:
            events.append(later_event(draw, account, merchant, T_LATER + timedelta(minutes=n)))
    return name, payment_id, events


def _account_and_merchant() -> dict[str, tuple[str, str]]:
    found: dict[str, tuple[str, str]] = {}
    for name in fixtures.incident_names():
        with fixtures.incident_path(name).open("rb") as handle:
            for item in read_lines(handle):
                if isinstance(item.event, ev.PaymentRequested):
                    found[item.event.payment_id] = (item.event.account_id, item.event.merchant)
    return found


_ACCOUNT_AND_MERCHANT = _account_and_merchant()


@pytest.mark.parametrize(
    ("backend", "examples"),
    [("memory", 40), ("sqlite", 40), ("postgres", 20)],
    indirect=["backend"],
)
def test_later_events_never_change_an_explanation(backend: Backend, examples: int) -> None:
    """An incident imported into a new store of ``backend`` per example, then later events
    appended: the payment's explanation (one payment and batch) stays byte for byte the
    same."""

    @settings(max_examples=examples)
    @given(later_logs())
    def check(case: tuple[str, str, list[ev.Event]]) -> None:
        name, payment_id, later = case

        async def body() -> None:
            async with backend.place() as place, place.open(durability="normal") as store:
                await _import(store, name)
                before = msgspec.json.encode(await explain(store, payment_id))
                batch_before = await _batch(store, payment_id)
                for event in later:
                    await store.append(ev.stream_of(event), [event])
                after = msgspec.json.encode(await explain(store, payment_id))
                batch_after = await _batch(store, payment_id)
            assert after == before
            assert batch_before == batch_after == before

        run(body)

    check()


async def _batch(store: EventStore, payment_id: str) -> bytes:
    found = [exp async for exp in _only(explain_payments(store), payment_id)]
    assert len(found) == 1
    return msgspec.json.encode(found[0])


async def _only(
    explanations: AsyncIterator[Explanation], payment_id: str
) -> AsyncIterator[Explanation]:
    async for exp in explanations:
        if exp.payment_id == payment_id:
            yield exp


@pytest.mark.anyio
async def test_evidence_is_before_the_failure_and_about_the_payment(
    generated: Generated,
) -> None:
    async with generated.place.open(readonly=True) as store:
        account_of: dict[str, str] = {}
        async for rec in store.query(types=["PaymentRequested"]):
            event = rec.event
            assert isinstance(event, ev.PaymentRequested)
            account_of[event.payment_id] = event.account_id
        cited = 0
        async for exp in explain_failed(store):
            for a in exp.attempts:
                if a.cause is None:
                    continue
                assert a.failed_at is not None
                allowed = {
                    f"account-{exp.account_id}",
                    f"channel-{a.channel}",
                    f"policy-{exp.merchant}",
                    f"payment-{exp.payment_id}",
                }
                for position in a.cause.evidence:
                    assert position <= a.failed_at
                    (rec,) = [
                        r
                        async for r in store.read_all(from_position=position, to_position=position)
                    ]
                    own_payment = rec.stream.startswith("payment-") and (
                        account_of.get(rec.stream.removeprefix("payment-")) == exp.account_id
                    )
                    assert rec.stream in allowed or own_payment, (exp.payment_id, rec.stream)
                    cited += 1
    assert cited > 100
