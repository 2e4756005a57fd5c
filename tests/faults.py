"""What the fault tests share: running the CLI in a child process, building stores from the
fixture generator, damaging copies of a store, and the file-system tricks (a small tmpfs, a
read-only bind mount) that need root."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from fixtures.generate import write

__all__ = [
    "ROOT",
    "cli",
    "damage",
    "has_open",
    "interrupt",
    "is_root",
    "listing",
    "readonly_bind_mount",
    "spawn_cli",
    "tmpfs",
    "wait_until",
    "write_source",
]

ROOT = Path(__file__).resolve().parents[1]
"""The checkout under test: children run its code, whatever is installed."""


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT)
    env.pop("PAYLEDGER_DB", None)
    return env


def spawn_cli(*args: str, stdin: int | None = None) -> subprocess.Popen[bytes]:
    """``payledger ARGS`` in a child process (``python -m replay``)."""
    return subprocess.Popen(
        [sys.executable, "-m", "replay", *args],
        cwd=ROOT,
        env=_env(),
        stdin=stdin if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def cli(*args: str, timeout: float = 120) -> tuple[int, str, str]:
    """Run ``payledger ARGS`` to its end: (exit code, stdout, stderr)."""
    proc = spawn_cli(*args)
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out.decode(), err.decode()


def write_source(path: Path, events: int, seed: int = 7) -> None:
    """A JSON Lines file of ``events`` realistic events (the fixture generator)."""
    with path.open("wb") as f:
        write(f, events, seed)


def wait_until(condition: object, what: str, limit: float = 60.0) -> None:
    """Poll ``condition()`` until true; a hang guard, never a timing assertion."""
    assert callable(condition)
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.002)


def has_open(pid: int, path: Path) -> bool:
    """Whether process ``pid`` holds ``path`` open (Linux /proc)."""
    target = str(path.resolve())
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                if os.readlink(f"/proc/{pid}/fd/{fd}") == target:
                    return True
    except OSError:
        return False
    return False


def interrupt(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(proc.pid, signal.SIGINT)


# --- damage ---------------------------------------------------------------------------------


def _pages(path: Path, name: str, kind: str) -> list[int]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return [
            int(p)
            for (p,) in conn.execute(
                "SELECT pageno FROM dbstat WHERE name = ? AND pagetype = ? ORDER BY pageno",
                (name, kind),
            )
        ]
    finally:
        conn.close()


def damage(source: Path, target: Path, how: str) -> None:
    """A copy of the (closed, checkpointed) store ``source`` at ``target``, damaged ``how``:
    ``leaf`` (an events page zeroed mid-file), ``interior`` (an events interior page's cell
    pointers overwritten), ``index`` (bytes of a page of the event-id index overwritten),
    ``truncate`` (the last page cut off), ``schema`` (the schema page's cells overwritten,
    the 100-byte header kept), ``header`` (the first 100 bytes overwritten)."""
    shutil.copyfile(source, target)
    page_size = 4096
    with target.open("r+b") as f:
        if how == "leaf":
            pages = _pages(source, "events", "leaf")
            f.seek((pages[len(pages) // 2] - 1) * page_size)
            f.write(bytes(page_size))
        elif how == "interior":
            page = _pages(source, "events", "internal")[0]
            f.seek((page - 1) * page_size + 12)
            f.write(b"\x5a\xa5" * 8)
        elif how == "index":
            pages = _pages(source, "sqlite_autoindex_events_1", "leaf")
            f.seek((pages[len(pages) // 2] - 1) * page_size + page_size - 200)
            f.write(bytes(range(7, 7 + 16)))
        elif how == "truncate":
            f.truncate(target.stat().st_size - page_size)
        elif how == "schema":
            f.seek(100 + 8)
            f.write(b"\xff" * 64)
        elif how == "header":
            f.seek(0)
            f.write(b"\x00" * 100)
        else:
            raise ValueError(how)


# --- file systems ---------------------------------------------------------------------------


def is_root() -> bool:
    return os.geteuid() == 0


def _run(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True)


@contextlib.contextmanager
def tmpfs(path: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` mounted at ``path`` (root only)."""
    path.mkdir(parents=True, exist_ok=True)
    _run("mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path))
    try:
        yield path
    finally:
        _run("umount", "-l", str(path))


@contextlib.contextmanager
def readonly_bind_mount(source: Path, target: Path) -> Iterator[Path]:
    """``source`` seen read-only at ``target``: even root cannot write there (root only)."""
    target.mkdir(parents=True, exist_ok=True)
    _run("mount", "--bind", str(source), str(target))
    try:
        _run("mount", "-o", "remount,ro,bind", str(target))
        yield target
    finally:
        _run("umount", "-l", str(target))


def listing(directory: Path) -> Sequence[tuple[str, int, int]]:
    """Every file of ``directory``: name, size, modification time (ns)."""
    return sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in directory.iterdir())
