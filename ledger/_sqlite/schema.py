"""The store's file: how a store is created and how one is opened (its tables are in
:mod:`.tables`, the migrations from older schemas in :mod:`.migrate`).

**Creation is atomic.** A store never appears half-made at its path: the schema is built in a
private file beside it (``.<name>.<random>.creating``, same directory, so same file system),
fsynced, then hard-linked to the path, which fails if the path exists by then: a process that
loses the race simply opens the winner's store, and nothing ever replaces or deletes a file at
the store's path. Where the file system has no hard links, the path is created empty with
``O_EXCL`` and every opener makes an empty file a store in place, in one ``BEGIN IMMEDIATE``
transaction (as an empty file given by a user is). A write-ahead log left without its database
(``-wal`` or ``-journal``, from a store moved or deleted) blocks creation instead of being
replayed into a new store.

**Opening never creates.** Connections open with ``mode=rw`` or ``mode=ro``. A read-only open
of a store in a place where nothing can be written (a file or directory without write
permission, a read-only mount, a full disk) reads it as ``immutable``, so no ``-shm`` or
``-wal`` is made beside evidence, by root either; that is only done when no write-ahead log
holds committed events (then SQLite needs a ``-shm`` file, and the error says so).
"""

from __future__ import annotations

import os
import sqlite3
import stat
import time
import uuid
from pathlib import Path
from typing import Final
from urllib.parse import quote

from ..errors import NotALedgerError, SchemaVersionError, StoreError
from ..store import Durability
from .migrate import migrate
from .tables import (
    APPLICATION_ID,
    DDL,
    INDEX_FILTERS,
    OLD_INDEX_FILTERS,
    SCHEMA_VERSION,
    TREE_THRESHOLD,
)

__all__ = [
    "APPLICATION_ID",
    "DDL",
    "INDEX_FILTERS",
    "OLD_INDEX_FILTERS",
    "SCHEMA_VERSION",
    "TREE_THRESHOLD",
    "create_store_file",
    "header_says_store",
    "nothing_can_be_written_beside",
    "open_writer",
    "readonly_uri",
    "wal_holds_events",
    "writable_uri",
]

_MAGIC: Final = b"SQLite format 3\x00"


# --- headers --------------------------------------------------------------------------------


def header_says_store(path: str) -> bool:
    """Whether the first 100 bytes of the file are an SQLite header with payledger's
    application id: a file that says it is a store, whatever state its pages are in."""
    try:
        with open(path, "rb") as f:
            head = f.read(100)
    except OSError:
        return False
    return (
        len(head) == 100
        and head[:16] == _MAGIC
        and int.from_bytes(head[68:72], "big") == APPLICATION_ID
    )


