"""A hypothesis state machine of the event store against a plain model (a list and dicts).

Hypothesis rules are synchronous, so the async store runs in an event loop of its own, driven
through an anyio blocking portal. The same machine runs against every backend (PostgreSQL: a
fresh database per example).
"""

from __future__ import annotations

import tempfile
import uuid
from contextlib import AbstractAsyncContextManager, ExitStack
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import ClassVar

import msgspec
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from pg_support import fresh_database, server_url
from store_contract import T0, collect

from ledger import (
    AppendResult,
    ConcurrencyError,
    DuplicateEventError,
    EventStore,
    Record,
    open_store,
)
from ledger.events import AccountOpened, Event, PaymentAttempted

STREAMS = ("payment-P0", "payment-P1", "payment-P2", "account-A0", "account-A1")


def _event(stream: str, n: int) -> Event:
    """A valid event for ``stream``; ``n`` varies its content."""
    kind, _, key = stream.partition("-")
    when = T0 + timedelta(seconds=n)
    if kind == "account":
        return AccountOpened(account_id=key, holder_ref=f"h{n}", occurred_at=when)
    return PaymentAttempted(
        payment_id=key, attempt=n + 1, channel="huabei", amount_minor=100 + n, occurred_at=when
    )


@dataclass(frozen=True)
class _Call:
    """A successful append whose ids were given, kept for retries."""

    stream: str
    events: tuple[Event, ...]
    ids: tuple[str, ...]
    positions: tuple[int, ...]


