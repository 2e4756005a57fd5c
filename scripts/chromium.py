"""Headless Chromium (Debian's ``chromium`` package) for the report's browser tests and the
README's screenshots: one place for the switches that keep it off the network.

``.ci/chromium.sh`` installs the package when ``/usr/bin/chromium`` is missing;
``$PAYLEDGER_CHROMIUM`` names another binary.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import tempfile
import zlib
from pathlib import Path
from typing import Final

__all__ = [
    "SWITCHES",
    "binary",
    "dump_dom",
    "page_requests",
    "png_summary",
    "screenshot",
]

SWITCHES: Final = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-domain-reliability",
    "--no-pings",
    "--hide-scrollbars",
    # no host name resolves: whatever the browser (or a page) asks for never leaves the machine
    "--host-resolver-rules=MAP * ~NOTFOUND",
)
TIMEOUT: Final = 60.0


def binary() -> str | None:
    """The Chromium to run (``$PAYLEDGER_CHROMIUM``, else ``/usr/bin/chromium``, else
    ``chromium`` on the PATH), or ``None`` when there is none."""
    named = os.environ.get("PAYLEDGER_CHROMIUM")
    if named:
        return named if os.access(named, os.X_OK) else None
    if os.access("/usr/bin/chromium", os.X_OK):
        return "/usr/bin/chromium"
    return shutil.which("chromium")


def _run(page: Path, *extra: str) -> bytes:
    """Run Chromium on ``page`` with a fresh profile; returns its standard output."""
    chromium = binary()
    if chromium is None:
        raise FileNotFoundError("no Chromium: run .ci/chromium.sh (apt-get install chromium)")
    with tempfile.TemporaryDirectory(prefix="payledger-chromium-") as profile:
        done = subprocess.run(
            [chromium, *SWITCHES, f"--user-data-dir={profile}", *extra, page.resolve().as_uri()],
            capture_output=True,
            timeout=TIMEOUT,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    if done.returncode != 0:
        tail = done.stderr.decode("utf-8", "replace")[-2000:]
        raise RuntimeError(f"chromium exited {done.returncode} on {page}: {tail}")
    return done.stdout


def dump_dom(page: Path, *, net_log: Path | None = None) -> str:
    """The page's DOM after loading, serialised (``--dump-dom``); with ``net_log``, Chromium
    also records every request it makes there (:func:`page_requests` reads it)."""
    extra = ("--dump-dom",) if net_log is None else ("--dump-dom", f"--log-net-log={net_log}")
    return _run(page, *extra).decode("utf-8")


def screenshot(page: Path, png: Path, *, width: int = 1280, height: int = 2000) -> None:
    """A PNG of the page's first ``width`` x ``height`` pixels."""
    png.parent.mkdir(parents=True, exist_ok=True)
    _run(page, f"--screenshot={png.resolve()}", f"--window-size={width},{height}")
    if not png.is_file():
        raise RuntimeError(f"chromium wrote no screenshot of {page}")


def page_requests(net_log: Path) -> list[str]:
    """The URLs the page asked the network stack for, from a net log of :func:`dump_dom`:
    every request but Chromium's own (whose initiator is "not an origin")."""
    log = json.loads(net_log.read_text(encoding="utf-8"))
    names = {number: name for name, number in log["constants"]["logEventTypes"].items()}
    found = []
    for event in log["events"]:
        params = event.get("params") or {}
        if names.get(event["type"]) != "URL_REQUEST_START_JOB" or "url" not in params:
            continue
        if params.get("initiator") != "not an origin":
            found.append(str(params["url"]))
    return found


def png_summary(png: Path) -> tuple[int, int, int]:
    """(width, height, distinct byte values of the decoded scanlines) of a PNG: a blank or
    one-colour picture has very few distinct values."""
    data = png.read_bytes()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError(f"{png}: not a PNG")
    width, height = struct.unpack(">II", data[16:24])
    idat = bytearray()
    at = 8
    while at < len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        kind = data[at + 4 : at + 8]
        if kind == b"IDAT":
            idat += data[at + 8 : at + 8 + length]
        at += 12 + length
    pixels = zlib.decompress(bytes(idat))
    return width, height, len(set(pixels))
