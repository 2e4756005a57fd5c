"""One module per ``payledger`` command; each has ``register(subparsers)``. The CLI finds them
by name (:func:`replay.cli.build_parser`), so a new command is a new module."""

from __future__ import annotations

__all__: list[str] = []
