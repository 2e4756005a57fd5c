"""The amounts the projections add up never pass 2**63 - 1 over a log: the store refuses, at
append or import and before anything is committed, an event that would take the running total
(holds, settlements, repayments) past it, so `rebuild` can always fold what is stored. Each test
holds on every backend (the ``backend`` fixture); an older store, which has no running total
yet, gets it when first opened for writing (SQLite and PostgreSQL)."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

import anyio
import pytest
from backends import Backend, Place
from old_stores import downgrade
from pg_support import admin, downgrade_to_2
from store_contract import T0, collect

from ledger import EventValidationError, FormatError, ImportItem
from ledger._pg.schema import SCHEMA_VERSION as PG_SCHEMA_VERSION
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


async def test_an_append_past_the_ceiling_is_refused_whole(backend: Backend) -> None:
    """Two settlements of 2**62 each: the second (valid on its own) is refused naming its
    stream and field, nothing of its call is stored, and later appends that fit still work."""
    async with backend.store() as store:
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


async def test_an_import_past_the_ceiling_names_the_line_and_appends_nothing(
    backend: Backend,
) -> None:
    """An import whose third line would pass the ceiling is a FormatError naming that line and
    ``data.amount_minor``; none of its lines is stored."""
    async with backend.store() as store:
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


async def test_a_group_commit_fails_only_the_call_past_the_ceiling(backend: Backend) -> None:
    """Calls gathered into one group commit are judged one by one: the one that would pass the
    ceiling fails alone, its neighbours are stored."""
    outcomes: dict[str, str] = {}
    async with backend.store() as store:
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
        assert (await store.verify()).ok


async def test_the_ceiling_holds_across_appends_and_imports(backend: Backend) -> None:
    """The running total is the log's, not a transaction's: appends and imports that each fit
    are refused once earlier ones, committed on their own, leave no room."""
    async with backend.store() as store:
        await store.append("payment-P1", [_settled("P1", BIG)])
        await store.import_events([ImportItem(stream="payment-P2", event=_settled("P2", BIG - 2))])
        with pytest.raises(EventValidationError):
            await store.append("payment-P3", [_settled("P3", 2)])
        with pytest.raises(FormatError):
            await store.import_events([ImportItem(stream="payment-P3", event=_settled("P3", 2))])
        await store.append("payment-P3", [_settled("P3", 1)])  # exactly to the ceiling
        assert await store.head() == 3
        assert (await store.verify()).ok


async def test_rebuild_folds_a_store_at_the_ceiling(backend: Backend) -> None:
    """A store filled to the ceiling still rebuilds: no projection sum overflows its column."""
    async with backend.store() as store:
        await store.append("payment-P1", [_settled("P1", BIG)])
        await store.append("payment-P2", [_settled("P2", MAX_SUMMED_MINOR - BIG)])
        with pytest.raises(EventValidationError):
            await store.append("payment-P3", [_settled("P3", 1)])
        async with Projector.open(store) as projector:
            result = await projector.rebuild()
        assert result.events == 2


async def _to_schema_1(place: Place) -> None:
    """Make the store at ``place`` what schema 1 wrote: no running total (nor anything later)."""
    if place.kind == "sqlite":
        downgrade(Path(place.target), 1)
        return
    async with admin(place.target) as conn:
        await downgrade_to_2(conn)
        await conn.execute(
            "DROP TABLE ledger_states, ledger_state_checkpoints; "
            "DROP INDEX events_requested_account; "
            "UPDATE ledger_meta SET schema_version = 1"
        )


async def _head_summed_and_version(place: Place) -> tuple[int, int]:
    if place.kind == "sqlite":
        db = sqlite3.connect(place.target)
        try:
            (summed,) = db.execute("SELECT summed_minor FROM ledger_head").fetchone()
            (version,) = db.execute("PRAGMA user_version").fetchone()
        finally:
            db.close()
        return int(summed), int(version)
    async with admin(place.target) as conn:
        summed = await conn.fetchval("SELECT summed_minor FROM ledger_head")
        version = await conn.fetchval("SELECT schema_version FROM ledger_meta")
    return int(summed), int(version)


@pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)
async def test_a_schema_1_store_gets_its_running_total_when_opened(backend: Backend) -> None:
    """A store written before the running total existed (schema 1) is migrated when opened
    for writing: its total is the sum over its log, and the ceiling applies at once."""
    async with backend.place() as place:
        async with place.open() as store:
            await store.append("payment-P1", [_settled("P1", BIG)])
            await store.append("payment-P1", [_settled("P1", 3, 1)])
        await _to_schema_1(place)
        async with place.open(readonly=True) as store:  # read as it is
            assert (await store.verify()).ok
        async with place.open() as store:
            with pytest.raises(EventValidationError):
                await store.append("payment-P2", [_settled("P2", BIG)])
            await store.append("payment-P2", [_settled("P2", 1)])
            assert (await store.verify()).ok
        expected = SCHEMA_VERSION if place.kind == "sqlite" else PG_SCHEMA_VERSION
        assert await _head_summed_and_version(place) == (BIG + 4, expected)
