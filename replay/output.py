"""Where commands write files: one rule for every output path (``export FILE``,
``simulate --truth FILE``, and any command that writes one later).

:func:`check_output` runs before the command writes or reads anything, and refuses (a
:class:`~ledger.errors.LedgerError`, exit 2, one line naming the option):

- a directory, or a path whose directory does not exist;
- the store the command uses (``--db``): the same path, the same file reached through a
  symlink or a hard link, or one of its ``-wal``, ``-shm`` and ``-journal`` companions;
- any payledger store (an SQLite file whose application id, at offset 68 of its header, is
  payledger's ``0x50594C47``), and the companions of one.

:func:`open_output` then writes

- ``-`` (and ``/dev/stdout``) to standard output, ``/dev/stderr`` and ``/dev/fd/N`` to that
  open descriptor, and a pipe, a terminal or another device (``/dev/null``, a FIFO) directly:
  they are streams, opened without truncating and never replaced;
- a regular file (new or existing) through a temporary file in the same directory, moved over
  the target by ``os.replace`` once everything is written and synced. A command that fails or
  is interrupted leaves the old file as it was and no temporary file behind. A symlink is
  followed: the file it points to is replaced, the link stays. The new file keeps the old one's
  permissions (a new one gets the usual ``0o666`` less the umask).
"""

from __future__ import annotations

import os
import secrets
import stat
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import BinaryIO, Final, Literal, NamedTuple

from ledger.errors import LedgerError
from ledger.sqlite import APPLICATION_ID

__all__ = [
    "COMPANIONS",
    "OutputTarget",
    "check_output",
    "is_database",
    "is_ledger_store",
    "open_output",
]

COMPANIONS: Final = ("-wal", "-shm", "-journal")
"""The files SQLite keeps beside a database, named by suffix."""

_SQLITE_MAGIC: Final = b"SQLite format 3\x00"
_FD_PATHS: Final = ("/dev/fd/", "/proc/self/fd/")


class OutputTarget(NamedTuple):
    """An output path that :func:`check_output` accepted."""

    path: str
    """As the user gave it (``-``: standard output)."""
    kind: Literal["stdout", "descriptor", "stream", "file"]
    real: str
    """The path written: for a file, the symlink-resolved target that is replaced."""
    mode: int | None = None
    """An existing regular file's permission bits, kept by the new file."""
    descriptor: int | None = None
    """The open file descriptor a ``/dev/fd/N`` (or ``/dev/stderr``) path names."""


def _descriptor(absolute: str) -> int | None:
    """The descriptor a path of an open descriptor names (``/dev/stdout``: 1), or None."""
    if absolute in ("/dev/stdout", "/dev/stderr"):
        return 1 if absolute == "/dev/stdout" else 2
    for prefix in _FD_PATHS:
        number = absolute.removeprefix(prefix)
        if number != absolute and number.isdigit():
            return int(number)
    return None


def _header(path: str) -> bytes:
    """The first bytes of a regular file (empty for anything else or unreadable)."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return b""  # never open a FIFO or a device to look: it could block
        with open(path, "rb") as handle:
            return handle.read(72)
    except OSError:
        return b""


def is_ledger_store(path: str) -> bool:
    """Whether ``path`` is a regular file whose header is a payledger SQLite store's."""
    header = _header(path)
    return (
        len(header) == 72
        and header.startswith(_SQLITE_MAGIC)
        and int.from_bytes(header[68:72], "big") == APPLICATION_ID
    )


def is_database(path: str) -> bool:
    """Whether ``path`` is a regular file whose header is an SQLite database's (any)."""
    return _header(path).startswith(_SQLITE_MAGIC)


def _is_url(db: str) -> bool:
    return "://" in db


def _same_file(a: str, b: str) -> bool:
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):
        return False


def _store_it_would_hit(path: str, real: str, db: str | None) -> str | None:
    """What writing ``path`` would overwrite of a store (a phrase), or None."""
    if db and not _is_url(db):
        for suffix in ("", *COMPANIONS):
            if _same_file(path, db + suffix):
                return f"the {suffix[1:]} file of the store {db}" if suffix else f"the store {db}"
    for candidate in dict.fromkeys((path, real)):
        if is_ledger_store(candidate):
            return "a payledger store"
        if is_database(candidate):
            return "an SQLite database"
        for suffix in COMPANIONS:
            if candidate.endswith(suffix) and is_ledger_store(candidate.removesuffix(suffix)):
                return f"the {suffix[1:]} file of the payledger store {candidate[: -len(suffix)]}"
    return None


def check_output(path: str, *, option: str, db: str | None = None) -> OutputTarget:
    """Accept ``path`` as the output named by ``option`` of a command using the store ``db``,
    or raise :class:`LedgerError` saying why not (see the module docstring)."""
    if path == "-":
        return OutputTarget(path, "stdout", path)
    if not path or "\x00" in path:
        raise LedgerError(f"{option}: {path!r} is not a file name")
    absolute = os.path.abspath(path)
    real = os.path.realpath(path)
    hit = _store_it_would_hit(path, real, db)
    if hit is not None:
        raise LedgerError(f"{option} {path}: refusing to overwrite {hit}")
    try:
        info: os.stat_result | None = os.stat(path)
    except FileNotFoundError:
        info = None
    except OSError as e:
        raise LedgerError(f"{option} {path}: {e.strerror or e}") from e
    if info is not None and stat.S_ISDIR(info.st_mode):
        raise LedgerError(f"{option} {path}: is a directory; name a file in it")
    number = _descriptor(absolute)
    if number is not None:
        if info is None:
            raise LedgerError(f"{option} {path}: descriptor {number} is not open")
        kind: Literal["stdout", "descriptor"] = "stdout" if number == 1 else "descriptor"
        return OutputTarget(path, kind, path, descriptor=number)
    if info is not None and not stat.S_ISREG(info.st_mode):
        return OutputTarget(path, "stream", real)
    directory = os.path.dirname(real)
    shown = os.path.dirname(path) or "."
    if not os.path.isdir(directory):
        raise LedgerError(f"{option} {path}: no such directory {shown}")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise LedgerError(f"{option} {path}: cannot write in the directory {shown}")
    if info is not None and not os.access(real, os.W_OK):
        raise LedgerError(f"{option} {path}: the file is read-only")
    mode = None if info is None else stat.S_IMODE(info.st_mode)
    return OutputTarget(path, "file", real, mode=mode)


@contextmanager
def open_output(target: OutputTarget) -> Iterator[BinaryIO]:
    """The binary stream to write ``target`` through (see the module docstring). The file is in
    place only once the ``with`` block ends without an exception."""
    if target.kind == "stdout":
        out = sys.stdout.buffer
        yield out
        out.flush()
        return
    if target.kind == "descriptor":
        assert target.descriptor is not None
        with os.fdopen(os.dup(target.descriptor), "wb") as stream:
            yield stream
        return
    if target.kind == "stream":  # a FIFO or a device: opened as it is, never truncated
        fd = os.open(target.real, os.O_WRONLY | getattr(os, "O_CLOEXEC", 0))
        with os.fdopen(fd, "wb") as stream:
            yield stream
        return
    directory, name = os.path.split(target.real)
    temporary = os.path.join(directory, f".{name}.{secrets.token_hex(4)}.partial")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(temporary, flags, 0o666 if target.mode is None else target.mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            if target.mode is not None:
                os.chmod(temporary, target.mode)  # exactly the old bits, whatever the umask
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target.real)
    except BaseException:
        with suppress(OSError):
            os.unlink(temporary)
        raise
