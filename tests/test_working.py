"""The mutable fold (:class:`projections.working.Working`) against the pure reducers (the
specification, :class:`projections.World`): the same rows, byte for byte, on random logs, on
op-built logs and on the incident fixtures, whichever way the events reach it (records, stored
rows, a JSON page), from scratch or in batches whose changed rows are written as they go, and
resumed from persisted rows."""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from logs import OPS, T0, build, random_logs, records_of

import fixtures
from ledger import Record, open_store
from ledger import events as ev
from ledger.codec import read_lines
from ledger.states import StateRow
from ledger.store import row_from_record
from projections import Projector, World, fold
from projections.rows import NAME, rows_of
from projections.working import Account, Working


def payload_rows(records: Sequence[Record]) -> list[tuple[object, ...]]:
    """The records as :meth:`EventStore.read_payloads` gives them."""
    return [(r[0], r[3], r[4], r[10]) for r in map(row_from_record, records)]


def json_page(records: Sequence[Record]) -> str:
    """The records as :meth:`EventStore.read_json_page` gives them."""
    return "[" + ",".join(f"[{r[0]},{r[3]}]" for r in payload_rows(records)) + "]"


def assert_same_rows(working: Working, world: World, *, dirty_only: bool = False) -> None:
    assert working.rows(dirty_only=dirty_only) == rows_of(world, dirty_only=dirty_only)


def check_every_way(events: list[ev.Event], cuts: Sequence[int] | None = None) -> None:
    """Fold ``events`` every way and compare with the pure fold; the batches end at ``cuts``
    (at every event when None)."""
    records = records_of(events)
    world = fold(records)
    assert_same_rows(Working().apply_all(records), world)

    rows = Working()
    rows.apply_rows(payload_rows(records))
    assert rows.position == len(records)
    assert_same_rows(rows, world)

    page = Working(track=False)
    assert page.apply_page(json_page(records), 1)
    assert page.position == len(records)
    assert_same_rows(page, world)

    # In batches, each batch's changed rows written (as a catch-up does): the rows written
    # last for each key are the rows of the whole fold.
    live, spec = Working(), World()
    written: dict[tuple[str, str], StateRow] = {}
    if cuts is None:
        cuts = range(len(records))
    bounds = sorted({0, len(records), *(c % (len(records) + 1) for c in cuts)})
    for low, high in itertools.pairwise(bounds):
        for record in records[low:high]:
            spec.apply(record)
        live.apply_rows(payload_rows(records[low:high]))
        assert_same_rows(live, spec, dirty_only=True)
        for row in live.rows():
            written[(row.kind, row.key)] = row
        live.clear_dirty()
        spec.clear_dirty()
    assert [written[k] for k in sorted(written)] == rows_of(world, dirty_only=False)


@settings(max_examples=150, deadline=None)
@given(random_logs(), st.lists(st.integers(0, 200), max_size=6))
def test_random_logs_give_the_rows_of_the_pure_fold(
    events: list[ev.Event], cuts: list[int]
) -> None:
    check_every_way(events, cuts)
    check_every_way(events)


@settings(max_examples=150, deadline=None)
@given(OPS, st.lists(st.integers(0, 200), max_size=6))
def test_op_built_logs_give_the_rows_of_the_pure_fold(
    ops: list[tuple[int, int]], cuts: list[int]
) -> None:
    check_every_way(build(ops), cuts)


# --- chaos: every catalogue type in any order, from small vocabularies, so that events meet
# --- states the life-like logs never give them (an attempt's events before its decision or
# --- after a later attempt's, a second request, a settlement on another product than the hold,
# --- payments of unknown accounts, ids that prefix each other)

_KINDS = (
    # payment events twice over: they meet each other in the orders that matter
    *("requested", "decided", "attempted", "verification", "authorized", "declined"),
    *("settled", "failover", "abandoned"),
    *("authorized", "declined", "settled", "decided", "verification", "abandoned"),
    *("account", "line", "limit", "score", "status", "overdue", "repaid", "channel", "policy"),
)


