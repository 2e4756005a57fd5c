"""What the read models and the replay ask of a store, on every backend: the derived state
(:mod:`ledger.states`: rows by kind and key, a group index, a checkpoint moved by compare and
set, reset, drop, read-only) and the indexed reads (``read_rows`` with its filter,
``read_payloads``, ``read_json_page``, ``read_account_events``, ``stream_bounds``,
``last_event``, ``payments_of``), each checked against the generic default of
:class:`ledger.store.EventStore` (a plain read of the log) as the oracle, with ids that are data,
not SQL, not C strings and not escapes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Final

import msgspec
import pytest
from backends import Backend

from ledger import EventStore, ReadOnlyError, StoreError
from ledger import events as ev
from ledger.states import PAGE, StateCheckpoint, StateRow
from ledger.store import record_from_row

pytestmark = pytest.mark.anyio

T0: Final = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
ODD: Final = [
    "A1",
    "a\x00b",
    "\x00",
    "\x01",
    "a\x01",
    "a\x00",
    "a",
    "\uffff0",
    "A\\u0000",
    "A\ufffd",
    "A\\ufffd",
    "'; DROP TABLE ledger_states; --",
    "%_",
    "ünï-😀",
    "Z",
]
"""Keys and ids that must come back as they went in, and in code point order."""


def row(kind: str, key: str, group: str = "", position: int = 1, **doc: object) -> StateRow:
    summary = msgspec.json.encode({"z": 1, "a": [1, 2], "key": key, **doc}).decode()
    return StateRow(kind, key, group, position, summary, key.encode() + b"\x00\xff")


async def scanned(store: EventStore, name: str, kind: str | None = None) -> list[StateRow]:
    return [r async for page in store.states.scan(name, kind) for r in page]


async def grow(store: EventStore, n: int) -> None:
    """Append ``n`` events, so that checkpoints up to ``n`` are not past the head."""
    await store.append(
        "channel-huabei",
        [
            ev.ChannelStatusChanged(
                channel="huabei", status="up", reason="ok", occurred_at=T0 + timedelta(seconds=i)
            )
            for i in range(n)
        ],
    )


# --- derived state ---------------------------------------------------------------------------


async def test_an_empty_store_has_no_derived_state(backend: Backend) -> None:
    async with backend.store() as store:
        states = store.states
        assert await states.checkpoint("m") == StateCheckpoint(0, None)
        assert await states.get("m", "account", ["A1"]) == {}
        assert await states.grouped("m", "payment", ["A1"]) == []
        assert await scanned(store, "m") == []
        await states.drop("m")


async def test_rows_come_back_byte_for_byte_by_key_group_and_in_order(backend: Backend) -> None:
    rows = [row("account", k, position=i) for i, k in enumerate(ODD, start=1)]
    rows += [row("payment", f"P{i}-{k}", group=k, position=i) for i, k in enumerate(ODD)]
    rows.append(StateRow("total", "CNY", "", 2, '{"b": 1,   "a":"\\u0000 é" }', b""))
    plain = [k for k in ODD if "\x00" not in k]
    async with backend.store() as store:
        await grow(store, 3)
        states = store.states
        assert await states.commit("m", rows, position=3, version=7, expected=0)
        assert await states.checkpoint("m") == StateCheckpoint(3, 7)
        want = sorted(rows, key=lambda r: (r.kind, r.key))
        assert await scanned(store, "m") == want
        assert await scanned(store, "m", "payment") == [r for r in want if r.kind == "payment"]
        assert await scanned(store, "other") == []
        got = await states.get("m", "account", [*plain, "missing"])
        assert got == {r.key: r for r in rows if r.kind == "account" and r.key in plain}
        for key in plain:
            assert await states.grouped("m", "payment", [key]) == [
                r for r in want if r.kind == "payment" and r.group == key
            ]
        both = await states.grouped("m", "payment", ["A1", "Z"])
        assert [r.key for r in both] == sorted(r.key for r in both)
        assert len(both) == 2


@pytest.mark.parametrize(
    "backend",
    [
        "memory",
        "sqlite",
        "postgres",
    ],
    indirect=True,
)
async def test_keys_and_groups_holding_nul_are_found(backend: Backend) -> None:
    odd = [k for k in ODD if "\x00" in k]
    rows = [row("account", k) for k in odd] + [row("payment", f"P-{k}", group=k) for k in odd]
    async with backend.store() as store:
        await grow(store, 1)
        states = store.states
        assert await states.commit("m", rows, position=1, version=1, expected=0)
        assert await states.get("m", "account", odd) == {k: row("account", k) for k in odd}
        for key in odd:
            assert await states.grouped("m", "payment", [key]) == [
                row("payment", f"P-{key}", group=key)
            ]


async def test_a_commit_replaces_rows_moves_groups_and_resets(backend: Backend) -> None:
    async with backend.store() as store:
        await grow(store, 5)
        states = store.states
        first = [row("payment", "P1", "A1"), row("payment", "P2", "A1"), row("account", "A1")]
        assert await states.commit("m", first, position=2, version=1, expected=None)
        moved = row("payment", "P1", "A2", position=4, outcome="failed")
        again = [moved, moved]  # a key given twice: the last stands
        assert await states.commit("m", again, position=4, version=1, expected=2)
        assert [r.key for r in await states.grouped("m", "payment", ["A1"])] == ["P2"]
        assert await states.grouped("m", "payment", ["A2"]) == [moved]
        assert len(await scanned(store, "m")) == 3
        assert await states.commit("m", [moved], position=5, version=2, expected=4, reset=True)
        assert await scanned(store, "m") == [moved]
        assert await states.checkpoint("m") == StateCheckpoint(5, 2)


async def test_the_checkpoint_moves_by_compare_and_set(backend: Backend) -> None:
    async with backend.store() as store:
        await grow(store, 4)
        states = store.states
        one = [row("account", "A1")]
        assert not await states.commit("m", one, position=1, version=1, expected=3)
        assert await states.checkpoint("m") == StateCheckpoint(0, None)
        assert await states.commit("m", one, position=2, version=1, expected=0)
        stale = [row("account", "A1", position=9)]
        assert not await states.commit("m", stale, position=3, version=1, expected=0)
        assert not await states.commit("m", stale, position=3, version=1, expected=1, reset=True)
        assert await states.get("m", "account", ["A1"]) == {"A1": row("account", "A1")}
        assert await states.checkpoint("m") == StateCheckpoint(2, 1)
        # read models are kept apart
        other = [row("account", "A1", position=3)]
        assert await states.commit("n", other, position=4, version=2, expected=0)
        assert await states.checkpoint("m") == StateCheckpoint(2, 1)
        assert len(await scanned(store, "m")) == 1
        await states.drop("m")
        assert await states.checkpoint("m") == StateCheckpoint(0, None)
        assert await scanned(store, "m") == []
        assert await states.checkpoint("n") == StateCheckpoint(4, 2)


async def test_a_checkpoint_past_the_head_is_refused_and_writes_nothing(backend: Backend) -> None:
    async with backend.store() as store:
        await grow(store, 2)
        states = store.states
        with pytest.raises(StoreError, match="past the head"):
            await states.commit("m", [row("account", "A1")], position=3, version=1, expected=None)
        assert await states.checkpoint("m") == StateCheckpoint(0, None)
        assert await scanned(store, "m") == []


@pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)
async def test_a_read_only_store_reads_derived_state_and_writes_none(backend: Backend) -> None:
    """(The memory store has no read-only mode: nothing outlives its object.)"""
    async with backend.place() as place:
        async with place.open() as store:
            await grow(store, 2)
            assert await store.states.commit(
                "m", [row("account", "A1")], position=2, version=1, expected=0
            )
        async with place.open(readonly=True) as store:
            states = store.states
            assert await states.checkpoint("m") == StateCheckpoint(2, 1)
            assert await scanned(store, "m") == [row("account", "A1")]
            with pytest.raises(ReadOnlyError):
                await states.commit("m", [], position=2, version=1, expected=None)
            with pytest.raises(ReadOnlyError):
                await states.drop("m")


async def test_many_rows_page_and_replace_each_other(backend: Backend) -> None:
    """More rows than a page of ``scan`` (and than PostgreSQL's threshold for ``COPY``), written
    by a reset, then replaced by a plain commit."""
    keys = sorted(f"A{i:05d}" for i in range(PAGE + 7))
    async with backend.store() as store:
        await grow(store, 2)
        states = store.states
        first = [row("account", k) for k in reversed(keys)]
        assert await states.commit("m", first, position=1, version=1, expected=0, reset=True)
        got = await scanned(store, "m")
        assert [r.key for r in got] == keys
        pages = [len(p) async for p in states.scan("m")]
        assert pages[0] == PAGE
        assert sum(pages) == len(keys)
        second = [row("account", k, position=2) for k in keys]
        assert await states.commit("m", second, position=2, version=1, expected=1)
        assert await scanned(store, "m", "account") == second


# --- indexed reads, against the generic default ---------------------------------------------


def _requested(pid: str, account: str, minutes: int) -> ev.PaymentRequested:
    return ev.PaymentRequested(
        payment_id=pid,
        account_id=account,
        merchant="zd-auto",
        scenario="car_loan_deposit",
        amount_minor=1000 + minutes,
        currency="CNY",
        preferred_channel="huabei",
        occurred_at=T0 + timedelta(minutes=minutes),
    )


def _log() -> list[ev.Event]:
    t = T0
    out: list[ev.Event] = []
    for n, account in enumerate(ODD):
        out.append(ev.AccountOpened(account_id=account, holder_ref="h", occurred_at=t))
        for k in range(2):
            pid = f"{account}/{k}"
            out.append(_requested(pid, account, n * 3 + k))
            if (n + k) % 3 == 0:
                out.append(
                    ev.PaymentDeclined(
                        payment_id=pid,
                        attempt=1,
                        channel="huabei",
                        code="unknown",
                        message="no",
                        occurred_at=t,
                    )
                )
            elif (n + k) % 3 == 1:
                out.append(ev.PaymentAbandoned(payment_id=pid, reason="left", occurred_at=t))
        out.append(
            ev.ChannelStatusChanged(
                channel="jiebei" if n % 2 else "huabei", status="down", reason="r", occurred_at=t
            )
        )
    return out


async def test_indexed_reads_agree_with_a_plain_read_of_the_log(backend: Backend) -> None:
    events = _log()
    async with backend.store() as store:
        for event in events:
            await store.append(ev.stream_of(event), [event], correlation_id="c\x00d")
        head = await store.head()
        assert head == len(events)
        endings = ["PaymentDeclined", "PaymentAbandoned"]
        for bound in (0, 1, head // 3, head // 2, head - 1, head, head + 10):
            for prefix, types in (
                ("payment-", None),
                ("payment-", endings),
                ("payment-a\x00", endings),
                ("payment-A\\u", None),
                ("channel-", ["ChannelStatusChanged"]),
                ("", None),
                ("nothing-", None),
            ):
                want = await EventStore.stream_bounds(store, prefix, types=types, to_position=bound)
                got = await store.stream_bounds(prefix, types=types, to_position=bound)
                assert got == want, (prefix, types, bound)
            for account in [*ODD, "a\x00c", "A", "A\\"]:
                if backend.kind == "sqlite" and (
                    "\x00" in account or any(o.startswith(f"{account}\x00") for o in ODD)
                ):
                    continue  # test_payments_of_an_account_holding_nul
                want_ids = await EventStore.payments_of(store, account, to_position=bound)
                assert await store.payments_of(account, to_position=bound) == want_ids, account
            for stream in ("channel-huabei", "channel-jiebei", "payment-a\x00b/1", "account-x"):
                want_last = await EventStore.last_event(store, stream, to_position=bound)
                assert await store.last_event(stream, to_position=bound) == want_last
        assert await store.payments_of("A\\u0000") == ["A\\u0000/0", "A\\u0000/1"]
        # pages of rows, whole and filtered
        quiet = ["PaymentRequested", "AccountOpened"]
        keep = ["payment-a\x00b/0", "payment-\x00/1", "payment-none"]
        for low, high in ((1, head), (1, 1), (5, 17), (head, head + 5), (7, 3), (0, 4)):
            for skip, kept in (((), ()), (quiet, ()), (quiet, keep)):
                want_rows = await EventStore.read_rows(
                    store, low, high, skip_types=skip, keep_streams=kept
                )
                got_rows = await store.read_rows(low, high, skip_types=skip, keep_streams=kept)
                assert [tuple(r) for r in got_rows] == [tuple(r) for r in want_rows]
                assert [record_from_row(r) for r in got_rows] == [
                    record_from_row(r) for r in want_rows
                ]
        rows = await store.read_rows(1, head, skip_types=quiet, keep_streams=keep)
        assert {r[1] for r in rows if r[3] in quiet} == {"payment-a\x00b/0", "payment-\x00/1"}


async def test_payload_reads_agree_with_a_plain_read_of_the_log(backend: Backend) -> None:
    """``read_payloads`` (with and without the stream, filtered or not), ``read_json_page``
    and ``read_account_events``, each against the generic default."""
    events = _log()
    async with backend.store() as store:
        for event in events:
            await store.append(ev.stream_of(event), [event])
        head = await store.head()
        quiet = ["PaymentRequested", "AccountOpened"]
        keep = ["payment-a\x00b/0", "payment-\x00/1", "payment-none"]
        for low, high in ((1, head), (1, 1), (5, 17), (head, head + 5), (7, 3), (0, 4)):
            for skip, kept in (((), ()), (quiet, ()), (quiet, keep)):
                for with_stream in (False, True):
                    want = await EventStore.read_payloads(
                        store,
                        low,
                        high,
                        skip_types=skip,
                        keep_streams=kept,
                        with_stream=with_stream,
                    )
                    got = await store.read_payloads(
                        low, high, skip_types=skip, keep_streams=kept, with_stream=with_stream
                    )
                    assert [tuple(r) for r in got] == [tuple(r) for r in want]
            page = await store.read_json_page(low, high)
            assert page == await EventStore.read_json_page(store, low, high)
            assert page is not None
            pairs = msgspec.json.decode(page)
            rows = await store.read_rows(low, high)
            assert [p for p, _ in pairs] == [r[0] for r in rows]
            assert [ev.DECODER.decode(msgspec.json.encode(e)) for _, e in pairs] == [
                record_from_row(r).event for r in rows
            ]
        credit = ["PaymentDeclined", "PaymentAbandoned"]
        for account in [*ODD, "nobody"]:
            for bound in (None, 0, head // 2, head):
                want_events = await EventStore.read_account_events(
                    store, account, types=credit, to_position=bound
                )
                got_events = await store.read_account_events(
                    account, types=credit, to_position=bound
                )
                assert [tuple(r) for r in got_events] == [tuple(r) for r in want_events], account
        some = await store.read_account_events("A1", types=credit)
        assert {r[1] for r in some} == {"AccountOpened", "PaymentDeclined", "PaymentAbandoned"}


@pytest.mark.parametrize(
    "backend",
    [
        "memory",
        "sqlite",
        "postgres",
    ],
    indirect=True,
)
async def test_payments_of_an_account_holding_nul(backend: Backend) -> None:
    async with backend.store() as store:
        for account in ("a\x00b", "a\x00c", "a", "a\ufffdb"):
            await store.append(f"payment-{account}", [_requested(account, account, 1)])
        assert await store.payments_of("a\x00b") == ["a\x00b"]
        assert await store.payments_of("a\x00") == []
        assert await store.payments_of("a") == ["a"]
