"""Opening a store's connections: the writer's (in its own thread, :mod:`.thread`) unless the
store is opened read-only, and the read connection: ``query_only`` (reads never write, whatever
SQL reaches them), opened read-write beside a writer, read-only otherwise, and as ``immutable``
where nothing can be written beside the store (see :mod:`.schema`).

A *private* store is a file no other process sees yet (a store being built beside its path, to
be linked into place whole, as ``payledger import`` does): it keeps its rollback journal in
memory instead of a write-ahead log, and never waits for the disk, so each page is written once,
in place. A crash leaves a file to throw away; the caller fsyncs the file before it makes it
visible. The next writer to open it (at its real path) puts it back in WAL mode.
"""

from __future__ import annotations

import sqlite3

import aiosqlite
import anyio

from ..errors import StoreError
from ..store import Durability
from . import schema
from .errors import translate
from .thread import ConnectionThread

__all__ = ["open_connections", "open_reader", "open_readonly"]


async def open_connections(
    path: str,
    *,
    readonly: bool,
    durability: Durability,
    busy_timeout: float,
    private: bool = False,
) -> tuple[ConnectionThread | None, aiosqlite.Connection, int]:
    """The writer's thread (None when ``readonly``), the read connection and the schema
    version of the store at ``path`` (``private``: see the module docstring); on any failure
    nothing is left open."""
    thread: ConnectionThread | None = None
    reader: aiosqlite.Connection | None = None
    try:
        if not readonly:
            thread = ConnectionThread(f"payledger-writer:{path}")
            await thread.open(schema.open_writer, path, durability, busy_timeout)
            if private:  # (before the reader opens: leaving WAL mode needs the file alone)
                await thread.run(_unshared)
            reader, header = await open_reader(schema.writable_uri(path), busy_timeout)
        else:
            reader, header = await open_readonly(path, busy_timeout)
        schema.check_header(header, path, allow_empty=False)
    except BaseException as e:
        with anyio.CancelScope(shield=True):
            if reader is not None:
                await reader.close()
            if thread is not None:
                await thread.close()
        if isinstance(e, sqlite3.Error):
            raise translate(e, path, path) from e
        raise
    return thread, reader, header[1]


def _unshared(conn: sqlite3.Connection) -> None:
    """A private store's writer: its journal in memory, no fsync (see the module docstring)."""
    mode = conn.execute("PRAGMA journal_mode = MEMORY").fetchone()[0]
    if mode != "memory":
        raise StoreError(f"a private store could not leave WAL mode (journal mode {mode})")
    conn.execute("PRAGMA synchronous = OFF")


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


def _needs_shm(path: str, why: str) -> StoreError:
    return StoreError(
        f"{path}: its write-ahead log ({path}-wal) holds events not yet in the file, and "
        f"reading them needs {path}-shm, which {why}; copy the store's files to a writable "
        "place to read them"
    )


async def open_readonly(
    path: str, busy_timeout: float
) -> tuple[aiosqlite.Connection, tuple[int, int, int]]:
    """A read-only connection that writes nothing beside evidence (see :mod:`.schema`): a
    store in a place without write permission is read as immutable; one whose open fails
    because no ``-shm`` can be made (a read-only mount, a full disk) too. Either way, when a
    write-ahead log holds events the file lacks, reading them needs a ``-shm``: where none may
    or can be made, that is one clear error, never a read that leaves them out."""
    evidence = schema.nothing_can_be_written_beside(path)
    if evidence and schema.wal_holds_events(path):
        raise _needs_shm(path, "may not be made beside evidence (no write permission)")
    try:
        return await open_reader(schema.readonly_uri(path), busy_timeout)
    except sqlite3.OperationalError as e:
        if schema.wal_holds_events(path):
            raise _needs_shm(path, f"cannot be made here ({e})") from e
        return await open_reader(schema.readonly_uri(path, immutable=True), busy_timeout)
