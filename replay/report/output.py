"""Where a report goes: standard output (``-``) or a file written atomically (a temporary file
in the same folder, then ``os.replace``), never onto a store: not the ``--db`` file or its
SQLite companions, and not any existing SQLite database (a payledger store or another)."""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path
from typing import Final

from ledger.errors import LedgerError
from ledger.sqlite import APPLICATION_ID

__all__ = ["check_target", "write_output"]

_SQLITE_MAGIC: Final = b"SQLite format 3\x00"
_COMPANIONS: Final = ("", "-wal", "-shm", "-journal")


def _is_url(db: str) -> bool:
    return "://" in db


def check_target(target: str, db: str | None) -> None:
    """Raise :class:`~ledger.errors.LedgerError` when writing ``target`` could destroy a store:
    it is the store ``db`` (or one of its SQLite files), an existing SQLite database, or a
    folder. ``-`` (standard output) is always fine."""
    if target == "-":
        return
    path = Path(target)
    if db and not _is_url(db):
        mine = os.path.realpath(path)
        for suffix in _COMPANIONS:
            theirs = db + suffix
            if os.path.realpath(theirs) == mine or (
                path.exists() and os.path.exists(theirs) and os.path.samefile(path, theirs)
            ):
                raise LedgerError(f"{target}: is the store itself (--db); refusing to write there")
    if path.is_dir():
        raise LedgerError(f"{target}: is a folder; name a file")
    if path.exists():
        try:
            with path.open("rb") as handle:
                head = handle.read(100)
        except OSError:
            return  # unreadable: os.replace says what is wrong, if anything
        if head.startswith(_SQLITE_MAGIC):
            what = (
                "a payledger store"
                if len(head) >= 72 and int.from_bytes(head[68:72], "big") == APPLICATION_ID
                else "an SQLite database"
            )
            raise LedgerError(f"{target}: is {what}; refusing to overwrite it with a report")


def write_output(target: str, content: bytes, db: str | None = None) -> None:
    """Write ``content`` to ``target`` (``-``: standard output) after :func:`check_target`:
    into a temporary file of the same folder, flushed to disk, then renamed over ``target``,
    so a reader never sees half a report and a failure leaves ``target`` as it was."""
    check_target(target, db)
    if target == "-":
        sys.stdout.buffer.write(content)
        sys.stdout.flush()
        return
    path = Path(target)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.partial")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
