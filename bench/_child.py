"""A fresh process that does one thing to a store and reports its time and peak memory.

``python -m bench._child store|raw|rebuild|read_decode PATH`` reads every event of the store
at ``PATH`` (``store``: ``read_all`` with decoding; ``raw``: ``sqlite3`` ``SELECT`` + the same
msgspec decoder), rebuilds its projections (``rebuild``: :meth:`projections.Projector.rebuild`),
or reads and decodes it as the rebuild figures' raw baseline does (``read_decode``:
:func:`bench._raw.read_decode`), and prints one JSON object: events, seconds, and the process's
RSS high-water mark before and after, in bytes. It does nothing else, so the high-water mark is
that work's.

``python -m bench._child cli ARG...`` runs ``payledger ARG...`` in this process and prints the
same object with what the process wrote (``/proc/self/io``: ``wchar``, the bytes it handed to
``write`` calls; ``write_bytes``, the bytes it caused to be sent to storage) and the exit code.
"""

from __future__ import annotations

import contextlib
import io
import json
import resource
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

import anyio

from ledger import open_store
from ledger.events import DECODER
from projections import Projector

from ._raw import read_decode

__all__ = ["main"]

_SELECT = (
    "SELECT position, stream, version, type, schema, occurred_at, recorded_at, "
    "event_id, correlation_id, causation_id, data FROM events ORDER BY position"
)


def _peak_rss() -> int:
    """This process's RSS high-water mark in bytes.

    On Linux ``VmHWM`` of ``/proc/self/status``: ``getrusage``'s ``ru_maxrss`` survives
    ``execve``, so in a child it starts from the parent's RSS at ``fork`` (a benchmark process
    that just built a million events) and would report the parent's memory, not the read's.
    Elsewhere ``ru_maxrss`` (kilobytes on Linux, bytes on macOS).
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


async def _store(path: str) -> dict[str, Any]:
    async with open_store(path, readonly=True) as store:
        before = _peak_rss()
        start = time.perf_counter()
        count = 0
        async for _ in store.read_all():
            count += 1
        seconds = time.perf_counter() - start
    return {"events": count, "seconds": seconds, "rss_before": before, "rss_peak": _peak_rss()}


def _raw(path: str) -> dict[str, Any]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        before = _peak_rss()
        start = time.perf_counter()
        count = 0
        for row in conn.execute(_SELECT):
            DECODER.decode(row[10])
            count += 1
        seconds = time.perf_counter() - start
    finally:
        conn.close()
    return {"events": count, "seconds": seconds, "rss_before": before, "rss_peak": _peak_rss()}


async def _rebuild(path: str) -> dict[str, Any]:
    async with open_store(path) as store, Projector.open(store) as projector:
        before = _peak_rss()
        start = time.perf_counter()
        result = await projector.rebuild()
        seconds = time.perf_counter() - start
    return {
        "events": result.events,
        "seconds": seconds,
        "rss_before": before,
        "rss_peak": _peak_rss(),
    }


def _read_decode(path: str) -> dict[str, Any]:
    before = _peak_rss()
    start = time.perf_counter()
    count = read_decode(Path(path))
    seconds = time.perf_counter() - start
    return {"events": count, "seconds": seconds, "rss_before": before, "rss_peak": _peak_rss()}


def _io() -> dict[str, int]:
    """This process's ``/proc/self/io`` counters (empty where there is none)."""
    found: dict[str, int] = {}
    try:
        with open("/proc/self/io", encoding="ascii") as io:
            for line in io:
                key, value = line.split(":")
                found[key] = int(value)
    except OSError:
        pass
    return found


def _cli(argv: list[str]) -> dict[str, Any]:
    from replay.cli import main as payledger

    before = _peak_rss()
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        code = payledger(argv)
    seconds = time.perf_counter() - start
    counters = _io()
    return {
        "code": code,
        "seconds": seconds,
        "rss_before": before,
        "rss_peak": _peak_rss(),
        "wchar": counters.get("wchar"),
        "write_bytes": counters.get("write_bytes"),
    }


def main(argv: list[str]) -> None:
    kind, *args = argv
    if kind == "cli":
        result = _cli(args)
    elif kind == "store":
        result = anyio.run(_store, args[0])
    elif kind == "rebuild":
        result = anyio.run(_rebuild, args[0])
    elif kind == "read_decode":
        result = _read_decode(args[0])
    else:
        result = _raw(args[0])
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
