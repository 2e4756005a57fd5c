"""What only PostgreSQL shows of the read models: a store of schema version 1 (before derived
state) read as it is and upgraded by a writable open, the roles a deployment grants (a writer
that keeps the projections, an auditor that only reads), the ``jsonb`` summary users query
beside the exact text the projector compares, and the plans of the indexed reads (each uses its
index: the statements spell the indexed expressions exactly)."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

import pytest
from logs import build, records_of
from pg_support import admin, downgrade_to_2, fresh_database

from ledger import ReadOnlyError, StoreError, open_store, stream_of
from ledger import events as ev
from ledger._pg import reads
from ledger._pg.schema import SCHEMA_VERSION
from ledger.postgres import PostgresEventStore
from projections import Projector, account_at, fold
from projections.check import check_projections
from projections.rows import NAME
from replay import explain, explain_failed

pytestmark = pytest.mark.anyio

EVENTS: Final = build(
    [(0, 0), (1, 0), (9, 0), (10, 2), (10, 2), (10, 0), (5, 9), (9, 1), (10, 4), (10, 4)] * 3
)
V2_OBJECTS: Final = ("ledger_states", "ledger_state_checkpoints", "events_requested_account")


async def _fill(url: str) -> None:
    async with open_store(url) as store:
        for event in EVENTS:
            await store.append(stream_of(event), [event])


async def _downgrade(url: str) -> None:
    """Make the store what schema version 1 created: no running total or Merkle tree, no derived
    state, no request index."""
    async with admin(url) as conn:
        await downgrade_to_2(conn)
        await conn.execute(
            "DROP TABLE ledger_states, ledger_state_checkpoints; "
            "DROP INDEX events_requested_account; "
            "UPDATE ledger_meta SET schema_version = 1"
        )


async def _objects(url: str) -> set[str]:
    async with admin(url) as conn:
        rows = await conn.fetch(
            "SELECT relname FROM pg_class WHERE relname = ANY($1::text[])", list(V2_OBJECTS)
        )
    return {r[0] for r in rows}


def _as(url: str, user: str, password: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{user}:{password}@{parts.hostname}:{parts.port}"))


@asynccontextmanager
async def _role(url: str, grants: str) -> AsyncIterator[str]:
    """A login role with ``grants`` (``{role}`` in them); yields its URL."""
    role, password = f"ledger_{uuid.uuid4().hex[:10]}", uuid.uuid4().hex
    async with admin(url) as conn:
        await conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{password}'")
        await conn.execute(grants.format(role=role))
    try:
        yield _as(url, role, password)
    finally:
        async with admin(url) as conn:
            await conn.execute(f"DROP OWNED BY {role}")
            await conn.execute(f"DROP ROLE {role}")


WRITER: Final = """
GRANT USAGE ON SCHEMA public TO {role};
GRANT SELECT ON ledger_meta TO {role};
GRANT SELECT, INSERT ON events TO {role};
GRANT SELECT, UPDATE ON ledger_head TO {role};
GRANT SELECT, INSERT, UPDATE, DELETE ON ledger_states, ledger_state_checkpoints TO {role};
GRANT SELECT, INSERT ON ledger_tree TO {role};
"""
AUDITOR: Final = """
GRANT USAGE ON SCHEMA public TO {role};
GRANT SELECT ON ledger_meta, events, ledger_head, ledger_states, ledger_state_checkpoints,
    ledger_tree TO {role};
