"""The writer's thread: one OS thread owns the writer connection, from opening to closing.

Every statement on the writer connection runs in this thread, one job after another in the
order they were queued, so the connection is never touched by two threads at once and every
transaction begins and ends (``COMMIT`` or ``ROLLBACK``) in the thread that runs it. A job is
never abandoned: when the task awaiting it is cancelled (an anyio cancel scope, or asyncio's
own ``Task.cancel()`` from ``asyncio.wait_for`` or Ctrl-C, which anyio's shields do not stop),
the wait goes on until the job has ended, so the caller always learns what was written, and
what the caller queues next (a ``ROLLBACK``, the close) runs after it.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import anyio

__all__ = ["ConnectionThread"]

T = TypeVar("T")


class _Job(Generic[T]):
    __slots__ = ("args", "done", "error", "fn", "loop", "value")

    def __init__(
        self, fn: Callable[..., T], args: tuple[Any, ...], loop: asyncio.AbstractEventLoop
    ) -> None:
        self.fn = fn
        self.args = args
        self.loop = loop
        self.done = asyncio.Event()
        self.value: T | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.value = self.fn(*self.args)
        except BaseException as e:  # handed to the awaiting task
            self.error = e
        with contextlib.suppress(RuntimeError):  # the event loop is gone: nobody waits
            self.loop.call_soon_threadsafe(self.done.set)


class _Posted:
    """A job nobody waits for (see :meth:`ConnectionThread.post`)."""

    __slots__ = ("fn", "owner")

    def __init__(
        self, owner: ConnectionThread, fn: Callable[[sqlite3.Connection | None], None]
    ) -> None:
        self.owner = owner
        self.fn = fn

    def run(self) -> None:
        self.fn(self.owner.conn)


class ConnectionThread:
    """A thread that runs jobs on the connection it owns (see the module docstring)."""

    def __init__(self, name: str) -> None:
        self.conn: sqlite3.Connection | None = None
        """Set and used by jobs only, in the thread."""
        self._jobs: queue.SimpleQueue[_Job[Any] | _Posted | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while (job := self._jobs.get()) is not None:
            job.run()

    def post(self, fn: Callable[[sqlite3.Connection | None], None]) -> None:
        """Queue ``fn(conn)`` (``conn`` None once closed) without waiting for it: ``fn`` hands
        its outcome back itself and raises nothing (the drain of :mod:`ledger.sqlite`)."""
        self._jobs.put(_Posted(self, fn))

    def busy(self) -> bool:
        """Whether other jobs wait in the queue (a posted job that loops yields to them)."""
        return not self._jobs.empty()

    def _with_conn(self, fn: Callable[..., T], *args: Any) -> T:
        conn = self.conn
        if conn is None:
            raise sqlite3.ProgrammingError("Cannot operate on a closed database.")
        return fn(conn, *args)

    def _open(self, opener: Callable[..., sqlite3.Connection], *args: Any) -> None:
        self.conn = opener(*args)

    def _close(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            conn.close()

    async def run_through(self, fn: Callable[..., T], *args: Any) -> tuple[T, BaseException | None]:
        """Run ``fn(conn, *args)`` in the thread and wait until it has ended, cancelled or
        not; returns its value and the cancellation that arrived meanwhile (None if none).
        Raises what ``fn`` raised."""
        return await self._submit(self._with_conn, fn, *args)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """:meth:`run_through`, then the cancellation (if one arrived) is raised."""
        value, cancelled = await self.run_through(fn, *args)
        if cancelled is not None:
            raise cancelled
        return value

    async def open(self, opener: Callable[..., sqlite3.Connection], *args: Any) -> None:
        """Open the connection in the thread with ``opener(*args)``."""
        _, cancelled = await self._submit(self._open, opener, *args)
        if cancelled is not None:
            raise cancelled

    async def close(self) -> None:
        """Close the connection after every job queued before, and end the thread. Waits
        through cancellation (it is called on the way out of cancelled code)."""
        try:
            await self._submit(self._close)
        finally:
            self._jobs.put(None)

    async def _submit(self, fn: Callable[..., T], *args: Any) -> tuple[T, BaseException | None]:
        job = _Job(fn, args, asyncio.get_running_loop())
        self._jobs.put(job)
        cancelled: BaseException | None = None
        while True:
            try:
                with anyio.CancelScope(shield=True):
                    await job.done.wait()
                break
            except anyio.get_cancelled_exc_class() as e:  # asyncio's own cancellation
                cancelled = e
        if job.error is not None:
            raise job.error
        return job.value, cancelled  # type: ignore[return-value]