class StoreMachine(RuleBasedStateMachine):
    """The store against a model of its log: ``(stream, version, event, event_id)`` per
    position."""

    backend: ClassVar[str] = "memory"

    def __init__(self) -> None:
        super().__init__()
        self._stack = ExitStack()
        self.portal: BlockingPortal = self._stack.enter_context(
            start_blocking_portal(backend="asyncio")
        )
        target = ":memory:"
        if self.backend == "sqlite":
            directory = self._stack.enter_context(tempfile.TemporaryDirectory())
            target = str(Path(directory) / "ledger.db")
        elif self.backend == "postgres":
            target = self._stack.enter_context(
                self.portal.wrap_async_context_manager(fresh_database())
            )
        opener: AbstractAsyncContextManager[EventStore] = open_store(target)
        self.store: EventStore = self._stack.enter_context(
            self.portal.wrap_async_context_manager(opener)
        )
        self.log: list[tuple[str, int, Event, str | None]] = []
        self.versions: dict[str, int] = {}
        self.calls: list[_Call] = []

    def teardown(self) -> None:
        self._stack.close()

    # --- helpers -----------------------------------------------------------------------

    def _append(
        self,
        stream: str,
        events: list[Event],
        expected: int | None,
        ids: list[str] | None,
    ) -> AppendResult:
        call = partial(self.store.append, stream, events, expected_version=expected, event_ids=ids)
        return self.portal.call(call)

    def _read_stream(self, stream: str, from_version: int) -> list[Record]:
        return self.portal.call(lambda: collect(self.store.read_stream(stream, from_version)))

    def _read_all(self, start: int, stop: int | None, page: int) -> list[Record]:
        return self.portal.call(
            lambda: collect(self.store.read_all(start, to_position=stop, page_size=page))
        )

    def _model(self, record: Record) -> None:
        stream, version, event, eid = self.log[record.position - 1]
        assert (record.stream, record.version, record.event) == (stream, version, event)
        if eid is not None:
            assert record.event_id == eid

    # --- rules -------------------------------------------------------------------------

    @rule(
        stream=st.sampled_from(STREAMS),
        seeds=st.lists(st.integers(0, 50), min_size=1, max_size=4),
        mode=st.sampled_from(["any", "right", "wrong"]),
        with_ids=st.booleans(),
        skew=st.integers(1, 3),
    )
    def append(self, stream: str, seeds: list[int], mode: str, with_ids: bool, skew: int) -> None:
        current = self.versions.get(stream, 0)
        expected = {"any": None, "right": current, "wrong": current + skew}[mode]
        if mode == "wrong" and current >= skew and skew % 2:
            expected = current - skew
        events = [_event(stream, n) for n in seeds]
        ids = [str(uuid.uuid4()) for _ in events] if with_ids else None
        if mode == "wrong":
            with pytest.raises(ConcurrencyError) as info:
                self._append(stream, events, expected, ids)
            assert (info.value.stream, info.value.expected, info.value.actual) == (
                stream,
                expected,
                current,
            )
            return
        result = self._append(stream, events, expected, ids)
        start = len(self.log) + 1
        assert result.positions == tuple(range(start, start + len(events)))
        assert result.version == current + len(events)
        assert not result.duplicate
        for k, event in enumerate(events):
            self.log.append((stream, current + k + 1, event, None if ids is None else ids[k]))
        self.versions[stream] = current + len(events)
        if ids is not None:
            self.calls.append(_Call(stream, tuple(events), tuple(ids), result.positions))

    @precondition(lambda self: self.calls)
    @rule(pick=st.integers(0, 1_000), wrong_expected=st.booleans())
    def retry_exactly(self, pick: int, wrong_expected: bool) -> None:
        call = self.calls[pick % len(self.calls)]
        expected = 10_000 if wrong_expected else None
        result = self._append(call.stream, list(call.events), expected, list(call.ids))
        assert result.duplicate
        assert result.positions == call.positions

    @precondition(lambda self: self.calls)
    @rule(pick=st.integers(0, 1_000), which=st.integers(0, 3))
    def retry_with_other_content(self, pick: int, which: int) -> None:
        call = self.calls[pick % len(self.calls)]
        events = list(call.events)
        k = which % len(events)
        event = events[k]
        if isinstance(event, AccountOpened):
            events[k] = msgspec.structs.replace(event, holder_ref=event.holder_ref + "x")
        else:
            assert isinstance(event, PaymentAttempted)
            events[k] = msgspec.structs.replace(event, amount_minor=event.amount_minor + 1)
        with pytest.raises(DuplicateEventError) as info:
            self._append(call.stream, events, None, list(call.ids))
        assert info.value.event_id == call.ids[k]

    @precondition(lambda self: self.calls)
    @rule(pick=st.integers(0, 1_000), seed=st.integers(0, 50), new_first=st.booleans())
    def retry_mixed_with_new(self, pick: int, seed: int, new_first: bool) -> None:
        call = self.calls[pick % len(self.calls)]
        new_event, new_id = _event(call.stream, seed), str(uuid.uuid4())
        events = list(call.events)
        ids = list(call.ids)
        if new_first:
            events.insert(0, new_event)
            ids.insert(0, new_id)
        else:
            events.append(new_event)
            ids.append(new_id)
        with pytest.raises(DuplicateEventError):
            self._append(call.stream, events, None, ids)

    @rule(stream=st.sampled_from(STREAMS), from_version=st.integers(0, 8))
    def read_stream(self, stream: str, from_version: int) -> None:
        records = self._read_stream(stream, from_version)
        expected = [
            (p, v)
            for p, (s, v, _, _) in enumerate(self.log, 1)
            if s == stream and v >= from_version
        ]
        assert [(r.position, r.version) for r in records] == expected
        for record in records:
            self._model(record)

    @rule(start=st.integers(-1, 40), span=st.none() | st.integers(0, 40), page=st.integers(1, 5))
    def read_all(self, start: int, span: int | None, page: int) -> None:
        stop = None if span is None else start + span
        records = self._read_all(start, stop, page)
        last = len(self.log) if stop is None else min(stop, len(self.log))
        assert [r.position for r in records] == list(range(max(start, 1), last + 1))
        for record in records:
            self._model(record)

    # --- invariants --------------------------------------------------------------------

    @invariant()
    def head_and_versions_match_the_model(self) -> None:
        assert self.portal.call(self.store.head) == len(self.log)
        for stream in STREAMS:
            version = self.portal.call(self.store.stream_version, stream)
            assert version == self.versions.get(stream, 0)

    @invariant()
    def log_is_gap_free_and_verifies(self) -> None:
        records = self._read_all(1, None, 1000)
        assert [r.position for r in records] == list(range(1, len(self.log) + 1))
        seen: dict[str, int] = {}
        for record in records:
            assert record.version == seen.get(record.stream, 0) + 1
            seen[record.stream] = record.version
            self._model(record)
        report = self.portal.call(self.store.verify)
        assert report.ok
        assert report.head_position == len(self.log)


class SQLiteStoreMachine(StoreMachine):
    backend = "sqlite"


class PostgresStoreMachine(StoreMachine):
    backend = "postgres"


_SETTINGS = settings(max_examples=25, stateful_step_count=20, deadline=None)


def test_memory_store_machine() -> None:
    run_state_machine_as_test(StoreMachine, settings=_SETTINGS)


def test_sqlite_store_machine() -> None:
    run_state_machine_as_test(SQLiteStoreMachine, settings=_SETTINGS)


def test_postgres_store_machine() -> None:
    server_url()  # skips (or fails, when PostgreSQL is required) without a server
    run_state_machine_as_test(PostgresStoreMachine, settings=_SETTINGS)
