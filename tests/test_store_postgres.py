"""The store contract against the PostgreSQL backend, and what only a shared server can show."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from pg_support import fresh_database
from store_contract import StoreContract

from ledger import EventStore, open_store


@asynccontextmanager
async def _store() -> AsyncIterator[EventStore]:
    async with fresh_database() as url, open_store(url) as store:
        yield store


class TestPostgresStore(StoreContract):
    def make_store(self) -> AbstractAsyncContextManager[EventStore]:
        return _store()
