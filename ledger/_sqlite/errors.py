"""``sqlite3`` errors translated into the ledger's own (:mod:`ledger.errors`), in one place.

The primary SQLite result code decides: ``SQLITE_FULL`` (and an I/O error on a file system
with no space left) is :class:`DiskFullError`; ``SQLITE_CORRUPT`` and ``SQLITE_NOTADB`` are
:class:`DamagedStoreError` when the file's own header says it is a payledger store, and
:class:`NotALedgerError` when it does not.
"""

from __future__ import annotations

import os
import sqlite3
from typing import Final

from ..errors import (
    DamagedStoreError,
    DiskFullError,
    LedgerError,
    NotALedgerError,
    ReadOnlyError,
    StoreError,
)
from .schema import file_shortfall, header_says_store

__all__ = ["disk_is_full", "translate"]

_BUSY: Final = 5
_LOCKED: Final = 6
_READONLY: Final = 8
_IOERR: Final = 10
_CORRUPT: Final = 11
_FULL: Final = 13
_CANTOPEN: Final = 14
_NOTADB: Final = 26
_LOW_SPACE: Final = 64 * 1024
"""Below this many free bytes an I/O error while writing is taken for a full disk."""


def disk_is_full(path: str) -> bool:
    """Whether the file system holding ``path`` has (next to) no space left for this user."""
    try:
        stat = os.statvfs(os.path.dirname(os.path.abspath(path)) or ".")
    except OSError:
        return False
    return stat.f_bavail * stat.f_frsize < _LOW_SPACE


def translate(
    e: sqlite3.Error, what: str, path: str | None = None, *, position: int = 1
) -> LedgerError:
    """The ledger error for ``e``, met while doing ``what`` (a phrase that starts with the
    store's path). ``position``: the first position the failing read needed, named when the
    file turns out to be damaged."""
    code = getattr(e, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else None
    message = str(e)
    if primary == _FULL or (
        path is not None and primary in (_IOERR, _CANTOPEN) and disk_is_full(path)
    ):
        return DiskFullError(
            f"{what}: the disk is full; nothing of this write was stored "
            f"(free some space and try again) ({message})"
        )
    if primary == _READONLY or "readonly" in message or "read-only" in message:
        return ReadOnlyError(f"{what}: the store is read-only ({message})")
    if primary in (_BUSY, _LOCKED) or "locked" in message or "busy" in message:
        return StoreError(f"{what}: the store stayed busy past the busy timeout ({message})")
    if primary in (_CORRUPT, _NOTADB) or "malformed" in message or "not a database" in message:
        if path is not None and header_says_store(path):
            short = file_shortfall(path)
            cut = (
                ""
                if short is None
                else (
                    f"; it is cut short: {short[0]:,} bytes of the {short[1]:,} its header promises"
                )
            )
            return DamagedStoreError(
                position,
                f"{what}: the file is damaged ({message}): its header says payledger store, "
                f"but its pages cannot be read whole{cut}",
                damaged="the file",
            )
        return NotALedgerError(f"{what}: not a payledger store ({message})")
    if primary == _CANTOPEN:
        return StoreError(f"{what}: cannot open the file ({message})")
    return StoreError(f"{what}: {message}")
