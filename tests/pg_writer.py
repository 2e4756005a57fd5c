"""A writer process for the multi-process PostgreSQL tests (not a test module).

``python tests/pg_writer.py URL TAG CALLS TASKS EVENTS`` opens the store at URL, prints
``ready``, waits for a line on standard input, then runs TASKS tasks, each appending CALLS times
(forever when CALLS < 0) EVENTS events to its own stream ``payment-TAG-<task>``. After each
append it prints ``<stream> <position> <position> ...`` and flushes: a line printed is an
acknowledged, durable append.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime

import anyio

from ledger import EventStore, open_store
from ledger.events import PaymentAttempted

T = datetime(2026, 3, 1, tzinfo=UTC)


async def _worker(store: EventStore, tag: str, task: int, calls: int, events: int) -> None:
    payment = f"{tag}-{task}"
    i = 0
    while calls < 0 or i < calls:
        batch = [
            PaymentAttempted(
                payment_id=payment,
                attempt=events * i + k + 1,
                channel="huabei",
                amount_minor=100,
                occurred_at=T,
            )
            for k in range(events)
        ]
        result = await store.append(f"payment-{payment}", batch, expected_version=events * i)
        sys.stdout.write(f"payment-{payment} {' '.join(map(str, result.positions))}\n")
        sys.stdout.flush()
        i += 1


async def _main(url: str, tag: str, calls: int, tasks: int, events: int) -> None:
    async with open_store(url) as store:
        sys.stdout.write("ready\n")
        sys.stdout.flush()
        await anyio.to_thread.run_sync(sys.stdin.readline)
        async with anyio.create_task_group() as tg:
            for task in range(tasks):
                tg.start_soon(_worker, store, tag, task, calls, events)


def main(argv: list[str]) -> None:
    url, tag, calls, tasks, events = argv
    anyio.run(_main, url, tag, int(calls), int(tasks), int(events), backend="asyncio")


if __name__ == "__main__":
    main(sys.argv[1:])
