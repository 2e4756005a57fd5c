"""A fresh process that reads a whole store and reports its peak memory.

``python -m bench._child store|raw PATH`` reads every event of the store at ``PATH`` (``store``:
``read_all`` with decoding; ``raw``: ``sqlite3`` ``SELECT`` + the same msgspec decoder) and prints
one JSON object: events read, seconds, and the process's RSS high-water mark before and after
the read, in bytes. It does nothing else, so the high-water mark is the read's.
"""

from __future__ import annotations

import json
import resource
import sqlite3
import sys
import time
from typing import Any

import anyio

from ledger import open_store
from ledger.events import DECODER

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


def main(argv: list[str]) -> None:
    kind, path = argv
    result = anyio.run(_store, path) if kind == "store" else _raw(path)
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
