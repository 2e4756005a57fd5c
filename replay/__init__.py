"""payledger's replay side: time travel, root-cause analysis and the ``payledger`` CLI."""

from __future__ import annotations

__all__: list[str] = []
