"""How judgements word amounts, positions, moments and the channel to suggest instead."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Final

from ledger.money import format_money

__all__ = ["FALLBACK_ORDER", "alternative", "money", "plural", "positions", "when"]

FALLBACK_ORDER: Final = ("bank_card", "balance", "huabei", "jiebei")
"""The channels a remedy suggests first, when the merchant accepts them."""


def money(minor: int, currency: str) -> str:
    """``1,566.00 CNY``: minor units (fen) as major units, grouped, with the currency
    (:func:`ledger.money.format_money`, the one rule for every amount shown)."""
    return format_money(minor, currency)


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """``1 event``, ``2 events``."""
    return f"{count:,} {noun if count == 1 else (nouns or noun + 's')}"


def positions(values: Sequence[int]) -> str:
    """``position 4`` or ``positions 4, 9``."""
    if len(values) == 1:
        return f"position {values[0]}"
    return "positions " + ", ".join(str(p) for p in values)


def when(ts: datetime) -> str:
    """A moment as RFC 3339 UTC, to the second."""
    return ts.strftime("%Y-%m-%dT%H:%M:%SZ")


def alternative(allowed: Sequence[str] | None, failing: str) -> str:
    """A channel to suggest instead of ``failing``: one the merchant accepts (``allowed``;
    ``None``: no rule, every channel), cards first."""
    pool = FALLBACK_ORDER if allowed is None else allowed
    ranked = [c for c in FALLBACK_ORDER if c in pool] + [c for c in pool if c not in FALLBACK_ORDER]
    for channel in ranked:
        if channel != failing:
            return channel
    return "another channel"
