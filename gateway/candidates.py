"""Which channels a payment may try: every candidate of the configured order asked of the
blocking conditions the replay explains failures with (the ``state`` rows of
:data:`causes.CONDITIONS`), on the world the router's view holds now."""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from typing import Final

from causes import Moment, Scope, World, blocking
from ledger.events import Candidate
from projections.view import StateView

from .config import RoutingConfig
from .processor import PaymentRequest

__all__ = ["clip", "evaluate", "is_probe"]

_BEFORE_THE_ATTEMPT: Final[frozenset[Scope]] = frozenset({"state"})
"""The conditions a router can know before it tries a channel."""


def is_probe(config: RoutingConfig, payment_id: str) -> bool:
    """Whether the payment is one of the probes that still try a degraded channel."""
    return zlib.crc32(payment_id.encode()) % config.health.probe_every == 0


def clip(text: str, limit: int = 4000) -> str:
    """A reason cut to fit the catalogue's text fields."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def evaluate(
    view: StateView,
    config: RoutingConfig,
    request: PaymentRequest,
    *,
    tried: Mapping[str, str] | None = None,
    non_credit_only: bool = False,
    attempt: int = 1,
) -> tuple[list[Candidate], str | None, str]:
    """Every candidate channel with its eligibility and reason, the chosen channel
    (``None``: none eligible) and the rule that chose it, from the current view.

    A candidate is ineligible when a blocking condition of the world it would meet holds
    (the ``state`` rows of :data:`causes.CONDITIONS`, the very rows the replay explains
    failures with), when it was tried already, or when a credit decline asked for
    non-credit channels only. A degraded channel is still tried by probe payments."""
    tried = tried or {}
    order = config.order_for(request.merchant, request.scenario, request.preferred_channel)
    moment = view.world.position + 1
    account = view.account(request.account_id)
    policy = view.policy(request.merchant)
    probe = is_probe(config, request.payment_id)
    candidates: list[Candidate] = []
    chosen: str | None = None
    for channel in order:
        reasons: list[str] = []
        note = ""
        if channel in tried:
            reasons.append(f"already tried ({tried[channel]})")
        if non_credit_only and channel in config.credit_products:
            reasons.append("credit declined earlier: non-credit channels only")
        m = Moment(
            payment_id=request.payment_id,
            account_id=request.account_id,
            merchant=request.merchant,
            scenario=request.scenario,
            amount_minor=request.amount_minor,
            currency=request.currency,
            attempt=attempt,
            channel=channel,
            world=World(
                position=moment, account=account, channel=view.channel(channel), policy=policy
            ),
        )
        for row, cause in blocking(m, _BEFORE_THE_ATTEMPT):
            if row.name == "channel_health" and m.world.channel.status == "degraded" and probe:
                note = f"; {cause.summary}, tried as a probe"
                continue
            reasons.append(f"{row.category}: {cause.summary}")
        eligible = not reasons
        if eligible:
            reason = "preferred channel" if channel == request.preferred_channel else "eligible"
            reason += note
            if chosen is None:
                chosen = channel
        else:
            reason = "; ".join(reasons)
        candidates.append(Candidate(channel=channel, eligible=eligible, reason=clip(reason)))
    route = " > ".join(order)
    if chosen is None:
        rule_text = f"no eligible channel in {route}"
    elif chosen == request.preferred_channel:
        rule_text = f"preferred channel, eligible (order {route})"
    else:
        rule_text = f"first eligible channel in {route}"
    return candidates, chosen, rule_text
