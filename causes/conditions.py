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
from projections.state import CreditLine, PolicyRule, VerificationResult

from .cause import Category, Cause
from .codes import rule_for
from .moment import Moment
from .wording import alternative, money, positions, when

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


# --- what the rows read --------------------------------------------------------------------


def _rule(m: Moment) -> PolicyRule | None:
    return m.world.policy.rules.get(m.scenario)


def _instead(m: Moment) -> str:
    rule = _rule(m)
    return alternative(None if rule is None else rule.allowed_channels, m.channel)


def _line(m: Moment) -> CreditLine | None:
    account = m.world.account
    return None if account is None else account.credit.get(m.channel)


def _always(m: Moment) -> bool:
    return True


def _verified(m: Moment) -> bool:
    return bool(m.verifications)


def _declined(m: Moment) -> bool:
    return m.code is not None


def _on_credit(m: Moment) -> bool:
    return m.channel in CREDIT_PRODUCTS


def _unresolved(m: Moment) -> list[VerificationResult]:
    """The attempt's failed verifications that no later pass resolved."""
    failures: list[VerificationResult] = []
    for v in sorted(m.verifications, key=lambda v: v.position):
        failures = [] if v.passed else [*failures, v]
    return failures


def _decline(m: Moment) -> tuple[int, ...]:
    return () if m.declined_at is None else (m.declined_at,)


# --- channel_policy: the merchant does not accept the channel for the scenario ------------


def _policy_holds(m: Moment) -> bool:
    rule = _rule(m)
    return rule is not None and m.channel not in rule.allowed_channels


def _policy_evidence(m: Moment) -> tuple[int, ...]:
    rule = _rule(m)
    return () if rule is None else (rule.position,)


def _allowed(rule: PolicyRule) -> str:
    return " or ".join(rule.allowed_channels) if rule.allowed_channels else "no channel"


def _policy_summary(m: Moment) -> str:
    rule = _rule(m)
    assert rule is not None
    return (
        f"{m.merchant} accepts only {_allowed(rule)} for {m.scenario} (policy set at position "
        f"{rule.position}: {rule.reason}); the attempt used {m.channel}"
    )


def _policy_remedy(m: Moment) -> str:
    rule = _rule(m)
    assert rule is not None
    if not rule.allowed_channels:
        return (
            f"{m.merchant} accepts no channel for {m.scenario}: ask the merchant to change its "
            "policy"
        )
    return f"pay by {_instead(m)}: {m.merchant} accepts only {_allowed(rule)} for {m.scenario}"


def _policy_clear(m: Moment) -> str:
    rule = _rule(m)
    if rule is None:
        return f"no {m.merchant} policy for {m.scenario}: every channel accepted"
    return f"{m.merchant} accepts {', '.join(rule.allowed_channels)} for {m.scenario}"


# --- system: the channel was down, in maintenance or degraded -----------------------------


def _channel_holds(m: Moment) -> bool:
    ch = m.world.channel
    return ch.status != "up" and ch.status_position is not None


def _channel_evidence(m: Moment) -> tuple[int, ...]:
    position = m.world.channel.status_position
    return () if position is None else (position,)


def _channel_summary(m: Moment) -> str:
    ch = m.world.channel
    state = "in maintenance" if ch.status == "maintenance" else ch.status
    until = f", expected until {when(ch.expected_until)}" if ch.expected_until else ""
    return f"{m.channel} was {state} ({ch.reason}) since position {ch.status_position}{until}"


def _channel_remedy(m: Moment) -> str:
    ch = m.world.channel
    if ch.status == "maintenance" and ch.expected_until is not None:
        return (
            f"retry after the maintenance window ends at {when(ch.expected_until)}, "
            f"or pay by {_instead(m)}"
        )
    if ch.status == "degraded":
        return f"retry when {m.channel} recovers, or pay by {_instead(m)}"
    return f"retry when {m.channel} is back up, or pay by {_instead(m)}"


