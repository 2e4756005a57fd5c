"""The ``payledger`` console script's entry point.

It does one thing before anything else loads: Ctrl-C. Python turns SIGINT into a
``KeyboardInterrupt`` wherever the program is; during start-up that is deep inside some
module's import, where nothing catches it and Python prints a traceback. This module installs
a handler first, so that a Ctrl-C at any moment exits 130 with one line,
``payledger: interrupted``:

- while the program loads (and after it has finished), the handler prints the line and exits
  at once (there is nothing to clean up: nothing has been opened yet, or everything is closed);
- while :func:`replay.cli.main` runs, Ctrl-C is an ordinary ``KeyboardInterrupt`` again, so that
  open stores roll back and close, and ``main`` reports it in the same line.

It imports nothing of payledger at module level: the package ``replay`` loads the whole engine.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from types import FrameType

__all__ = ["run"]

_EXIT_INTERRUPTED = 130


def _leave(signum: int, frame: FrameType | None) -> None:
    try:
        os.write(2, b"payledger: interrupted\n")
    finally:
        os._exit(_EXIT_INTERRUPTED)


def _install() -> None:
    with contextlib.suppress(ValueError):  # not the main thread: leave the host's handling
        signal.signal(signal.SIGINT, _leave)


_install()


def run() -> None:
    """Run ``payledger`` with ``sys.argv`` and exit with its exit code."""
    from replay.cli import main

    previous = signal.getsignal(signal.SIGINT)
    if previous is _leave:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        code = main()
    except KeyboardInterrupt:  # in the instant between main's last line and this one
        os.write(2, b"payledger: interrupted\n")
        code = _EXIT_INTERRUPTED
    finally:
        if previous is _leave:
            signal.signal(signal.SIGINT, _leave)
    sys.exit(code)
