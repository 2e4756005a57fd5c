"""The words and tests of each blocking condition: what :data:`causes.conditions.CONDITIONS`
lists, row by row (one section per row below, in the table's order). Each function reads a
:class:`causes.moment.Moment` and nothing else."""

from __future__ import annotations

from collections.abc import Callable

from projections.account import CREDIT_PRODUCTS
from projections.state import CreditLine, PolicyRule, VerificationResult

from .cause import Category
from .codes import rule_for
from .moment import Moment
from .wording import alternative, money, positions, when

__all__ = [
    "always",
    "channel_clear",
    "channel_evidence",
    "channel_holds",
    "channel_remedy",
    "channel_summary",
    "credit_line",
    "declined",
    "details_remedy",
    "details_summary",
    "instead",
    "not_observed",
    "observed",
    "on_credit",
    "policy_clear",
    "policy_evidence",
    "policy_holds",
    "policy_remedy",
    "policy_rule",
    "policy_summary",
    "short_clear",
    "short_evidence",
    "short_holds",
    "short_remedy",
    "short_summary",
    "status_clear",
    "status_evidence",
    "status_holds",
    "status_remedy",
    "status_summary",
    "the_decline",
    "timeout_remedy",
    "timeout_summary",
    "verification_clear",
    "verification_evidence",
    "verification_holds",
    "verification_remedy",
    "verification_summary",
    "verified",
]

# --- what the rows read --------------------------------------------------------------------


def policy_rule(m: Moment) -> PolicyRule | None:
    return m.world.policy.rules.get(m.scenario)


def instead(m: Moment) -> str:
    rule = policy_rule(m)
    return alternative(None if rule is None else rule.allowed_channels, m.channel)


def credit_line(m: Moment) -> CreditLine | None:
    account = m.world.account
    return None if account is None else account.credit.get(m.channel)


def always(m: Moment) -> bool:
    return True


def verified(m: Moment) -> bool:
    return bool(m.verifications)


def declined(m: Moment) -> bool:
    return m.code is not None


def on_credit(m: Moment) -> bool:
    return m.channel in CREDIT_PRODUCTS


def _unresolved(m: Moment) -> list[VerificationResult]:
    """The attempt's failed verifications that no later pass resolved."""
    failures: list[VerificationResult] = []
    for v in sorted(m.verifications, key=lambda v: v.position):
        failures = [] if v.passed else [*failures, v]
    return failures


def the_decline(m: Moment) -> tuple[int, ...]:
    return () if m.declined_at is None else (m.declined_at,)


# --- channel_policy: the merchant does not accept the channel for the scenario ------------


def policy_holds(m: Moment) -> bool:
    rule = policy_rule(m)
    return rule is not None and m.channel not in rule.allowed_channels


def policy_evidence(m: Moment) -> tuple[int, ...]:
    rule = policy_rule(m)
    return () if rule is None else (rule.position,)


def _allowed(rule: PolicyRule) -> str:
    return " or ".join(rule.allowed_channels) if rule.allowed_channels else "no channel"


def policy_summary(m: Moment) -> str:
    rule = policy_rule(m)
    assert rule is not None
    accepts = f"only {_allowed(rule)}" if rule.allowed_channels else "no channel"
    return (
        f"{m.merchant} accepts {accepts} for {m.scenario} (policy set at position "
        f"{rule.position}: {rule.reason}); the attempt used {m.channel}"
    )


def policy_remedy(m: Moment) -> str:
    rule = policy_rule(m)
    assert rule is not None
    if not rule.allowed_channels:
        return (
            f"{m.merchant} accepts no channel for {m.scenario}: ask the merchant to change its "
            "policy"
        )
    return f"pay by {instead(m)}: {m.merchant} accepts only {_allowed(rule)} for {m.scenario}"


def policy_clear(m: Moment) -> str:
    rule = policy_rule(m)
    if rule is None:
        return f"no {m.merchant} policy for {m.scenario}: every channel accepted"
    return f"{m.merchant} accepts {', '.join(rule.allowed_channels)} for {m.scenario}"


# --- system: the channel was down, in maintenance or degraded -----------------------------


def channel_holds(m: Moment) -> bool:
    ch = m.world.channel
    return ch.status != "up" and ch.status_position is not None


def channel_evidence(m: Moment) -> tuple[int, ...]:
    position = m.world.channel.status_position
    return () if position is None else (position,)


def channel_summary(m: Moment) -> str:
    ch = m.world.channel
    state = "in maintenance" if ch.status == "maintenance" else ch.status
    until = f", expected until {when(ch.expected_until)}" if ch.expected_until else ""
    return f"{m.channel} was {state} ({ch.reason}) since position {ch.status_position}{until}"


def channel_remedy(m: Moment) -> str:
    ch = m.world.channel
    if ch.status == "maintenance" and ch.expected_until is not None:
        return (
            f"retry after the maintenance window ends at {when(ch.expected_until)}, "
            f"or pay by {instead(m)}"
        )
    if ch.status == "degraded":
        return f"retry when {m.channel} recovers, or pay by {instead(m)}"
    return f"retry when {m.channel} is back up, or pay by {instead(m)}"


