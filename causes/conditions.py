"""The blocking conditions of CONTRACT rule 7.3, as one table that every judge reads.

A row per condition, in the order a payment passes them: the merchant's policy, the channel's
health, what the caller observed of the channel (a timeout), the credit line's status, its
available credit, the customer's verification, what the caller observed of the customer's
details. Each row says

- its ``category`` and its ``scope``: ``state`` rows test the world an attempt met (the router
  asks them of every candidate channel before it tries one); ``customer`` rows test what the
  customer did during the attempt, which would carry over to any channel (a what-if keeps
  them); ``attempt`` rows test what the caller observed of this attempt on this channel;
- ``applies``: whether the row concerns the attempt at all (credit rows: ``huabei`` and
  ``jiebei`` only);
- ``holds``: whether the condition held at the moment;
- ``evidence``: the positions that prove it (when it does not hold: the state it consulted);
- ``summary`` and ``remedy``: the words of an explanation; ``clear``: what a check says when
  the condition did not hold.

:func:`judge` finds the cause of an attempt: the first category that holds, then every other
that holds, in order (one cause per category: its first row that holds); when none holds, the
decline code decides by rule 7.4 (:mod:`causes.codes`). :func:`blocking` serves a router's
candidate checks and :func:`checks` a what-if. Adding a condition is one row here.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Final, Literal, TypeAlias

import msgspec

from projections.account import CREDIT_PRODUCTS

from . import rows
from .cause import Category, Cause
from .codes import rule_for
from .moment import Moment
from .wording import money

__all__ = [
    "CONDITIONS",
    "Check",
    "CheckStatus",
    "Condition",
    "Scope",
    "blocking",
    "checks",
    "fallback",
    "judge",
]

Scope: TypeAlias = Literal["state", "attempt", "customer"]
CheckStatus: TypeAlias = Literal["passed", "failed", "not_applicable"]


@dataclass(frozen=True, slots=True)
class Condition:
    """One row of the table (see the module docstring)."""

    name: str
    category: Category
    scope: Scope
    applies: Callable[[Moment], bool]
    holds: Callable[[Moment], bool]
    evidence: Callable[[Moment], tuple[int, ...]]
    summary: Callable[[Moment], str]
    remedy: Callable[[Moment], str]
    clear: Callable[[Moment], str]

    def cause(self, m: Moment) -> Cause:
        """The cause this row gives when it holds."""
        return Cause(
            category=self.category,
            summary=self.summary(m),
            evidence=self.evidence(m),
            remedy=self.remedy(m),
        )


class Check(msgspec.Struct, frozen=True, kw_only=True):
    """One condition asked of a moment, for a what-if."""

    check: str
    status: CheckStatus
    detail: str
    evidence: tuple[int, ...] = ()


# --- the table ------------------------------------------------------------------------------

CONDITIONS: Final[tuple[Condition, ...]] = (
    Condition(
        name="policy",
        category="channel_policy",
        scope="state",
        applies=rows.always,
        holds=rows.policy_holds,
        evidence=rows.policy_evidence,
        summary=rows.policy_summary,
        remedy=rows.policy_remedy,
        clear=rows.policy_clear,
    ),
    Condition(
        name="channel_health",
        category="system",
        scope="state",
        applies=rows.always,
        holds=rows.channel_holds,
        evidence=rows.channel_evidence,
        summary=rows.channel_summary,
        remedy=rows.channel_remedy,
        clear=rows.channel_clear,
    ),
    Condition(
        name="observed_by_caller",
        category="system",
        scope="attempt",
        applies=rows.declined,
        holds=rows.observed("system"),
        evidence=rows.the_decline,
        summary=rows.timeout_summary,
        remedy=rows.timeout_remedy,
        clear=rows.not_observed,
    ),
    Condition(
        name="credit_status",
        category="credit",
        scope="state",
        applies=rows.on_credit,
        holds=rows.status_holds,
        evidence=rows.status_evidence,
        summary=rows.status_summary,
        remedy=rows.status_remedy,
        clear=rows.status_clear,
    ),
    Condition(
        name="available_credit",
        category="credit",
        scope="state",
        applies=rows.on_credit,
        holds=rows.short_holds,
        evidence=rows.short_evidence,
        summary=rows.short_summary,
        remedy=rows.short_remedy,
        clear=rows.short_clear,
    ),
    Condition(
        name="verification",
        category="user_action",
        scope="customer",
        applies=rows.verified,
        holds=rows.verification_holds,
        evidence=rows.verification_evidence,
        summary=rows.verification_summary,
        remedy=rows.verification_remedy,
        clear=rows.verification_clear,
    ),
    Condition(
        name="details_rejected",
        category="user_action",
        scope="attempt",
        applies=rows.declined,
        holds=rows.observed("user_action"),
        evidence=rows.the_decline,
        summary=rows.details_summary,
        remedy=rows.details_remedy,
        clear=rows.not_observed,
    ),
)
"""Every blocking condition, in the order a payment passes them (CONTRACT rule 7.3)."""

ALL_SCOPES: Final[frozenset[Scope]] = frozenset({"state", "attempt", "customer"})


# --- judging --------------------------------------------------------------------------------


def blocking(m: Moment, scopes: Collection[Scope] = ALL_SCOPES) -> list[tuple[Condition, Cause]]:
    """Every row of ``scopes`` that applies and holds at ``m``, in table order."""
    return [
        (row, row.cause(m))
        for row in CONDITIONS
        if row.scope in scopes and row.applies(m) and row.holds(m)
    ]


def fallback(m: Moment) -> Cause:
    """Rule 7.4: the cause when no condition holds, from the decline code alone."""
    code = rule_for(m.code)
    if code.fallback is not None and m.declined_at is not None:
        return Cause(
            category=code.fallback,
            summary=(
                f"declined {m.code} while the log shows no blocking state: the decline itself "
                f"(position {m.declined_at}) is the only evidence"
            ),
            evidence=(m.declined_at,),
            remedy=f"retry, or pay by {rows.instead(m)}",
        )
    return _unknown(m, code.missing.format(channel=m.channel))


def _unknown(m: Moment, missing: str) -> Cause:
    seen = [f"{m.channel} up"]
    rule = rows.policy_rule(m)
    seen.append(
        f"no {m.merchant} policy for {m.scenario}"
        if rule is None
        else f"{m.merchant} accepts {m.channel} for {m.scenario}"
    )
    line = rows.credit_line(m)
    if m.channel in CREDIT_PRODUCTS and line is not None:
        seen.append(
            f"the {m.channel} line active with "
            f"{money(line.available_minor, line.currency)} available"
        )
    seen.append("no failed verification")
    what = f"declined {m.code}" if m.code else "abandoned unfinished"
    at = m.ended_at if m.ended_at is not None else m.world.position
    return Cause(
        category="unknown",
        summary=(
            f"{what} at position {at}, but the log shows no blocking state at the attempt "
            f"(position {m.world.position}: {'; '.join(seen)}); missing evidence: {missing} "
            f"before position {m.world.position}"
        ),
        evidence=(),
        remedy=(
            f"ask the processor for the decline reason of attempt {m.attempt}; meanwhile retry "
            f"or pay by {rows.instead(m)}"
        ),
    )


def judge(m: Moment) -> tuple[Cause, ...]:
    """The causes of a failed attempt: the first is the root cause, the others contribute
    (CONTRACT rules 7.3 and 7.4)."""
    causes: list[Cause] = []
    seen: set[Category] = set()
    for row, cause in blocking(m):
        if row.category not in seen:
            seen.add(row.category)
            causes.append(cause)
    return tuple(causes) if causes else (fallback(m),)


def checks(m: Moment, scopes: Sequence[Scope] = ("state", "customer")) -> list[Check]:
    """Every row of ``scopes`` asked of ``m``: failed (it holds), passed, or not applicable."""
    out: list[Check] = []
    for row in CONDITIONS:
        if row.scope not in scopes:
            continue
        if not row.applies(m):
            out.append(
                Check(
                    check=row.name,
                    status="not_applicable",
                    detail=f"{m.channel} does not draw on a credit line"
                    if row.category == "credit"
                    else row.clear(m),
                )
            )
            continue
        held = row.holds(m)
        out.append(
            Check(
                check=row.name,
                status="failed" if held else "passed",
                detail=row.summary(m) if held else row.clear(m),
                evidence=row.evidence(m),
            )
        )
    return out
