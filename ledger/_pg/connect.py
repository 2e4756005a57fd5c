"""Opening a connection with the store's session settings.

Every connection the store opens is told, in its startup packet (so no statement of ours and no
``RESET ALL`` can lose them): ``application_name=payledger``; ``synchronous_commit`` (``on``
unless the store was opened with ``durability="normal"``); ``lock_timeout`` (the busy timeout: how
long an append waits for the head row another process holds); and, on every connection but
the writer's (so on all of a read-only store's), ``default_transaction_read_only=on``, so every
transaction it runs is read-only whatever the role may do. Everything else follows
PostgreSQL's conventions, through asyncpg: ``PGPASSWORD``, ``PGPASSFILE`` and ``~/.pgpass``,
``PGHOST``/``PGPORT``/``PGUSER``, ``sslmode`` and the other parameters of the URL.
"""

from __future__ import annotations

import asyncio
from typing import Final, TypeAlias

import anyio
import asyncpg

from ..store import Durability
from .errors import translate
from .url import mask

__all__ = ["Connection", "Settings", "close", "connect"]

Connection: TypeAlias = "asyncpg.Connection[asyncpg.Record]"
APPLICATION_NAME: Final = "payledger"


class Settings:
    """What every connection of one store is opened with."""

    __slots__ = ("durability", "lock_timeout", "opening", "readonly", "url")

    def __init__(self, url: str, *, readonly: bool, durability: Durability, lock_timeout: float):
        self.url = url
        self.readonly = readonly
        self.durability = durability
        self.lock_timeout = lock_timeout
        self.opening: set[asyncio.Task[Connection]] = set()
        """Connection attempts still running (see :func:`connect`)."""

    async def settle(self) -> None:
        """Wait for the connection attempts still running to end (and close what they open)."""
        with anyio.CancelScope(shield=True):
            while self.opening:
                await asyncio.wait(set(self.opening))

    def server_settings(self, *, writer: bool) -> dict[str, str]:
        """Every connection but the writer's is read-only (reads, the listener), whatever the
        store's mode: nothing but the writer's group commits and imports ever writes."""
        settings = {
            "application_name": APPLICATION_NAME,
            "synchronous_commit": "on" if self.durability == "full" else "off",
            "lock_timeout": str(max(1, int(self.lock_timeout * 1000))),
        }
        if not writer:
            settings["default_transaction_read_only"] = "on"
        return settings


async def connect(settings: Settings, *, writer: bool = False) -> Connection:
    """A new connection; raises :class:`ledger.errors.StoreError` (never an asyncpg or OS error)
    when the URL is malformed or the server cannot be reached or refuses.

    The attempt runs in a task of its own: asyncpg's handshake, interrupted half way, leaves a
    future whose error no one retrieves. A caller cancelled meanwhile returns at once; the
    attempt ends by itself, and the connection it opens is closed."""
    task = asyncio.ensure_future(_connect(settings, writer=writer))
    settings.opening.add(task)
    task.add_done_callback(settings.opening.discard)
    try:
        return await asyncio.shield(task)
    except BaseException:
        task.add_done_callback(_discard)  # (a done task, too: it may have ended as we were cut)
        raise


def _discard(task: asyncio.Task[Connection]) -> None:
    """Close the connection of an attempt whose caller is gone (or retrieve its error)."""
    if task.cancelled():
        return
    if task.exception() is None:
        task.result().terminate()


async def _connect(settings: Settings, *, writer: bool) -> Connection:
    where = mask(settings.url)
    conn: Connection | None = None
    try:
        conn = await asyncpg.connect(
            settings.url,
            timeout=settings.lock_timeout,
            server_settings=settings.server_settings(writer=writer),
        )
        # Event ids travel as text, exactly as the planner writes them.
        await conn.set_type_codec(
            "uuid", schema="pg_catalog", encoder=str, decoder=str, format="text"
        )
    except Exception as e:
        if conn is not None:
            conn.terminate()
        raise translate(e, where, settings.url, connecting=True) from e
    except BaseException:
        if conn is not None:
            conn.terminate()
        raise
    return conn


async def close(conn: Connection | None) -> None:
    """Close ``conn`` politely, or at once if that fails or is cancelled."""
    if conn is None or conn.is_closed():
        return
    try:
        with anyio.CancelScope(shield=True), anyio.move_on_after(5):
            await conn.close()
    except Exception:
        pass
    finally:
        if not conn.is_closed():
            conn.terminate()
