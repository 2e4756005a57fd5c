"""The small pool of reading connections.

Reads are single statements in autocommit (a page of ``read_all`` is one statement), so a
connection is held only while one statement runs, never across the pages a caller iterates. A
connection is reused only when its statement finished cleanly; one whose statement failed or was
cancelled is dropped (its state is unknown), and one the server closed is replaced on the next
use. The pool keeps no state of its own on a connection (no ``SET``), so it needs no reset
between uses.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import anyio

from .connect import Connection, close

__all__ = ["Pool"]


class Pool:
    """At most ``size`` connections opened by ``connect``, shared by the store's readers."""

    def __init__(self, connect: Callable[[], Awaitable[Connection]], size: int) -> None:
        self._connect = connect
        self._slots = anyio.Semaphore(size)
        self._idle: list[Connection] = []
        self._busy: set[Connection] = set()
        self._closed = False

    def adopt(self, conn: Connection) -> None:
        """Keep an already opened connection for later use."""
        self._idle.append(conn)

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Connection]:
        async with self._slots:
            conn: Connection | None = None
            while self._idle and conn is None:
                candidate = self._idle.pop()
                if candidate.is_closed():
                    candidate.terminate()
                else:
                    conn = candidate
            if conn is None:
                conn = await self._connect()
            self._busy.add(conn)
            clean = False
            try:
                yield conn
                clean = True
            finally:
                self._busy.discard(conn)
                if clean and not self._closed and not conn.is_closed():
                    if conn.is_in_transaction():  # never left so by the store; be safe
                        conn.terminate()
                    else:
                        self._idle.append(conn)
                else:
                    conn.terminate()

    async def aclose(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            await close(conn)
        for conn in list(self._busy):  # a read still running: it fails, and its caller sees why
            conn.terminate()
