"""Why a payment attempt failed: the judgement rules of CONTRACT section 7, in one place."""

from __future__ import annotations

__all__: list[str] = []