def file_shortfall(path: str) -> tuple[int, int] | None:
    """``(bytes on disk, bytes the header promises)`` when the file is shorter than its own
    header says (cut off at the end), else None; never while a write-ahead log holds pages.
    The header's page count is valid when its "version valid for" field matches its change
    counter (SQLite 3.7.0+ files)."""
    if wal_holds_events(path):  # pages may live in the log (a checkpoint not yet done)
        return None
    try:
        with open(path, "rb") as f:
            head = f.read(100)
        size = os.path.getsize(path)
    except OSError:
        return None
    if len(head) < 100 or head[:16] != _MAGIC:
        return None
    page_size = int.from_bytes(head[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(head[28:32], "big")
    if head[24:28] != head[92:96] or not pages:
        return None
    promised = pages * page_size
    return (size, promised) if size < promised else None


def read_header(conn: sqlite3.Connection) -> tuple[int, int, int]:
    """(application_id, user_version, number of schema objects) of an open database."""
    app = conn.execute("PRAGMA application_id").fetchone()[0]
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    objects = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
    return int(app), int(version), int(objects)


def check_header(header: tuple[int, int, int], path: str, *, allow_empty: bool) -> None:
    app, version, objects = header
    if app == 0 and version == 0:
        if objects:
            raise NotALedgerError(f"{path}: an SQLite database, but not a payledger store")
        if not allow_empty:
            raise NotALedgerError(f"{path}: an empty file, not a payledger store")
        return
    if app != APPLICATION_ID:
        raise NotALedgerError(f"{path}: an SQLite database, but not a payledger store")
    if version > SCHEMA_VERSION:
        raise SchemaVersionError(
            f"{path}: written by a newer payledger (schema {version}; this one reads "
            f"up to {SCHEMA_VERSION}): upgrade payledger to open it"
        )


# --- creating -------------------------------------------------------------------------------


def _build_schema(conn: sqlite3.Connection) -> None:
    """The schema in one ``BEGIN IMMEDIATE`` transaction, unless another connection made it
    first (checked under the lock)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        if conn.execute("PRAGMA user_version").fetchone()[0] == 0:
            for statement in DDL:
                conn.execute(statement)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _fsync(path: str, *, directory: bool = False) -> None:
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    try:
        os.fsync(fd)
    except OSError:
        if not directory:  # some file systems cannot fsync a directory; a file must be
            raise
    finally:
        os.close(fd)


def _refuse_stray_logs(path: str) -> None:
    for suffix in ("-wal", "-journal"):
        if os.path.exists(path + suffix) and not os.path.exists(path):
            raise StoreError(
                f"{path}: {path}{suffix} exists without the store (left by a store that was "
                "moved or deleted); SQLite would replay it into a new store: move it away first"
            )


def create_store_file(path: str) -> None:
    """Make ``path`` a store, atomically, unless something exists there (see the module
    docstring). Runs in a worker thread."""
    path = os.path.abspath(path)
    _refuse_stray_logs(path)
    directory, name = os.path.split(path)
    private = os.path.join(directory, f".{name}.{uuid.uuid4().hex[:12]}.creating")
    try:
        conn = sqlite3.connect(f"file:{quote(private)}?mode=rwc", uri=True, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            _build_schema(conn)
        finally:
            conn.close()  # the last connection: the WAL is checkpointed into the file, removed
        if os.path.exists(private + "-wal"):
            raise StoreError(f"{path}: the new store's schema could not be written whole")
        _fsync(private)
        try:
            os.link(private, path)
        except FileExistsError:
            return  # another process made the store first: it is used as it is
        except OSError:
            # No hard links here: an empty file, made a store in place under SQLite's lock by
            # whoever opens it first (see open_writer).
            try:
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
            except FileExistsError:
                return
        _fsync(directory, directory=True)
    finally:
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(private + suffix).unlink(missing_ok=True)


# --- opening --------------------------------------------------------------------------------


def writable_uri(path: str) -> str:
    """A read-write URI that never creates the file."""
    return f"file:{quote(os.path.abspath(path))}?mode=rw"


def nothing_can_be_written_beside(path: str) -> bool:
    """Whether the store is evidence: its file or directory has no write permission (for
    anyone, so root too), or they are not writable here (a read-only mount, an immutable
    directory, permissions)."""
    directory = os.path.dirname(os.path.abspath(path))
    try:
        file_mode = os.stat(path).st_mode
        dir_mode = os.stat(directory).st_mode
        read_only_mount = bool(os.statvfs(directory).f_flag & os.ST_RDONLY)
    except OSError:
        return False
    no_bits = not (stat.S_IMODE(file_mode) & 0o222) or not (stat.S_IMODE(dir_mode) & 0o222)
    return no_bits or read_only_mount or not os.access(directory, os.W_OK)


def wal_holds_events(path: str) -> bool:
    """Whether a write-ahead log beside the store may hold committed events."""
    try:
        return os.path.getsize(path + "-wal") > 0
    except OSError:
        return False


def readonly_uri(path: str, *, immutable: bool | None = None) -> str:
    """The URI a read-only open uses (see the module docstring); ``immutable`` forces the
    choice."""
    if immutable is None:
        immutable = not wal_holds_events(path) and nothing_can_be_written_beside(path)
    base = f"file:{quote(os.path.abspath(path))}?mode=ro"
    return base + "&immutable=1" if immutable else base


def _set_wal(conn: sqlite3.Connection, deadline: float) -> None:
    """WAL mode, waiting while another connection holds the lock it needs."""
    while True:
        try:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) and "busy" not in str(e):
                raise
            mode = None
        if mode == "wal":
            return
        if time.monotonic() > deadline:
            raise StoreError("the store stayed busy past the busy timeout (setting WAL mode)")
        time.sleep(0.005)


def open_writer(path: str, durability: Durability, busy_timeout: float) -> sqlite3.Connection:
    """The writer's connection: the store created first if the path is free, made a store in
    place if it is an empty file, migrated if older. Runs in the writer's own thread, which
    then owns the connection (``check_same_thread`` stays on)."""
    deadline = time.monotonic() + busy_timeout
    if not os.path.lexists(path):
        create_store_file(path)
    conn = sqlite3.connect(writable_uri(path), uri=True, timeout=busy_timeout, isolation_level=None)
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        header = read_header(conn)
        check_header(header, path, allow_empty=True)
        if header[1] == 0:  # an empty file
            _build_schema(conn)
        _set_wal(conn, deadline)
        conn.execute(f"PRAGMA synchronous = {durability.upper()}")
        if conn.execute("PRAGMA user_version").fetchone()[0] < SCHEMA_VERSION:
            migrate(conn)
    except BaseException:
        conn.close()
        raise
    return conn
