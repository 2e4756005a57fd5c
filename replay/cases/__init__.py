"""The car-loan payment incidents the demo explains, shipped as package data of the replay.

Each ``<name>.jsonl`` is a self-contained incident log in the JSON Lines interchange format
(CONTRACT section 3), meant to be imported into an *empty* store, so its line *n* lands at global
position *n*; ``<name>.expected.json`` holds the parts of the incident explanation (CONTRACT
section 5) that are certain, checked field by field by the test suite, with the trap the incident
sets; ``index.json`` lists the incidents in demo order with the payments to explain.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Final

__all__ = [
    "INCIDENTS_DIR",
    "expected",
    "incident_names",
    "incident_path",
    "index",
]

INCIDENTS_DIR: Final[Path] = Path(__file__).resolve().parent
"""The folder of incident logs (``*.jsonl``), their ``*.expected.json`` and ``index.json``."""


def index() -> list[dict[str, Any]]:
    """The incidents in demo order: ``{"name", "file", "payments", "title"}`` each."""
    data: list[dict[str, Any]] = json.loads(
        (INCIDENTS_DIR / "index.json").read_text(encoding="utf-8")
    )
    return data


def incident_names() -> list[str]:
    """The incident names in demo order (as listed by :func:`index`)."""
    return [str(entry["name"]) for entry in index()]


def incident_path(name: str) -> Path:
    """The JSON Lines log of incident ``name``; ``KeyError`` if there is no such incident."""
    path = INCIDENTS_DIR / f"{name}.jsonl"
    if "/" in name or "\\" in name or not path.is_file():
        raise KeyError(f"no incident named {name!r}")
    return path


def expected(name: str) -> dict[str, Any]:
    """The expected explanations of incident ``name``: ``{"description", "explain": [...]}``."""
    incident_path(name)  # the same KeyError for an unknown name
    data: dict[str, Any] = json.loads(
        (INCIDENTS_DIR / f"{name}.expected.json").read_text(encoding="utf-8")
    )
    return data
