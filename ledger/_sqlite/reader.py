"""The read connection: ``query_only`` (reads never write, whatever SQL reaches them), opened
read-write beside a writer, read-only otherwise, and as ``immutable`` where nothing can be
written beside the store (see :mod:`.schema`).
"""

from __future__ import annotations

import sqlite3

import aiosqlite
import anyio

from ..errors import StoreError
from . import schema

__all__ = ["open_evidence", "open_reader"]


async def open_reader(
    uri: str, busy_timeout: float
) -> tuple[aiosqlite.Connection, tuple[int, int, int]]:
    """A read connection (``query_only``: reads never write, whatever SQL reaches them) and
    the file's header."""
    reader = await aiosqlite.connect(uri, uri=True, timeout=busy_timeout, isolation_level=None)
    try:
        await reader.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        header = []
        for sql in (
            "PRAGMA application_id",
            "PRAGMA user_version",
            "SELECT count(*) FROM sqlite_master",
        ):
            rows = list(await reader.execute_fetchall(sql))
            header.append(int(rows[0][0]))
        await reader.execute("PRAGMA query_only = ON")
    except BaseException:
        with anyio.CancelScope(shield=True):
            await reader.close()
        raise
    return reader, (header[0], header[1], header[2])


async def open_evidence(
    path: str, busy_timeout: float, error: sqlite3.OperationalError
) -> tuple[aiosqlite.Connection, tuple[int, int, int]]:
    """A read-only open that failed because nothing can be written beside the store (no
    ``-shm`` can be made: a read-only place, a full disk): read it as immutable, unless a
    write-ahead log holds events the file lacks (SQLite then needs the ``-shm``)."""
    if schema.wal_holds_events(path):
        raise StoreError(
            f"{path}: its write-ahead log ({path}-wal) holds events not yet in the file, and "
            f"reading them needs {path}-shm, which cannot be made here ({error}); copy the "
            "store's files to a writable place to read them"
        ) from error
    return await open_reader(schema.readonly_uri(path, immutable=True), busy_timeout)
