"""The store contract against the in-memory backend (``open_store(":memory:")``), and its
integrity check on a log altered behind its back."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import pytest
from store_contract import StoreContract, attempted, requested

from ledger import EventStore, IntegrityError, open_store
from ledger.memory import MemoryEventStore


class TestMemoryStore(StoreContract):
    def make_store(self) -> AbstractAsyncContextManager[EventStore]:
        return open_store(":memory:")


def _swap(index: int, column: int, value: Any) -> Callable[[list[tuple[Any, ...]]], None]:
    def change(rows: list[tuple[Any, ...]]) -> None:
        row = list(rows[index])
        row[column] = value(row[column])
        rows[index] = tuple(row)

    return change


@pytest.mark.parametrize(
    ("alter", "bad"),
    [
        (_swap(2, 10, lambda data: data.replace("3000000", "3000001")), 3),
        (_swap(1, 1, lambda _: "payment-Q"), 2),
        (_swap(3, 2, lambda _: 7), 4),
        (_swap(4, 11, lambda h: bytes(32)), 5),
        (lambda rows: rows.pop(2), 3),
        (lambda rows: rows.append(rows[-1]), 6),
    ],
    ids=["data", "stream", "version", "hash", "delete", "insert"],
)
@pytest.mark.anyio
async def test_memory_verify_finds_the_first_bad_position(
    alter: Callable[[list[tuple[Any, ...]]], object], bad: int
) -> None:
    async with MemoryEventStore() as store:
        assert isinstance(store, MemoryEventStore)
        await store.append("payment-P1", [requested("P1"), attempted("P1")])
        await store.append("payment-P2", [requested("P2"), attempted("P2"), attempted("P2", 2)])
        assert (await store.verify()).ok
        await store.check()
        alter(store._rows)
        report = await store.verify()
        assert not report.ok
        assert report.first_bad_position == bad
        assert report.reason
        with pytest.raises(IntegrityError) as info:
            await store.check()
        assert info.value.position == bad