@st.composite
def chaos_event(draw: st.DrawFn) -> ev.Event:
    """An event of any type, its ids and amounts from small vocabularies."""
    kind = draw(st.sampled_from(_KINDS))
    at = T0 + timedelta(minutes=draw(st.integers(0, 100)))
    account = draw(st.sampled_from(["A1", "A1", "A2"]))
    pid = draw(st.sampled_from(["P", "P", "P#1", "Q"]))
    channel = draw(st.sampled_from(["huabei", "jiebei", "huabei", "bank_card"]))
    n = draw(st.integers(1, 2))
    amount = draw(st.integers(1, 3_000))
    text = draw(st.sampled_from(["r1", "r2"]))
    currency = draw(st.sampled_from(["CNY", "CNY", "USD"]))
    line: dict[str, Any] = {"account_id": account, "product": channel}
    attempt: dict[str, Any] = {"payment_id": pid, "attempt": n}
    events: dict[str, ev.Event] = {
        "account": ev.AccountOpened(occurred_at=at, account_id=account, holder_ref=text),
        "line": ev.CreditLineOpened(occurred_at=at, **line, limit_minor=amount, currency=currency),
        "limit": ev.CreditLimitChanged(
            occurred_at=at, **line, old_limit_minor=0, new_limit_minor=amount, reason=text
        ),
        "score": ev.CreditScoreChanged(
            occurred_at=at, account_id=account, old_score=1, new_score=amount % 900, bureau=text
        ),
        "status": ev.CreditStatusChanged(
            occurred_at=at,
            **line,
            old_status="active",
            new_status=draw(st.sampled_from(["active", "frozen", "suspended"])),
            reason=text,
        ),
        "overdue": ev.RepaymentOverdue(
            occurred_at=at, **line, overdue_minor=amount % 3 * 100, days_overdue=3
        ),
        "repaid": ev.RepaymentMade(occurred_at=at, **line, amount_minor=amount),
        "channel": ev.ChannelStatusChanged(
            occurred_at=at, channel=channel, status="down", reason=text
        ),
        "policy": ev.ChannelPolicySet(
            occurred_at=at, merchant="m", scenario="s", allowed_channels=(channel,), reason=text
        ),
        "requested": ev.PaymentRequested(
            occurred_at=at,
            payment_id=pid,
            account_id=account,
            merchant=draw(st.sampled_from(["m", "n"])),
            scenario="s",
            amount_minor=amount,
            currency=currency,
            preferred_channel=channel,
        ),
        "decided": ev.ChannelDecided(
            occurred_at=at, **attempt, channel=channel, candidates=(), rule=text
        ),
        "attempted": ev.PaymentAttempted(
            occurred_at=at, **attempt, channel=channel, amount_minor=amount
        ),
        "verification": draw(
            st.sampled_from(
                [
                    ev.VerificationRequested(occurred_at=at, **attempt, method="otp"),
                    ev.VerificationPassed(occurred_at=at, **attempt, method="otp"),
                    ev.VerificationFailed(
                        occurred_at=at, **attempt, method="otp", reason="expired", remaining_tries=1
                    ),
                ]
            )
        ),
        "authorized": ev.PaymentAuthorized(
            occurred_at=at, **attempt, channel=channel, amount_minor=amount, auth_ref=text
        ),
        "declined": ev.PaymentDeclined(
            occurred_at=at, **attempt, channel=channel, code="timeout", message=text
        ),
        "settled": ev.PaymentSettled(
            occurred_at=at, **attempt, channel=channel, amount_minor=amount
        ),
        "failover": ev.FailoverTriggered(
            occurred_at=at, payment_id=pid, from_channel="x", to_channel=channel, reason=text
        ),
        "abandoned": ev.PaymentAbandoned(occurred_at=at, payment_id=pid, reason=text),
    }
    return events[kind]


def _preamble() -> list[ev.Event]:
    """Accounts with credit lines and payments requested, for the chaos to act on."""
    out: list[ev.Event] = []
    for account, products in (("A1", ("huabei", "jiebei")), ("A2", ("huabei",))):
        out.append(ev.AccountOpened(occurred_at=T0, account_id=account, holder_ref="H"))
        out += [
            ev.CreditLineOpened(
                occurred_at=T0, account_id=account, product=p, limit_minor=2_000, currency="CNY"
            )
            for p in products
        ]
    out += [
        ev.PaymentRequested(
            occurred_at=T0,
            payment_id=pid,
            account_id=account,
            merchant="m",
            scenario="s",
            amount_minor=500,
            currency="CNY",
            preferred_channel="huabei",
        )
        for pid, account in (("P", "A1"), ("P#1", "A1"), ("Q", "A2"))
    ]
    return out


@settings(max_examples=400, deadline=None)
@given(st.lists(chaos_event(), min_size=20, max_size=60), st.booleans())
def test_chaos_logs_give_the_rows_of_the_pure_fold(events: list[ev.Event], prepared: bool) -> None:
    check_every_way([*_preamble(), *events] if prepared else events)


@settings(max_examples=200, deadline=None)
@given(
    st.one_of(
        OPS.map(build),
        st.lists(chaos_event(), min_size=20, max_size=60).map(lambda e: [*_preamble(), *e]),
    ),
    st.integers(0, 400),
)
def test_working_accounts_hold_the_pure_folds(events: list[ev.Event], cut: int) -> None:
    """A working account (credit lines in a list, each line's history one flat list of ints,
    holds None while there are none) gives back the pure fold it was made from, at any point
    of a log, and holds the same fold as the working fold of the same events."""
    records = records_of(events)
    cut %= len(records) + 1
    world = fold(records[:cut])
    working = Working().apply_all(records[:cut])
    assert sorted(working.accounts) == sorted(world.accounts)
    for account_id, pure in world.accounts.items():
        loaded = Account.of(pure)
        assert loaded.fold() == pure
        assert working.accounts[account_id].fold() == pure
        for a in (loaded, working.accounts[account_id]):
            assert (a.holds is None) == (not pure.holds)
            assert [line.product for line in a.credit] == list(pure.state.credit)
            for line in a.credit:
                assert len(line.steps) == 2 * len(pure.state.credit[line.product].steps)