"""


# --- schema versions -----------------------------------------------------------------------


async def test_a_version_1_store_reads_as_it_is_and_a_writable_open_upgrades_it() -> None:
    expected = fold(records_of(EVENTS))
    async with fresh_database() as url:
        await _fill(url)
        await _downgrade(url)
        assert await _objects(url) == set()
        async with open_store(url, readonly=True) as store:
            assert isinstance(store, PostgresEventStore)
            assert store.schema_version == 1
            assert (await store.states.checkpoint(NAME)).version is None
            assert [r async for page in store.states.scan(NAME) for r in page] == []
            assert (await check_projections(store)).ok
            assert await store.payments_of("A1") == sorted(
                p.payment_id for p in expected.payments.values() if p.account_id == "A1"
            )
            assert await account_at(store, "A1") is not None
            with pytest.raises(ReadOnlyError):
                await store.states.commit(NAME, [], position=1, version=1, expected=None)
            failed = [e.payment_id async for e in explain_failed(store)]
        async with open_store(url) as store:  # the owner: upgraded
            assert isinstance(store, PostgresEventStore)
            assert store.schema_version == SCHEMA_VERSION
            assert (await store.verify()).ok  # the events as they were
            async with Projector.open(store) as projector:
                assert await projector.catch_up() == len(EVENTS)
            assert (await check_projections(store)).ok
            assert [e.payment_id async for e in explain_failed(store)] == failed
        assert await _objects(url) == set(V2_OBJECTS)
        async with admin(url) as conn:
            assert await conn.fetchval("SELECT schema_version FROM ledger_meta") == SCHEMA_VERSION


async def test_a_role_that_may_not_create_tables_leaves_version_1_as_it_is() -> None:
    async with fresh_database() as url:
        await _fill(url)
        await _downgrade(url)
        grants = WRITER.split("GRANT SELECT, INSERT, UPDATE, DELETE")[0]
        async with _role(url, grants) as writer, open_store(writer) as store:
            assert isinstance(store, PostgresEventStore)
            assert store.schema_version == 1
            opened = ev.AccountOpened(
                account_id="A9", holder_ref="h", occurred_at=EVENTS[0].occurred_at
            )
            await store.append("account-A9", [opened])
            with pytest.raises(StoreError, match="schema version 1"):
                await store.states.commit(NAME, [], position=1, version=1, expected=None)
            await store.states.drop(NAME)  # nothing to drop
        assert await _objects(url) == set()


async def test_the_grants_of_a_writer_and_an_auditor() -> None:
    async with fresh_database() as url:
        await _fill(url)
        async with _role(url, WRITER) as writer, _role(url, AUDITOR) as auditor:
            async with open_store(writer) as store, Projector.open(store) as projector:
                assert await projector.catch_up() == len(EVENTS)
                await projector.rebuild()
            async with open_store(auditor, readonly=True) as store:
                assert (await check_projections(store)).ok
                assert [e async for e in explain_failed(store)]
                with pytest.raises(ReadOnlyError):
                    await store.states.drop(NAME)
            async with open_store(auditor) as store, Projector.open(store) as projector:
                with pytest.raises(StoreError, match="permission denied"):
                    await projector.rebuild()
                assert await projector.checkpoint() == len(EVENTS)


# --- the summary as jsonb ------------------------------------------------------------------


async def test_the_summary_is_jsonb_to_query_and_text_to_compare() -> None:
    holder = 'h\x00"\\u0000é'
    async with fresh_database() as url, open_store(url) as store:
        for event in EVENTS:
            await store.append(stream_of(event), [event])
        opened = ev.AccountOpened(
            account_id="Z\x00", holder_ref=holder, occurred_at=EVENTS[0].occurred_at
        )
        await store.append("account-Z\x00", [opened])
        async with Projector.open(store) as projector:
            await projector.catch_up()
        rows = await store.states.get(NAME, "account", ["A1", "Z\x00"])
        assert isinstance(store, PostgresEventStore)
        found = await store.fetch(
            "SELECT key, summary_text, summary, summary->'credit'->'huabei'->>'status', "
            "summary->>'holder_ref' FROM ledger_states WHERE kind = 'account' "
            "ORDER BY key"
        )
        by_key = {r[0]: r for r in found}
        a1 = by_key["A1"]
        assert a1[1] == rows["A1"].summary  # byte for byte what the projector wrote
        assert json.loads(a1[2]) == json.loads(rows["A1"].summary)
        assert a1[3] == json.loads(rows["A1"].summary)["credit"]["huabei"]["status"]
        z = by_key["Z\x010"]  # the key, escaped: U+0000 cannot be stored in text
        assert z[1] == rows["Z\x00"].summary
        assert json.loads(z[1])["holder_ref"] == holder
        # jsonb holds no U+0000: the escape reads as U+FFFD (and the text \u0000 as \ufffd)
        assert z[4] == 'h\ufffd"\\ufffdé'

        assert (await check_projections(store)).ok


# --- plans ---------------------------------------------------------------------------------


async def _plan(url: str, sql: str, *args: Any) -> str:
    async with admin(url) as conn, conn.transaction():
        await conn.execute("SET LOCAL enable_seqscan = off")
        rows = await conn.fetch(f"EXPLAIN {sql}", *args)
    return "\n".join(r[0] for r in rows)


async def test_each_indexed_read_uses_its_index() -> None:
    async with fresh_database() as url, open_store(url) as store:
        for event in EVENTS:
            await store.append(stream_of(event), [event])
        big = 2**62
        plan = await _plan(url, reads._PAYMENTS, "A1", big)
        assert "events_requested_account" in plan, plan
        plan = await _plan(url, reads._LAST, "channel-huabei", big)
        assert "events_stream_version_key" in plan, plan
        plan = await _plan(url, reads._BOUNDS_OF_TYPES, "payment-", big, ["PaymentDeclined"])
        assert "events_by_type" in plan, plan
        assert "events_stream_version_key" in plan, plan
        plan = await _plan(url, reads._READ_FILTERED, 1, 100, ["ChannelDecided"], ["payment-P1"])
        assert "events_pkey" in plan, plan
        assert "Seq Scan on events" not in plan, plan
        assert await explain(store, "P1") is not None
