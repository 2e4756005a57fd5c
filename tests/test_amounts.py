"""The amounts the projections add up never pass 2**63 - 1 over a log: the store refuses, at
append or import and before anything is committed, an event that would take the running total
(holds, settlements, repayments) past it, so `rebuild` can always fold what is stored."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

import anyio
import pytest
from old_stores import downgrade
from store_contract import T0, collect

from ledger import EventStore, EventValidationError, FormatError, ImportItem, open_store
from ledger.events import PaymentAuthorized, PaymentSettled, RepaymentMade
from ledger.sqlite import SCHEMA_VERSION
from projections import Projector

pytestmark = pytest.mark.anyio

BIG = 2**62
MAX_SUMMED_MINOR = 2**63 - 1


def _settled(payment: str, amount: int, minutes: int = 0) -> PaymentSettled:
    return PaymentSettled(
        payment_id=payment,
        attempt=1,
        channel="bank_card",
        amount_minor=amount,
        occurred_at=T0 + timedelta(minutes=minutes),
    )


@asynccontextmanager
async def _store(backend: str, tmp_path: Path) -> AsyncIterator[EventStore]:
    async with open_store(":memory:" if backend == "memory" else tmp_path / "ledger.db") as s:
        yield s


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
async def test_an_append_past_the_ceiling_is_refused_whole(backend: str, tmp_path: Path) -> None:
    """Two settlements of 2**62 each: the second (valid on its own) is refused naming its
    stream and field, nothing of its call is stored, and later appends that fit still work."""
    async with _store(backend, tmp_path) as store:
        await store.append("payment-P1", [_settled("P1", BIG)])
        with pytest.raises(EventValidationError) as info:
            await store.append(
                "payment-P2",
                [_settled("P2", 5), _settled("P2", BIG, 1)],
            )
        assert (info.value.stream, info.value.field, info.value.index) == (
            "payment-P2",
            "amount_minor",
            1,
        )
        assert "2**63" in str(info.value) or f"{MAX_SUMMED_MINOR:,}" in str(info.value)
        assert await store.head() == 1
        assert await collect(store.read_stream("payment-P2")) == []
        room = MAX_SUMMED_MINOR - BIG
        await store.append("payment-P3", [_settled("P3", room)])  # exactly to the ceiling
        with pytest.raises(EventValidationError):
            await store.append(
                "account-A1",
                [RepaymentMade(account_id="A1", product="huabei", amount_minor=1, occurred_at=T0)],
            )
        assert await store.head() == 2
        assert (await store.verify()).ok


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
async def test_an_import_past_the_ceiling_names_the_line_and_appends_nothing(
    backend: str, tmp_path: Path
) -> None:
    """An import whose third line would pass the ceiling is a FormatError naming that line and
    ``data.amount_minor``; none of its lines is stored."""
    async with _store(backend, tmp_path) as store:
        await store.append("payment-P0", [_settled("P0", BIG)])
        items = [
            ImportItem(stream="payment-P1", event=_settled("P1", 7), line=1),
            ImportItem(
                stream="payment-P1",
                event=PaymentAuthorized(
                    payment_id="P1",
                    attempt=1,
                    channel="huabei",
                    amount_minor=9,
                    auth_ref="a",
                    occurred_at=T0,
                ),
                line=2,
            ),
            ImportItem(stream="payment-P2", event=_settled("P2", BIG), line=3),
        ]
        with pytest.raises(FormatError) as info:
            await store.import_events(items)
        assert (info.value.line, info.value.field) == (3, "data.amount_minor")
        assert await store.head() == 1


async def test_a_group_commit_fails_only_the_call_past_the_ceiling(tmp_path: Path) -> None:
    """Calls gathered into one group commit are judged one by one: the one that would pass the
    ceiling fails alone, its neighbours are stored."""
    outcomes: dict[str, str] = {}
    async with open_store(tmp_path / "ledger.db") as store:
        await store.append("payment-P0", [_settled("P0", BIG)])

        async def call(name: str, amount: int) -> None:
            try:
                await store.append(f"payment-{name}", [_settled(name, amount)])
                outcomes[name] = "stored"
            except EventValidationError:
                outcomes[name] = "refused"

        async with anyio.create_task_group() as tg:
            tg.start_soon(call, "A", 1)
            tg.start_soon(call, "B", BIG)
            tg.start_soon(call, "C", 2)
        assert outcomes == {"A": "stored", "B": "refused", "C": "stored"}
        assert await store.head() == 3


async def test_rebuild_folds_a_store_at_the_ceiling(tmp_path: Path) -> None:
    """A store filled to the ceiling still rebuilds: no projection sum overflows its column."""
    db = tmp_path / "ledger.db"
    async with open_store(db) as store:
        await store.append("payment-P1", [_settled("P1", BIG)])
        await store.append("payment-P2", [_settled("P2", MAX_SUMMED_MINOR - BIG)])
        with pytest.raises(EventValidationError):
            await store.append("payment-P3", [_settled("P3", 1)])
        async with Projector.open(store) as projector:
            result = await projector.rebuild()
        assert result.events == 2


async def test_a_schema_1_store_gets_its_running_total_when_opened(tmp_path: Path) -> None:
    """A store written before the running total existed (schema 1) is migrated when opened
    for writing: its total is the sum over its log, and the ceiling applies at once."""
    db = tmp_path / "ledger.db"
    async with open_store(db) as store:
        await store.append("payment-P1", [_settled("P1", BIG)])
    downgrade(db, 1)
    async with open_store(db, readonly=True) as store:  # read as it is
        assert (await store.verify()).ok
    async with open_store(db) as store:
        with pytest.raises(EventValidationError):
            await store.append("payment-P2", [_settled("P2", BIG)])
        await store.append("payment-P2", [_settled("P2", 1)])
        assert (await store.verify()).ok
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("SELECT summed_minor FROM ledger_head").fetchone() == (BIG + 1,)
        assert conn.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
    finally:
        conn.close()
