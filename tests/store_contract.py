"""The event store's contract, as an abstract test suite (rules 1-7 of :mod:`ledger.store`).

Each backend's test module subclasses :class:`StoreContract` and implements :meth:`make_store`;
every test here then runs against that backend. Helpers for building events live here too, so
the backend modules share them.
"""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, ClassVar

import anyio
import msgspec
import pytest

from ledger import (
    AppendResult,
    ConcurrencyError,
    DuplicateEventError,
    EventStore,
    EventValidationError,
    FormatError,
    ImportItem,
    IntegrityReport,
    Record,
    StoreClosedError,
)
from ledger.codec import decode_line, encode_record
from ledger.events import (
    AccountOpened,
    ChannelStatusChanged,
    CreditLineOpened,
    CreditStatusChanged,
    Event,
    PaymentAttempted,
    PaymentDeclined,
    PaymentRequested,
    RepaymentMade,
    UnknownEvent,
)

__all__ = [
    "HOSTILE",
    "T0",
    "StoreContract",
    "attempted",
    "collect",
    "opened",
    "requested",
    "status",
]

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def opened(account: str, minutes: int = 0, holder: str = "h-1") -> AccountOpened:
    """An ``AccountOpened`` for ``account-<account>``."""
    return AccountOpened(
        account_id=account, holder_ref=holder, occurred_at=T0 + timedelta(minutes=minutes)
    )


def requested(payment: str, amount: int = 3_000_000, minutes: int = 0) -> PaymentRequested:
    """A ``PaymentRequested`` for ``payment-<payment>``."""
    return PaymentRequested(
        payment_id=payment,
        account_id="A1",
        merchant="zd-auto",
        scenario="car_loan_down_payment",
        amount_minor=amount,
        currency="CNY",
        preferred_channel="huabei",
        occurred_at=T0 + timedelta(minutes=minutes),
    )


def attempted(payment: str, attempt: int = 1, minutes: int = 0) -> PaymentAttempted:
    """A ``PaymentAttempted`` for ``payment-<payment>``."""
    return PaymentAttempted(
        payment_id=payment,
        attempt=attempt,
        channel="huabei",
        amount_minor=3_000_000,
        occurred_at=T0 + timedelta(minutes=minutes),
    )


def status(channel: str, value: str = "down", minutes: int = 0) -> ChannelStatusChanged:
    """A ``ChannelStatusChanged`` for ``channel-<channel>``."""
    event = ChannelStatusChanged(
        channel=channel, status="down", reason="outage", occurred_at=T0 + timedelta(minutes=minutes)
    )
    return msgspec.structs.replace(event, status=value)


async def collect(records: AsyncIterator[Record]) -> list[Record]:
    """Every record of an async iterator, in order."""
    return [record async for record in records]


def _ids(n: int) -> list[str]:
    return [str(uuid.uuid4()) for _ in range(n)]


HOSTILE: list[str] = [
    "'; DROP TABLE events; --",
    '" OR 1=1 --',
    "%",
    "_",
    "a%b_c",
    "a\x00b",
    "\x00",
    "back\\slash",
    "ünï-😀",
    "[1,2]",
]
"""Values that must be data, not SQL (nor LIKE patterns, nor C strings)."""

LONG = "x" * 10_000


