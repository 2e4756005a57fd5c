"""What a judgement finds: a cause, in one of the categories of CONTRACT section 1."""

from __future__ import annotations

from typing import Final, Literal, TypeAlias

import msgspec

__all__ = ["CATEGORIES", "Category", "Cause"]

Category: TypeAlias = Literal["channel_policy", "system", "credit", "user_action", "unknown"]
CATEGORIES: Final[tuple[Category, ...]] = (
    "channel_policy",
    "system",
    "credit",
    "user_action",
    "unknown",
)
"""In the order a payment passes them (CONTRACT rule 7.3); ``unknown`` last."""


class Cause(msgspec.Struct, frozen=True, kw_only=True):
    """One blocking condition that held, and the events that prove it."""

    category: Category
    summary: str
    evidence: tuple[int, ...]
    """Global positions, ascending: the events that put the world into the blocking state (and,
    for what an attempt observed, the observation itself)."""
    remedy: str