def _channel_clear(m: Moment) -> str:
    ch = m.world.channel
    if ch.status_position is None:
        return f"{m.channel} was up (no status event: up by default)"
    return f"{m.channel} was up since position {ch.status_position}"


# --- what the caller observed: a decline whose code reports the caller's own observation --


def _observed(category: Category) -> Callable[[Moment], bool]:
    def holds(m: Moment) -> bool:
        return m.code is not None and rule_for(m.code).observed == category

    return holds


def _timeout_summary(m: Moment) -> str:
    return (
        f"the call on {m.channel} failed as the caller observed it: declined {m.code} at "
        f"position {m.declined_at}"
    )


def _timeout_remedy(m: Moment) -> str:
    return f"retry, or pay by {_instead(m)}"


def _details_summary(m: Moment) -> str:
    return (
        f"declined {m.code} at position {m.declined_at}: the processor rejected the details "
        "the customer entered"
    )


def _details_remedy(m: Moment) -> str:
    return "check the payment details with the customer and retry"


def _not_observed(m: Moment) -> str:
    return "nothing observed" if m.code is None else f"declined {m.code}: no such observation"


# --- credit: the line was not active --------------------------------------------------------


def _status_holds(m: Moment) -> bool:
    line = _line(m)
    return line is None or line.status != "active"


def _status_evidence(m: Moment) -> tuple[int, ...]:
    line = _line(m)
    if line is None:
        return ()
    return (line.status_position if line.status_position is not None else line.opened_position,)


def _status_summary(m: Moment) -> str:
    line = _line(m)
    if line is None:
        return (
            f"account {m.account_id} had no {m.channel} credit line before position "
            f"{m.world.position}: no CreditLineOpened for it in the log"
        )
    (where,) = _status_evidence(m)
    reason = f" ({line.status_reason})" if line.status_reason else ""
    overdue = ""
    if line.overdue_minor > 0 and line.overdue_position is not None:
        overdue = (
            f"; {money(line.overdue_minor, line.currency)} overdue ({line.days_overdue} days, "
            f"position {line.overdue_position})"
        )
    return f"{m.channel} credit line {line.status}{reason} since position {where}{overdue}"


def _status_remedy(m: Moment) -> str:
    line = _line(m)
    alt = _instead(m)
    if line is None:
        return f"pay by {alt}, or open a {m.channel} credit line first"
    if line.overdue_minor > 0:
        return (
            f"pay the overdue amount ({money(line.overdue_minor, line.currency)}) or pay by {alt}"
        )
    if line.status == "frozen":
        return f"have the risk review concluded and the line unfrozen, or pay by {alt}"
    if line.status == "closed":
        return f"pay by {alt}: the {m.channel} line is closed"
    return f"have the {m.channel} line reactivated, or pay by {alt}"


def _status_clear(m: Moment) -> str:
    return f"the {m.channel} line was active"


# --- credit: available credit below the amount ---------------------------------------------


def _short_holds(m: Moment) -> bool:
    line = _line(m)
    return line is None or line.shortfall_position(m.amount_minor) is not None


def _short_evidence(m: Moment) -> tuple[int, ...]:
    line = _line(m)
    if line is None:
        return ()
    below = line.shortfall_position(m.amount_minor)
    return (line.limit_position,) if below is None else (below,)


def _short_summary(m: Moment) -> str:
    line = _line(m)
    if line is None:
        return f"no {m.channel} credit line to draw on"
    cur = line.currency
    return (
        f"{m.channel} available credit {money(line.available_minor, cur)} was below the "
        f"{money(m.amount_minor, cur)} amount since position {_short_evidence(m)[0]}: limit "
        f"{money(line.limit_minor, cur)} (position {line.limit_position}), used "
        f"{money(line.used_minor, cur)}, held {money(line.held_minor, cur)}"
    )


def _short_remedy(m: Moment) -> str:
    line = _line(m)
    if line is None:
        return f"pay by {_instead(m)}, or open a {m.channel} credit line first"
    short = m.amount_minor - line.available_minor
    return (
        f"pay by {_instead(m)}, or repay {money(short, line.currency)} of the {m.channel} "
        "balance first"
    )


