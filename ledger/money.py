"""Amounts as people read them: integer minor units (fen) shown as ``1,566.00 CNY``.

Every human-readable amount of payledger (warnings, explanations, tables) goes through
:func:`format_money`, so money reads the same everywhere. Integer arithmetic only.
"""

from __future__ import annotations

__all__ = ["format_money"]


def format_money(minor: int, currency: str = "") -> str:
    """``156600, "CNY"`` -> ``"1,566.00 CNY"``; without a currency, ``"1,566.00"``."""
    sign = "-" if minor < 0 else ""
    major, cents = divmod(abs(minor), 100)
    text = f"{sign}{major:,}.{cents:02d}"
    return f"{text} {currency}" if currency else text