def channel_clear(m: Moment) -> str:
    ch = m.world.channel
    if ch.status_position is None:
        return f"{m.channel} was up (no status event: up by default)"
    return f"{m.channel} was up since position {ch.status_position}"


# --- what the caller observed: a decline whose code reports the caller's own observation --


def observed(category: Category) -> Callable[[Moment], bool]:
    def holds(m: Moment) -> bool:
        return m.code is not None and rule_for(m.code).observed == category

    return holds


def timeout_summary(m: Moment) -> str:
    return (
        f"the call on {m.channel} failed as the caller observed it: declined {m.code} at "
        f"position {m.declined_at}"
    )


def timeout_remedy(m: Moment) -> str:
    return f"retry, or pay by {instead(m)}"


def details_summary(m: Moment) -> str:
    return (
        f"declined {m.code} at position {m.declined_at}: the processor rejected the details "
        "the customer entered"
    )


def details_remedy(m: Moment) -> str:
    return "check the payment details with the customer and retry"


def not_observed(m: Moment) -> str:
    return "nothing observed" if m.code is None else f"declined {m.code}: no such observation"


# --- credit: the line was not active --------------------------------------------------------


def status_holds(m: Moment) -> bool:
    line = credit_line(m)
    return line is None or line.status != "active"


def status_evidence(m: Moment) -> tuple[int, ...]:
    line = credit_line(m)
    if line is None:
        return ()
    return (line.status_position if line.status_position is not None else line.opened_position,)


def status_summary(m: Moment) -> str:
    line = credit_line(m)
    if line is None:
        return (
            f"account {m.account_id} had no {m.channel} credit line before position "
            f"{m.world.position}: no CreditLineOpened for it in the log"
        )
    (where,) = status_evidence(m)
    reason = f" ({line.status_reason})" if line.status_reason else ""
    overdue = ""
    if line.overdue_minor > 0 and line.overdue_position is not None:
        overdue = (
            f"; {money(line.overdue_minor, line.currency)} overdue ({line.days_overdue} days, "
            f"position {line.overdue_position})"
        )
    return f"{m.channel} credit line {line.status}{reason} since position {where}{overdue}"


def status_remedy(m: Moment) -> str:
    line = credit_line(m)
    alt = instead(m)
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


def status_clear(m: Moment) -> str:
    return f"the {m.channel} line was active"


# --- credit: available credit below the amount ---------------------------------------------


def short_holds(m: Moment) -> bool:
    line = credit_line(m)
    return line is None or line.shortfall_position(m.amount_minor) is not None


def short_evidence(m: Moment) -> tuple[int, ...]:
    line = credit_line(m)
    if line is None:
        return ()
    below = line.shortfall_position(m.amount_minor)
    return (line.limit_position,) if below is None else (below,)


def short_summary(m: Moment) -> str:
    line = credit_line(m)
    if line is None:
        return f"no {m.channel} credit line to draw on"
    cur = line.currency
    return (
        f"{m.channel} available credit {money(line.available_minor, cur)} was below the "
        f"{money(m.amount_minor, cur)} amount since position {short_evidence(m)[0]}: limit "
        f"{money(line.limit_minor, cur)} (position {line.limit_position}), used "
        f"{money(line.used_minor, cur)}, held {money(line.held_minor, cur)}"
    )


def short_remedy(m: Moment) -> str:
    line = credit_line(m)
    if line is None:
        return f"pay by {instead(m)}, or open a {m.channel} credit line first"
    short = m.amount_minor - line.available_minor
    cur = line.currency
    if line.limit_minor < m.amount_minor:  # repaying cannot make room: the limit is too low
        return (
            f"pay by {instead(m)}: the {m.channel} limit ({money(line.limit_minor, cur)}) is "
            f"below the amount; or ask for a higher limit"
        )
    if line.used_minor >= short:
        return f"pay by {instead(m)}, or repay {money(short, cur)} of the {m.channel} balance first"
    return (
        f"pay by {instead(m)}, or wait until {money(short, cur)} of the {m.channel} line is "
        "released or repaid"
    )


def short_clear(m: Moment) -> str:
    line = credit_line(m)
    assert line is not None
    return (
        f"{money(line.available_minor, line.currency)} available for "
        f"{money(m.amount_minor, m.currency)}"
    )


# --- user_action: failed verifications no later pass resolved -----------------------------


def verification_holds(m: Moment) -> bool:
    return bool(_unresolved(m))


def verification_evidence(m: Moment) -> tuple[int, ...]:
    failures = _unresolved(m)
    if failures:
        return tuple(f.position for f in failures)
    return tuple(v.position for v in m.verifications if v.passed)


def verification_summary(m: Moment) -> str:
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


def verification_remedy(m: Moment) -> str:
    methods = "/".join(sorted({f.method for f in _unresolved(m)}))
    return f"retry and complete the {methods} verification (request a new code if it expired)"


def verification_clear(m: Moment) -> str:
    if m.verifications:
        return "the customer's verification passed"
    return "no verification recorded for the attempt"