def _short_clear(m: Moment) -> str:
    line = _line(m)
    assert line is not None
    return (
        f"{money(line.available_minor, line.currency)} available for "
        f"{money(m.amount_minor, m.currency)}"
    )


# --- user_action: failed verifications no later pass resolved -----------------------------


def _verification_holds(m: Moment) -> bool:
    return bool(_unresolved(m))


def _verification_evidence(m: Moment) -> tuple[int, ...]:
    failures = _unresolved(m)
    if failures:
        return tuple(f.position for f in failures)
    return tuple(v.position for v in m.verifications if v.passed)


def _verification_summary(m: Moment) -> str:
    failures = _unresolved(m)
    methods = "/".join(sorted({f.method for f in failures}))
    reasons = ", ".join(f.reason or "failed" for f in failures)
    last = failures[-1]
    tries = f"; {last.remaining_tries} tries left" if last.remaining_tries is not None else ""
    times = "once" if len(failures) == 1 else f"{len(failures)} times"
    return (
        f"{methods} verification failed {times} ({reasons}{tries}) at "
        f"{positions([f.position for f in failures])}"
    )


def _verification_remedy(m: Moment) -> str:
    methods = "/".join(sorted({f.method for f in _unresolved(m)}))
    return f"retry and complete the {methods} verification (request a new code if it expired)"


def _verification_clear(m: Moment) -> str:
    if m.verifications:
        return "the customer's verification passed"
    return "no verification recorded for the attempt"


# --- the table ------------------------------------------------------------------------------

CONDITIONS: Final[tuple[Condition, ...]] = (
    Condition(
        name="policy",
        category="channel_policy",
        scope="state",
        applies=_always,
        holds=_policy_holds,
        evidence=_policy_evidence,
        summary=_policy_summary,
        remedy=_policy_remedy,
        clear=_policy_clear,
    ),
    Condition(
        name="channel_health",
        category="system",
        scope="state",
        applies=_always,
        holds=_channel_holds,
        evidence=_channel_evidence,
        summary=_channel_summary,
        remedy=_channel_remedy,
        clear=_channel_clear,
    ),
    Condition(
        name="observed_by_caller",
        category="system",
        scope="attempt",
        applies=_declined,
        holds=_observed("system"),
        evidence=_decline,
        summary=_timeout_summary,
        remedy=_timeout_remedy,
        clear=_not_observed,
    ),
    Condition(
        name="credit_status",
        category="credit",
        scope="state",
        applies=_on_credit,
        holds=_status_holds,
        evidence=_status_evidence,
        summary=_status_summary,
        remedy=_status_remedy,
        clear=_status_clear,
    ),
    Condition(
        name="available_credit",
        category="credit",
        scope="state",
        applies=_on_credit,
        holds=_short_holds,
        evidence=_short_evidence,
        summary=_short_summary,
        remedy=_short_remedy,
        clear=_short_clear,
    ),
    Condition(
        name="verification",
        category="user_action",
        scope="customer",
        applies=_verified,
        holds=_verification_holds,
        evidence=_verification_evidence,
        summary=_verification_summary,
        remedy=_verification_remedy,
        clear=_verification_clear,
    ),
    Condition(
        name="details_rejected",
        category="user_action",
        scope="attempt",
        applies=_declined,
        holds=_observed("user_action"),
        evidence=_decline,
        summary=_details_summary,
        remedy=_details_remedy,
        clear=_not_observed,
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
            remedy=f"retry, or pay by {_instead(m)}",
        )
    return _unknown(m, code.missing.format(channel=m.channel))


def _unknown(m: Moment, missing: str) -> Cause:
    seen = [f"{m.channel} up"]
    rule = _rule(m)
    seen.append(
        f"no {m.merchant} policy for {m.scenario}"
        if rule is None
        else f"{m.merchant} accepts {m.channel} for {m.scenario}"
    )
    line = _line(m)
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
            f"or pay by {_instead(m)}"
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