_SUMMARY_KEYS = {
    "account": ["holder_ref", "score", "credit"],
    "payment": [
        *("account_id", "merchant", "scenario", "channel", "outcome", "amount_minor"),
        *("currency", "requested_position"),
    ],
    "balance": [
        *("ledger_account", "currency", "account_id", "debit_minor", "credit_minor"),
        "balance_minor",
    ],
}
_LINE_KEYS = [
    *("status", "limit_minor", "used_minor", "held_minor", "available_minor", "overdue_minor"),
    "currency",
]


def test_summaries_keep_their_keys_in_order() -> None:
    """The summaries are encoded from structs: the same keys in the same order as the
    dictionaries they replaced (stored rows of earlier runs are equal byte for byte)."""
    rng = random.Random(7)
    records = records_of(build([(rng.randrange(20), rng.randrange(10_000)) for _ in range(600)]))
    seen = set()
    for row in rows_of(fold(records), dirty_only=False):
        expected = _SUMMARY_KEYS.get(row.kind)
        if expected is None:
            continue
        doc = json.loads(row.summary)
        assert list(doc) == expected
        assert json.dumps(doc, separators=(",", ":"), ensure_ascii=False) == row.summary
        for line in doc.get("credit", {}).values():
            assert list(line) == _LINE_KEYS
            seen.add("line")
        seen.add(row.kind)
    assert seen == {"account", "payment", "balance", "line"}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_long_op_built_logs(seed: int) -> None:
    rng = random.Random(seed)
    ops = [(rng.randrange(20), rng.randrange(10_000)) for _ in range(1500)]
    check_every_way(build(ops), [rng.randrange(2000) for _ in range(8)])


@pytest.mark.parametrize("name", fixtures.incident_names())
def test_incident_fixtures_give_the_rows_of_the_pure_fold(name: str) -> None:
    async def body() -> None:
        async with open_store(":memory:") as store:
            with fixtures.incident_path(name).open("rb") as f:
                await store.import_events(read_lines(f, name))
            records = [r async for r in store.read_all()]
            async with Projector.open(store) as projector:
                await projector.rebuild()
            stored = [row async for page in store.states.scan(NAME) for row in page]
        assert stored == rows_of(fold(records), dirty_only=False)
        check_every_way([r.event for r in records], [len(records) // 3, len(records) // 2])

    anyio.run(body)


def test_resumed_from_persisted_rows() -> None:
    """A catch-up loads the persisted states of what a batch touches, then folds on."""

    @settings(max_examples=60, deadline=None)
    @given(OPS, st.integers(0, 80))
    def check(ops: list[tuple[int, int]], cut: int) -> None:
        records = records_of(build(ops))
        cut %= len(records) + 1
        first = Working().apply_all(records[:cut])
        resumed = Working()
        for row in first.rows(dirty_only=False):
            resumed.load_row(row)
        resumed.load_payments([r for r in records[:cut] if r.stream.startswith("payment-")])
        resumed.apply_all(records[cut:])
        written = {(r.kind, r.key): r for r in first.rows(dirty_only=False)}
        written.update({(r.kind, r.key): r for r in resumed.rows()})
        assert [written[k] for k in sorted(written)] == rows_of(fold(records), dirty_only=False)

    check()


def test_an_abandonment_releases_the_holds_the_reducer_releases() -> None:
    """The reducer releases, on an abandonment of payment ``P``, the holds whose key starts
    with ``P#`` (a payment named ``P#1`` too): the working fold does the same."""
    t = T0
    events: list[ev.Event] = [
        ev.AccountOpened(occurred_at=t, account_id="A", holder_ref="H"),
        ev.CreditLineOpened(
            occurred_at=t, account_id="A", product="huabei", limit_minor=10_000, currency="CNY"
        ),
    ]
    for pid in ("P", "P#1"):
        events += [
            ev.PaymentRequested(
                occurred_at=t,
                payment_id=pid,
                account_id="A",
                merchant="m",
                scenario="s",
                amount_minor=100,
                currency="CNY",
                preferred_channel="huabei",
            ),
            ev.PaymentAuthorized(
                occurred_at=t + timedelta(seconds=1),
                payment_id=pid,
                attempt=1,
                channel="huabei",
                amount_minor=100,
                auth_ref="R",
            ),
        ]
    events.append(ev.PaymentAbandoned(occurred_at=t, payment_id="P", reason="left"))
    check_every_way(events)