class StoreContract(ABC):
    """The contract every :class:`ledger.EventStore` backend passes."""

    pytestmark: ClassVar[list[pytest.MarkDecorator]] = [pytest.mark.anyio]
    tmp_path: Path

    @pytest.fixture(autouse=True)
    def _remember_tmp_path(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path

    @abstractmethod
    def make_store(self) -> AbstractAsyncContextManager[EventStore]:
        """An empty store of the backend under test, closed on exit."""

    # --- append and read ---------------------------------------------------------------

    async def test_append_read_round_trip(self) -> None:
        events = [requested("P1"), attempted("P1", minutes=1), attempted("P1", 2, minutes=2)]
        async with self.make_store() as store:
            assert await store.head() == 0
            result = await store.append(
                "payment-P1", events, correlation_id="order-77", causation_id="cmd-1"
            )
            assert result.positions == (1, 2, 3)
            assert result.version == 3
            assert result.duplicate is False
            records = await collect(store.read_stream("payment-P1"))
            assert [r.event for r in records] == events
            assert [r.position for r in records] == [1, 2, 3]
            assert [r.version for r in records] == [1, 2, 3]
            assert {r.stream for r in records} == {"payment-P1"}
            assert {r.correlation_id for r in records} == {"order-77"}
            assert {r.causation_id for r in records} == {"cmd-1"}
            assert len({r.event_id for r in records}) == 3
            for r in records:
                uuid.UUID(r.event_id)
                assert r.recorded_at.utcoffset() == timedelta(0)
                assert r.type == type(r.event).__name__
            assert await store.head() == 3
            assert await store.stream_version("payment-P1") == 3
            assert await store.stream_version("payment-P2") == 0
            assert await collect(store.read_stream("payment-P2")) == []

    async def test_explicit_event_ids_are_kept(self) -> None:
        ids = _ids(2)
        async with self.make_store() as store:
            await store.append(
                "payment-P1", [requested("P1"), attempted("P1")], event_ids=[ids[0], ids[1]]
            )
            records = await collect(store.read_all())
            assert [r.event_id for r in records] == ids

    async def test_uuid_objects_and_uppercase_ids_are_normalized(self) -> None:
        eid = uuid.uuid4()
        async with self.make_store() as store:
            await store.append("payment-P1", [requested("P1")], event_ids=[eid])
            again = await store.append(
                "payment-P1", [requested("P1")], event_ids=[str(eid).upper()]
            )
            assert again.duplicate is True
            assert [r.event_id for r in await collect(store.read_all())] == [str(eid)]

    async def test_empty_append_appends_nothing(self) -> None:
        async with self.make_store() as store:
            result = await store.append("payment-P1", [], expected_version=0)
            assert result.positions == ()
            assert result.version == 0
            with pytest.raises(ConcurrencyError):
                await store.append("payment-P1", [], expected_version=1)
            assert await store.head() == 0

    async def test_expected_version(self) -> None:
        async with self.make_store() as store:
            first = await store.append("payment-P1", [requested("P1")], expected_version=0)
            assert first.version == 1
            second = await store.append("payment-P1", [attempted("P1")], expected_version=1)
            assert second.positions == (2,)
            anyv = await store.append("payment-P1", [attempted("P1", 2)], expected_version=None)
            assert anyv.version == 3
            for expected in (0, 2, 4, 100):
                with pytest.raises(ConcurrencyError) as info:
                    await store.append(
                        "payment-P1",
                        [attempted("P1", 3), attempted("P1", 4)],
                        expected_version=expected,
                    )
                assert info.value.stream == "payment-P1"
                assert info.value.expected == expected
                assert info.value.actual == 3
                assert "payment-P1" in str(info.value)
                assert str(expected) in str(info.value)
            with pytest.raises(ConcurrencyError) as info:
                await store.append("payment-P2", [requested("P2")], expected_version=1)
            assert (info.value.stream, info.value.expected, info.value.actual) == (
                "payment-P2",
                1,
                0,
            )
            assert await store.head() == 3
            assert await store.stream_version("payment-P1") == 3
            assert await store.stream_version("payment-P2") == 0
            assert (await store.verify()).ok

    @pytest.mark.parametrize("bad", [-1, True, 1.0, "1"])
    async def test_expected_version_must_be_an_integer(self, bad: Any) -> None:
        async with self.make_store() as store:
            with pytest.raises(ValueError, match="expected_version"):
                await store.append("payment-P1", [requested("P1")], expected_version=bad)
            assert await store.head() == 0

    async def test_multi_event_append_is_atomic(self) -> None:
        async with self.make_store() as store:
            await store.append("payment-P0", [requested("P0")])
            bad = [requested("P1"), attempted("P1"), attempted("P9"), attempted("P1", 2)]
            with pytest.raises(EventValidationError) as info:
                await store.append("payment-P1", bad)
            assert info.value.index == 2
            assert info.value.stream == "payment-P1"
            assert await store.head() == 1
            assert await store.stream_version("payment-P1") == 0
            result = await store.append("payment-P1", bad[:2])
            assert result.positions == (2, 3)

    async def test_positions_are_gap_free_across_streams(self) -> None:
        async with self.make_store() as store:
            await store.append("payment-P1", [requested("P1")])
            await store.append("account-A1", [opened("A1")])
            with pytest.raises(ConcurrencyError):
                await store.append("payment-P1", [attempted("P1")], expected_version=0)
            await store.append("payment-P1", [attempted("P1"), attempted("P1", 2)])
            await store.append("channel-huabei", [status("huabei")])
            records = await collect(store.read_all())
            assert [r.position for r in records] == [1, 2, 3, 4, 5]
            assert [(r.stream, r.version) for r in records] == [
                ("payment-P1", 1),
                ("account-A1", 1),
                ("payment-P1", 2),
                ("payment-P1", 3),
                ("channel-huabei", 1),
            ]

    async def test_read_stream_from_version_and_to_position(self) -> None:
        async with self.make_store() as store:
            for i in range(1, 6):
                await store.append("payment-P1", [attempted("P1", i)])
                await store.append("payment-P2", [attempted("P2", i)])
            # payment-P1 is at positions 1, 3, 5, 7, 9
            got = await collect(store.read_stream("payment-P1", from_version=3))
            assert [r.version for r in got] == [3, 4, 5]
            got = await collect(store.read_stream("payment-P1", to_position=6))
            assert [r.position for r in got] == [1, 3, 5]
            got = await collect(store.read_stream("payment-P1", 2, to_position=7))
            assert [(r.version, r.position) for r in got] == [(2, 3), (3, 5), (4, 7)]
            assert await collect(store.read_stream("payment-P1", 6)) == []
            got = await collect(store.read_stream("payment-P1", 0))
            assert [r.version for r in got] == [1, 2, 3, 4, 5]

    async def test_read_all_ranges_and_paging(self) -> None:
        total = 2_345
        async with self.make_store() as store:
            for start in range(0, total, 500):
                await store.import_events(
                    ImportItem(stream=f"account-A{i}", event=opened(f"A{i}", minutes=i))
                    for i in range(start, min(start + 500, total))
                )
            records = await collect(store.read_all())
            assert [r.position for r in records] == list(range(1, total + 1))
            assert [r.event for r in records] == [opened(f"A{i}", minutes=i) for i in range(total)]
            got = await collect(store.read_all(999, to_position=2_001))
            assert [r.position for r in got] == list(range(999, 2_002))
            got = await collect(store.read_all(1_000, page_size=7))
            assert [r.position for r in got] == list(range(1_000, total + 1))
            got = await collect(store.read_all(1, to_position=1_000, page_size=1_000))
            assert [r.position for r in got] == list(range(1, 1_001))
            assert await collect(store.read_all(total + 1)) == []
            assert await collect(store.read_all(5, to_position=4)) == []
            got = await collect(store.read_all(-3, to_position=2))
            assert [r.position for r in got] == [1, 2]

    @pytest.mark.parametrize("page_size", [0, -1, True])
    async def test_read_all_refuses_a_bad_page_size(self, page_size: int) -> None:
        async with self.make_store() as store:
            await store.append("payment-P1", [requested("P1")])
            with anyio.fail_after(10), pytest.raises(ValueError, match="page_size"):
                await collect(store.read_all(page_size=page_size))

    async def test_read_stream_pages_past_1000_versions(self) -> None:
        async with self.make_store() as store:
            await store.append("payment-P1", [attempted("P1", i) for i in range(1, 1_202)])
            await store.append("payment-P2", [attempted("P2")])
            got = await collect(store.read_stream("payment-P1"))
            assert [r.version for r in got] == list(range(1, 1_202))
            got = await collect(store.read_stream("payment-P1", 1_000))
            assert [r.version for r in got] == list(range(1_000, 1_202))

    async def test_read_streams_interleaves_in_position_order(self) -> None:
        async with self.make_store() as store:
            await store.append("payment-P1", [requested("P1")])
            await store.append("account-A1", [opened("A1")])
            await store.append("channel-huabei", [status("huabei")])
            await store.append("payment-P1", [attempted("P1")])
            await store.append("payment-P2", [requested("P2")])
            await store.append("account-A1", [opened("A1", 5)])
            got = await collect(store.read_streams(["payment-P1", "account-A1", "nope"]))
            assert [(r.position, r.stream) for r in got] == [
                (1, "payment-P1"),
                (2, "account-A1"),
                (4, "payment-P1"),
                (6, "account-A1"),
            ]
            got = await collect(
                store.read_streams(
                    iter(["account-A1", "payment-P1"]), from_position=2, to_position=4
                )
            )
            assert [r.position for r in got] == [2, 4]
            assert await collect(store.read_streams([])) == []

    # --- query -------------------------------------------------------------------------

    async def _query_fixture(self, store: EventStore) -> None:
        await store.append("payment-P1", [requested("P1", minutes=0)], correlation_id="o-1")
        await store.append("account-A1", [opened("A1", minutes=10)], correlation_id="o-2")
        await store.append("payment-P1", [attempted("P1", minutes=20)], correlation_id="o-1")
        await store.append("channel-huabei", [status("huabei", minutes=30)])
        await store.append("payment-P2", [requested("P2", minutes=40)], correlation_id="o-2")

    async def _positions(self, store: EventStore, **filters: Any) -> list[int]:
        return [r.position for r in await collect(store.query(**filters))]

    async def test_query_filters(self) -> None:
        async with self.make_store() as store:
            await self._query_fixture(store)
            assert await self._positions(store) == [1, 2, 3, 4, 5]
            assert await self._positions(store, stream="payment-P1") == [1, 3]
            assert await self._positions(store, types=["PaymentRequested"]) == [1, 5]
            assert await self._positions(
                store, types=["PaymentAttempted", "ChannelStatusChanged"]
            ) == [3, 4]
            assert await self._positions(store, since=T0 + timedelta(minutes=20)) == [3, 4, 5]
            assert await self._positions(store, until=T0 + timedelta(minutes=20)) == [1, 2, 3]
            assert await self._positions(
                store, since=T0 + timedelta(minutes=10), until=T0 + timedelta(minutes=30)
            ) == [2, 3, 4]
            one_us = timedelta(microseconds=1)
            assert await self._positions(
                store,
                since=T0 + timedelta(minutes=10) + one_us,
                until=T0 + timedelta(minutes=30) - one_us,
            ) == [3]
            assert await self._positions(store, correlation_id="o-2") == [2, 5]
            assert await self._positions(
                store, stream="payment-P1", correlation_id="o-1", types=["PaymentAttempted"]
            ) == [3]
            assert await self._positions(store, correlation_id="o-1", from_position=2) == [3]
            assert await self._positions(store, types=["PaymentRequested"], to_position=4) == [1]
            assert await self._positions(store, stream="payment-P3") == []
            assert await self._positions(store, types=["NoSuchType"]) == []
            eight = timezone(timedelta(hours=8))
            assert await self._positions(
                store, since=(T0 + timedelta(minutes=40)).astimezone(eight)
            ) == [5]

    @pytest.mark.parametrize("value", [*HOSTILE, LONG], ids=range(len(HOSTILE) + 1))
    async def test_hostile_filter_values_are_data(self, value: str) -> None:
        async with self.make_store() as store:
            await self._query_fixture(store)
            assert await self._positions(store, stream=value) == []
            assert await self._positions(store, types=[value]) == []
            assert await self._positions(store, types=["PaymentRequested" + value]) == []
            assert await self._positions(store, types=[value, "AccountOpened"]) == [2]
            assert await self._positions(store, correlation_id=value) == []
            assert await self._positions(store, correlation_id="o-1" + value) == []
            assert await collect(store.read_stream(value)) == []
            assert await collect(store.read_stream("payment-P1" + value)) == []
            assert await collect(store.read_streams([value, "payment-P1" + value])) == []
            assert await store.stream_version(value) == 0
            assert await store.head() == 5
            assert (await store.verify()).ok

    @pytest.mark.parametrize("value", HOSTILE, ids=range(len(HOSTILE)))
    async def test_hostile_values_round_trip(self, value: str) -> None:
        twin = value.replace("\x00", "\x01") + "-twin"
        async with self.make_store() as store:
            await store.append("payment-P0", [requested("P0")], correlation_id="plain")
            await store.append(f"account-{twin}", [opened(twin)], correlation_id=twin)
            event = opened(value, holder=value)
            await store.append(f"account-{value}", [event], correlation_id=value)
            await store.append(
                f"account-{value}", [opened(value, 1, holder="z" * 256)], expected_version=1
            )
            got = await collect(store.read_stream(f"account-{value}"))
            assert [r.position for r in got] == [3, 4]
            assert got[0].event == event
            assert got[0].correlation_id == value
            assert await self._positions(store, stream=f"account-{value}") == [3, 4]
            assert await self._positions(store, correlation_id=value) == [3]
            assert [
                r.position for r in await collect(store.read_streams([f"account-{value}"]))
            ] == [
                3,
                4,
            ]
            assert await store.stream_version(f"account-{value}") == 2
            assert await store.stream_version(f"account-{twin}") == 1
            assert (await store.verify()).ok

    async def test_long_text_round_trips_and_overlong_is_rejected(self) -> None:
        reason = "r" * 4096
        event = ChannelStatusChanged(channel="huabei", status="down", reason=reason, occurred_at=T0)
        async with self.make_store() as store:
            await store.append("channel-huabei", [event])
            (record,) = await collect(store.read_all())
            assert record.event == event
            with pytest.raises(EventValidationError) as info:
                await store.append("channel-huabei", [msgspec.structs.replace(event, reason=LONG)])
            assert info.value.field == "reason"
            with pytest.raises(EventValidationError):
                await store.append(f"account-{LONG}", [opened(LONG)])
            assert await store.head() == 1

    # --- idempotency -------------------------------------------------------------------

    async def test_exact_retry_is_idempotent(self) -> None:
        ids = _ids(2)
        events = [requested("P1"), attempted("P1")]
        async with self.make_store() as store:
            first = await store.append("payment-P1", events, event_ids=ids, expected_version=0)
            await store.append("payment-P2", [requested("P2")])
            retry = await store.append("payment-P1", events, event_ids=ids, expected_version=0)
            assert retry.duplicate is True
            assert retry.positions == first.positions == (1, 2)
            assert retry.version == 2
            single = await store.append("payment-P1", events[1:], event_ids=ids[1:])
            assert single.duplicate is True
            assert single.positions == (2,)
            assert await store.head() == 3

    async def test_same_id_other_content_is_rejected(self) -> None:
        ids = _ids(1)
        async with self.make_store() as store:
            await store.append("payment-P1", [requested("P1")], event_ids=ids)
            with pytest.raises(DuplicateEventError) as info:
                await store.append("payment-P1", [requested("P1", amount=1)], event_ids=ids)
            assert info.value.event_id == ids[0]
            assert info.value.position == 1
            with pytest.raises(DuplicateEventError):
                await store.append("payment-P2", [requested("P2")], event_ids=ids)
            assert await store.head() == 1

    async def test_generated_ids_are_known_to_later_calls(self) -> None:
        async with self.make_store() as store:
            await store.append("payment-P1", [requested("P1")])
            (record,) = await collect(store.read_all())
            retry = await store.append("payment-P1", [requested("P1")], event_ids=[record.event_id])
            assert retry.duplicate is True
            with pytest.raises(DuplicateEventError):
                await store.append("payment-P1", [attempted("P1")], event_ids=[record.event_id])
            assert await store.head() == 1

    async def test_mixing_stored_and_new_ids_is_rejected(self) -> None:
        ids = _ids(3)
        async with self.make_store() as store:
            await store.append("payment-P1", [requested("P1")], event_ids=ids[:1])
            with pytest.raises(DuplicateEventError, match="mixes"):
                await store.append(
                    "payment-P1", [requested("P1"), attempted("P1")], event_ids=ids[:2]
                )
            with pytest.raises(DuplicateEventError):
                await store.append(
                    "payment-P1", [attempted("P1"), requested("P1")], event_ids=[ids[2], ids[0]]
                )
            assert await store.head() == 1
            assert await store.stream_version("payment-P1") == 1

    async def test_repeated_id_within_one_call_is_rejected(self) -> None:
        eid = str(uuid.uuid4())
        async with self.make_store() as store:
            with pytest.raises(EventValidationError) as info:
                await store.append(
                    "payment-P1", [requested("P1"), attempted("P1")], event_ids=[eid, eid]
                )
            assert info.value.field == "event_id"
            assert info.value.index == 1
            assert await store.head() == 0

    # --- validation --------------------------------------------------------------------

    @pytest.mark.parametrize(
        ("stream", "event", "field"),
        [
            ("account-B", opened("A"), None),
            ("payment-A", opened("A"), None),
            ("account-", opened(""), "account_id"),
            ("account-A", opened("A", holder=""), "holder_ref"),
            (
                "account-A",
                msgspec.structs.replace(
                    opened("A"), occurred_at=T0.astimezone(timezone(timedelta(hours=8)))
                ),
                "occurred_at",
            ),
            (
                "account-A",
                msgspec.structs.replace(opened("A"), occurred_at=T0.replace(tzinfo=None)),
                "occurred_at",
            ),
            (
                "account-A",
                RepaymentMade(account_id="A", product="huabei", amount_minor=0, occurred_at=T0),
                "amount_minor",
            ),
            (
                "account-A",
                RepaymentMade(account_id="A", product="huabei", amount_minor=-5, occurred_at=T0),
                "amount_minor",
            ),
            ("payment-P", msgspec.structs.replace(requested("P"), amount_minor=0), "amount_minor"),
            (
                "account-A",
                CreditLineOpened(
                    account_id="A",
                    product="huabei",
                    limit_minor=-1,
                    currency="CNY",
                    occurred_at=T0,
                ),
                "limit_minor",
            ),
            ("payment-P", msgspec.structs.replace(requested("P"), currency="cny"), "currency"),
            (
                "account-A",
                msgspec.structs.replace(
                    CreditStatusChanged(
                        account_id="A",
                        product="huabei",
                        old_status="active",
                        new_status="frozen",
                        reason="risk",
                        occurred_at=T0,
                    ),
                    new_status="melted",
                ),
                "new_status",
            ),
            ("channel-huabei", status("huabei", "sideways"), "status"),
            (
                "channel-huabei",
                msgspec.structs.replace(
                    status("huabei"), expected_until=T0.astimezone(timezone(timedelta(hours=-5)))
                ),
                "expected_until",
            ),
            (
                "channel-huabei",
                msgspec.structs.replace(status("huabei"), expected_until=T0.replace(tzinfo=None)),
                "expected_until",
            ),
            (
                "payment-P",
                msgspec.structs.replace(
                    PaymentDeclined(
                        payment_id="P",
                        attempt=1,
                        channel="huabei",
                        code="timeout",
                        message="",
                        occurred_at=T0,
                    ),
                    code="because",
                ),
                "code",
            ),
            ("payment-P", msgspec.structs.replace(attempted("P"), attempt=0), "attempt"),
            (
                "payment-P",
                msgspec.structs.replace(attempted("P"), amount_minor="1"),
                "amount_minor",
            ),
        ],
        ids=lambda v: v if isinstance(v, str) or v is None else type(v).__name__,
    )
    async def test_invalid_events_are_rejected(
        self, stream: str, event: Event, field: str | None
    ) -> None:
        async with self.make_store() as store:
            await store.append("payment-Z", [requested("Z")])
            with pytest.raises(EventValidationError) as info:
                await store.append(stream, [event])
            assert info.value.field == field
            assert info.value.stream == stream
            assert info.value.index == 0
            if field is not None:
                assert repr(field) in str(info.value)
            assert await store.head() == 1

    async def test_call_shape_is_validated(self) -> None:
        async with self.make_store() as store:
            with pytest.raises(EventValidationError):
                await store.append("", [opened("A")])
            with pytest.raises(EventValidationError, match="list of events"):
                await store.append("account-A", opened("A"))  # type: ignore[arg-type]
            with pytest.raises(EventValidationError, match="event_ids"):
                await store.append("account-A", [opened("A")], event_ids=_ids(2))
            with pytest.raises(EventValidationError) as info:
                await store.append("account-A", [opened("A")], event_ids=["not-a-uuid"])
            assert info.value.field == "event_id"
            with pytest.raises(EventValidationError, match="correlation_id"):
                await store.append("account-A", [opened("A")], correlation_id="")
            with pytest.raises(EventValidationError, match="causation_id"):
                await store.append("account-A", [opened("A")], causation_id="c" * 257)
            with pytest.raises(EventValidationError, match="correlation_id"):
                await store.append("account-A", [opened("A")], correlation_id="bad\ud800")
            with pytest.raises(EventValidationError, match="encoded"):
                await store.append("account-A", [opened("A\ud800")])
            foreign = msgspec.structs.replace(opened("A"), holder_ref=object())
            with pytest.raises(EventValidationError, match="encoded"):
                await store.append("account-A", [foreign])
            unknown = UnknownEvent(occurred_at=T0, type_name="X", payload="{}", position=1)
            with pytest.raises(EventValidationError, match="not an event type"):
                await store.append("account-A", [unknown])
            assert await store.head() == 0

    # --- import ------------------------------------------------------------------------

    async def test_import_is_atomic_when_the_iterable_raises(self) -> None:
        def items() -> Iterator[ImportItem]:
            yield ImportItem(stream="payment-P1", event=requested("P1"), line=1)
            yield ImportItem(stream="payment-P1", event=attempted("P1"), line=2)
            raise RuntimeError("the source broke")

        async with self.make_store() as store:
            await store.append("payment-P0", [requested("P0")])
            with pytest.raises(RuntimeError, match="source broke"):
                await store.import_events(items())
            assert await store.head() == 1
            assert await store.stream_version("payment-P1") == 0
            assert (await store.verify()).ok

    async def test_import_rejects_a_bad_item_and_appends_nothing(self) -> None:
        async with self.make_store() as store:
            items = [
                ImportItem(stream="payment-P1", event=requested("P1"), line=1),
                ImportItem(stream="payment-P2", event=attempted("P1"), line=7),
            ]
            with pytest.raises(FormatError) as info:
                await store.import_events(items)
            assert info.value.line == 7
            assert await store.head() == 0

    async def test_import_conflicting_id_is_a_format_error(self) -> None:
        ids = _ids(1)
        async with self.make_store() as store:
            await store.append("payment-P1", [requested("P1")], event_ids=ids)
            items = [
                ImportItem(stream="payment-P2", event=requested("P2"), line=1),
                ImportItem(
                    stream="payment-P1", event=requested("P1", amount=5), event_id=ids[0], line=2
                ),
            ]
            with pytest.raises(FormatError) as info:
                await store.import_events(items)
            assert (info.value.line, info.value.field) == (2, "event_id")
            assert await store.head() == 1

    async def test_import_skips_exact_duplicates_and_reimport_adds_nothing(self) -> None:
        ids = _ids(3)
        async with self.make_store() as store:
            await store.append("payment-P1", [requested("P1")], event_ids=ids[:1])
            items = [
                ImportItem(stream="payment-P1", event=requested("P1"), event_id=ids[0], line=1),
                ImportItem(stream="payment-P1", event=attempted("P1"), event_id=ids[1], line=2),
                ImportItem(stream="account-A1", event=opened("A1"), event_id=ids[2], line=3),
                ImportItem(stream="account-A1", event=opened("A1"), event_id=ids[2], line=4),
            ]
            result = await store.import_events(items)
            assert (result.appended, result.skipped) == (2, 2)
            assert (result.first_position, result.last_position) == (2, 3)
            before = await store.verify()
            exported = [encode_record(r) for r in await collect(store.read_all())]
            again = await store.import_events(
                decode_line(line, n) for n, line in enumerate(exported, 1)
            )
            assert (again.appended, again.skipped) == (0, 3)
            assert again.first_position is None
            assert await store.head() == 3
            assert (await store.verify()).head_hash == before.head_hash

    async def test_import_async_iterable_and_export_round_trip(self) -> None:
        async with self.make_store() as source:
            await source.append(
                "payment-P1",
                [requested("P1"), attempted("P1")],
                correlation_id="o-1",
                causation_id="c-1",
            )
            await source.append("account-A1", [opened("A1")])
            await source.append("channel-huabei", [status("huabei", "maintenance")])
            lines = [encode_record(r) for r in await collect(source.read_all())]
            source_report = await source.verify()
            original = await collect(source.read_all())

        async def items() -> AsyncIterator[ImportItem]:
            for n, line in enumerate(lines, 1):
                await anyio.lowlevel.checkpoint()
                yield decode_line(line, n)

        async with self.make_store() as target:
            result = await target.import_events(items())
            assert (result.appended, result.first_position, result.last_position) == (4, 1, 4)
            copied = await collect(target.read_all())
            assert copied == original
            report = await target.verify()
            assert report.ok
            assert report.head_hash == source_report.head_hash

    # --- integrity, positions in time, waiting, closing --------------------------------

    async def test_verify_healthy_store(self) -> None:
        async with self.make_store() as store:
            empty = await store.verify()
            assert empty.ok
            assert (empty.checked, empty.head_position) == (0, 0)
            assert empty.head_hash == bytes(32).hex()
            await store.append("payment-P1", [requested("P1"), attempted("P1")])
            await store.append("account-A1", [opened("A1")])
            report = await store.verify()
            assert report.ok
            assert (report.checked, report.head_position) == (3, 3)
            assert report.first_bad_position is None
            assert report.head_hash != empty.head_hash
            await store.append("account-A1", [opened("A1", 1)])
            assert (await store.verify()).head_hash != report.head_hash

    async def test_position_at(self) -> None:
        async with self.make_store() as store:
            assert await store.position_at(T0) == 0
            await store.append("payment-P1", [requested("P1", minutes=0)])
            await store.append("payment-P2", [requested("P2", minutes=10)])
            await store.append("payment-P3", [requested("P3", minutes=5)])
            assert await store.position_at(T0 - timedelta(microseconds=1)) == 0
            assert await store.position_at(T0) == 1
            assert await store.position_at(T0 + timedelta(minutes=5)) == 3
            assert await store.position_at(T0 + timedelta(minutes=9)) == 3
            assert await store.position_at(T0 + timedelta(minutes=10)) == 3
            assert await store.position_at(T0 + timedelta(days=1)) == 3

    async def test_wait_for_append_wakes_on_append(self) -> None:
        woke: list[int] = []
        async with self.make_store() as store:
            await store.append("payment-P1", [requested("P1")])
            assert await store.wait_for_append(0) == 1

            async def waiter() -> None:
                woke.append(await store.wait_for_append(1))

            with anyio.fail_after(30):  # a hang guard, not a timing assertion
                async with anyio.create_task_group() as tg:
                    tg.start_soon(waiter)
                    await anyio.wait_all_tasks_blocked()
                    assert woke == []
                    await store.append("payment-P2", [requested("P2"), attempted("P2")])
            assert woke == [3]
            with anyio.move_on_after(0.05) as scope:
                await store.wait_for_append(3)
            assert scope.cancelled_caught

    async def test_closed_store_refuses_calls(self) -> None:
        async with self.make_store() as store:
            await store.append("payment-P1", [requested("P1")])
            await store.aclose()
            with pytest.raises(StoreClosedError):
                await store.append("payment-P2", [requested("P2")])
            with pytest.raises(StoreClosedError):
                await collect(store.read_all())
            with pytest.raises(StoreClosedError):
                await store.head()
            await store.aclose()  # closing twice is harmless

    # --- concurrency -------------------------------------------------------------------

    async def test_many_tasks_appending_at_once(self) -> None:
        tasks, rounds, streams = 64, 4, 16
        results: list[tuple[int, ...]] = []
        async with self.make_store() as store:

            async def worker(i: int) -> None:
                payment = f"P{i % streams}"
                for r in range(rounds):
                    result = await store.append(
                        f"payment-{payment}",
                        [attempted(payment, i * rounds + r + 1), attempted(payment, 10_000)],
                        correlation_id=f"w{i}",
                    )
                    results.append(result.positions)

            with anyio.fail_after(60):  # a hang guard
                async with anyio.create_task_group() as tg:
                    for i in range(tasks):
                        tg.start_soon(worker, i)
            total = tasks * rounds * 2
            records = await collect(store.read_all())
            assert [r.position for r in records] == list(range(1, total + 1))
            assert sorted(p for ps in results for p in ps) == list(range(1, total + 1))
            for positions in results:  # each call's events are contiguous
                assert list(positions) == list(range(positions[0], positions[0] + 2))
            by_stream: dict[str, list[int]] = {}
            for r in records:
                by_stream.setdefault(r.stream, []).append(r.version)
            assert len(by_stream) == streams
            for versions in by_stream.values():
                assert versions == list(range(1, len(versions) + 1))
            report = await store.verify()
            assert report.ok
            assert report.head_position == total

    async def test_racing_creators_exactly_one_wins(self) -> None:
        outcomes: list[str] = []
        async with self.make_store() as store:

            async def creator(i: int) -> None:
                try:
                    await store.append("payment-P1", [attempted("P1", i + 1)], expected_version=0)
                    outcomes.append("won")
                except ConcurrencyError as e:
                    outcomes.append(f"lost {e.expected}->{e.actual}")

            with anyio.fail_after(60):
                async with anyio.create_task_group() as tg:
                    for i in range(16):
                        tg.start_soon(creator, i)
            assert sorted(outcomes) == ["lost 0->1"] * 15 + ["won"]
            assert await store.head() == 1

    async def test_appends_during_an_import_complete(self) -> None:
        gate = anyio.Event()
        results: list[AppendResult] = []

        async def slow_items() -> AsyncIterator[ImportItem]:
            yield ImportItem(stream="payment-P1", event=requested("P1"), line=1)
            await gate.wait()
            yield ImportItem(stream="payment-P1", event=attempted("P1"), line=2)

        async with self.make_store() as store:

            async def appender(i: int) -> None:
                results.append(await store.append(f"payment-Q{i}", [requested(f"Q{i}")]))

            with anyio.fail_after(10):  # a hang guard
                async with anyio.create_task_group() as tg:
                    tg.start_soon(store.import_events, slow_items())
                    await anyio.wait_all_tasks_blocked()
                    for i in range(3):
                        tg.start_soon(appender, i)
                    await anyio.wait_all_tasks_blocked()
                    gate.set()
            assert sorted(p for r in results for p in r.positions) == [3, 4, 5] or sorted(
                p for r in results for p in r.positions
            ) == [1, 2, 3]
            assert await store.head() == 5
            assert (await store.verify()).ok

    async def test_closing_while_appends_are_in_flight(self) -> None:
        outcomes: list[str] = []
        async with self.make_store() as store:

            async def appender(i: int) -> None:
                try:
                    await store.append(f"payment-P{i}", [requested(f"P{i}")])
                    outcomes.append("appended")
                except StoreClosedError:
                    outcomes.append("closed")

            with anyio.fail_after(10):  # a hang guard
                async with anyio.create_task_group() as tg:
                    for i in range(20):
                        tg.start_soon(appender, i)
                    tg.start_soon(store.aclose)
                    for i in range(20, 40):
                        tg.start_soon(appender, i)
            assert len(outcomes) == 40
            assert "closed" in outcomes

    async def test_concurrent_retries_of_one_call(self) -> None:
        ids = _ids(2)
        events = [requested("P1"), attempted("P1")]
        results: list[AppendResult] = []
        conflicts: list[DuplicateEventError] = []
        async with self.make_store() as store:

            async def sender() -> None:
                results.append(await store.append("payment-P1", events, event_ids=ids))

            async def impostor() -> None:
                try:
                    await store.append(
                        "payment-P1", [requested("P1", 5), attempted("P1")], event_ids=ids
                    )
                except DuplicateEventError as e:
                    conflicts.append(e)

            with anyio.fail_after(10):  # a hang guard
                async with anyio.create_task_group() as tg:
                    tg.start_soon(sender)
                    for _ in range(7):
                        tg.start_soon(sender)
                        tg.start_soon(impostor)
            assert sorted(r.duplicate for r in results) == [False] + [True] * 7
            assert {r.positions for r in results} == {(1, 2)}
            assert len(conflicts) == 7
            assert await store.head() == 2

    async def test_verify_while_appending(self) -> None:
        reports: list[IntegrityReport] = []
        async with self.make_store() as store:
            await store.append("payment-P0", [requested("P0")])

            async def appender(i: int) -> None:
                for k in range(60):
                    await store.append(f"payment-P{i}", [attempted(f"P{i}", k + 1)])

            async def verifier() -> None:
                for _ in range(30):
                    reports.append(await store.verify())

            with anyio.fail_after(30):  # a hang guard
                async with anyio.create_task_group() as tg:
                    for i in range(4):
                        tg.start_soon(appender, i)
                    tg.start_soon(verifier)
            assert [r for r in reports if not r.ok] == []
            assert (await store.verify()).head_position == 241
