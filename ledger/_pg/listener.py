"""LISTEN/NOTIFY as a wake-up for ``wait_for_append``, never as the cursor.

Every append transaction queues ``pg_notify('payledger', <new head>)``; PostgreSQL delivers it at
commit, to every listening connection of every process. A notification only *wakes* the
waiters: they re-read the committed head from ``ledger_head``, so a lost, late, repeated or
coalesced notification can delay a wake-up but never skip, repeat or reorder an event. When the
listening connection drops (a restart, ``pg_terminate_backend``, a pooler in transaction mode
that drops LISTEN), the waiters are woken, fall back to polling, and the next wait reconnects
(at most once a second).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Final

import anyio

from .connect import Connection, close

__all__ = ["CHANNEL", "Listener"]

CHANNEL: Final = "payledger"
_RETRY_AFTER: Final = 1.0


class Listener:
    """One LISTEN connection per store, opened on the first wait; ``wake`` is called on every
    notification and when the connection is lost."""

    def __init__(self, connect: Callable[[], Awaitable[Connection]], wake: Callable[[], None]):
        self._connect = connect
        self._wake = wake
        self._conn: Connection | None = None
        self._failed_at: float | None = None
        self._closed = False
        self._opening = anyio.Lock()

    @property
    def connection(self) -> Connection | None:
        """The listening connection, when open (for tests and diagnostics)."""
        return self._conn

    @property
    def listening(self) -> bool:
        return self._conn is not None and not self._conn.is_closed()

    async def ensure(self) -> bool:
        """Listen, if not already; returns whether notifications will come (else: poll)."""
        if self.listening or self._closed:
            return self.listening
        async with self._opening:  # one connection, however many waiters ask at once
            return await self._open()

    async def _open(self) -> bool:
        if self.listening or self._closed:
            return self.listening
        if self._failed_at is not None and time.monotonic() - self._failed_at < _RETRY_AFTER:
            return False
        await self._drop()
        conn: Connection | None = None
        try:
            conn = await self._connect()
            conn.add_termination_listener(self._lost)
            await conn.add_listener(CHANNEL, self._notified)
        except Exception:  # a StoreError, or the LISTEN failed: poll instead
            self._failed_at = time.monotonic()
            if conn is not None:
                conn.terminate()
            return False
        except BaseException:  # cancelled half way: leave no connection behind
            if conn is not None:
                conn.terminate()
            raise
        if self._closed:
            await close(conn)
            return False
        self._conn, self._failed_at = conn, None
        return True

    def _notified(self, conn: object, pid: int, channel: str, payload: object) -> None:
        self._wake()

    def _lost(self, conn: object) -> None:
        self._wake()

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.remove_termination_listener(self._lost)
            conn.terminate()

    async def aclose(self) -> None:
        self._closed = True
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.remove_termination_listener(self._lost)
            await close(conn)
