"""A fresh process appending to PostgreSQL for ``bench_postgres`` (not a benchmark by itself).

``python -m bench._pg_child store|raw URL TASKS CALLS`` connects, prints ``ready``, waits for a
line on standard input, then runs TASKS tasks of CALLS single-event appends each, and prints one
JSON object: ``{"events", "start", "end"}`` (``time.monotonic()``, comparable across the
processes of one machine).

- ``store``: ``open_store(URL)``, each task appending to its own stream with its expected
  version (durable: ``synchronous_commit=on``).
- ``raw``: an asyncpg pool of the default size (10), each event ``INSERT``\\ed and committed in
  its own transaction into ``raw_events`` (the shape of ``events``, with a ``bigserial``
  position): no validation, no concurrency check, no chain, no ordering of commits.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Final

import anyio
import asyncpg

from ledger import EventStore, open_store
from ledger.events import ENCODER, PaymentAttempted
from ledger.store import to_micros

__all__ = ["RAW_DDL", "main"]

START: Final = datetime(2026, 3, 1, tzinfo=UTC)

RAW_DDL: Final = """
CREATE TABLE raw_events (
    position       bigserial PRIMARY KEY,
    stream         text    NOT NULL,
    version        integer NOT NULL,
    type           text    NOT NULL,
    schema         integer NOT NULL,
    occurred_at    bigint  NOT NULL,
    recorded_at    bigint  NOT NULL,
    event_id       uuid    NOT NULL UNIQUE,
    correlation_id text,
    causation_id   text,
    data           text    NOT NULL,
    hash           bytea   NOT NULL,
    UNIQUE (stream, version)
);
CREATE INDEX raw_events_by_type ON raw_events (type, position);
CREATE INDEX raw_events_by_time ON raw_events (occurred_at);
CREATE INDEX raw_events_by_correlation ON raw_events (correlation_id)
    WHERE correlation_id IS NOT NULL;
"""
"""The baseline's table: ``events`` as the store creates it, position a plain ``bigserial``."""

_INSERT: Final = (
    "INSERT INTO raw_events (stream, version, type, schema, occurred_at, recorded_at, event_id, "
    "data, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
)


def _event(payment: str, n: int) -> PaymentAttempted:
    return PaymentAttempted(
        payment_id=payment,
        attempt=n,
        channel="huabei",
        amount_minor=100 + n,
        occurred_at=START + timedelta(seconds=n),
    )


async def _store_task(store: EventStore, stream: str, calls: int) -> None:
    payment = stream.removeprefix("payment-")
    for k in range(calls):
        await store.append(stream, [_event(payment, k + 1)], expected_version=k)


async def _raw_task(pool: asyncpg.Pool[asyncpg.Record], stream: str, calls: int) -> None:
    payment = stream.removeprefix("payment-")
    for k in range(calls):
        event = _event(payment, k + 1)
        data = ENCODER.encode(event)
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute(
                _INSERT,
                stream,
                k + 1,
                "PaymentAttempted",
                1,
                to_micros(event.occurred_at),
                time.time_ns() // 1000,
                uuid.uuid4(),
                data.decode(),
                hashlib.sha256(data).digest(),
            )


async def _ready() -> None:
    print("ready", flush=True)
    await anyio.to_thread.run_sync(sys.stdin.readline)


async def _run(kind: str, url: str, tasks: int, calls: int) -> dict[str, float]:
    tag = f"{os.getpid()}"
    streams = [f"payment-{tag}-{t}" for t in range(tasks)]
    if kind == "store":
        async with open_store(url) as store:
            await _ready()
            start = time.monotonic()
            await asyncio.gather(*(_store_task(store, s, calls) for s in streams))
            end = time.monotonic()
    else:
        async with asyncpg.create_pool(url) as pool:
            await _ready()
            start = time.monotonic()
            await asyncio.gather(*(_raw_task(pool, s, calls) for s in streams))
            end = time.monotonic()
    return {"events": tasks * calls, "start": start, "end": end}


def main(argv: list[str]) -> None:
    kind, url, tasks, calls = argv
    result = anyio.run(_run, kind, url, int(tasks), int(calls), backend="asyncio")
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
