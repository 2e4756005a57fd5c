"""How the router routes: channel order, the decline-code table, channel-health thresholds.

Configuration, not code: a service builds a :class:`RoutingConfig` (and its
:class:`HealthConfig`) and hands it to :class:`gateway.Router`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import msgspec

from causes.codes import DECLINE_CODES, DeclineAction

__all__ = [
    "CREDIT_PRODUCTS",
    "DEFAULT_ACTIONS",
    "DEFAULT_CHANNELS",
    "TECHNICAL_CODES",
    "DeclineAction",
    "HealthConfig",
    "RoutingConfig",
]

DEFAULT_ACTIONS: Final[Mapping[str, DeclineAction]] = {
    code: rule.action for code, rule in DECLINE_CODES.items()
}
"""The default decline-code table: each code's ``action`` in :data:`causes.DECLINE_CODES`
(``timeout`` and ``channel_unavailable`` fail over, credit declines fall back to a non-credit
channel, ``verification_failed`` never fails over silently)."""

DEFAULT_CHANNELS: Final = ("huabei", "jiebei", "bank_card", "balance")
CREDIT_PRODUCTS: Final = frozenset({"huabei", "jiebei"})
TECHNICAL_CODES: Final = frozenset(code for code, rule in DECLINE_CODES.items() if rule.technical)
"""Decline codes that count as technical failures of the channel."""

_ACTIONS: Final = frozenset({"failover", "fallback_non_credit", "next_permitted", "stop"})


# --- configuration -------------------------------------------------------------------------


class HealthConfig(msgspec.Struct, frozen=True, kw_only=True):
    """How channel health is measured from outcomes."""

    enabled: bool = True
    window_seconds: float = 60.0
    """The sliding window, on the router's clock."""
    min_samples: int = 20
    """Fewest attempts in the window to degrade a channel."""
    recover_samples: int = 5
    """Fewest attempts in the window to recover one (a degraded channel sees probes only)."""
    degrade_at: float = 0.5
    """An ``up`` channel whose technical failure rate reaches this becomes ``degraded``."""
    recover_at: float = 0.2
    """A channel this monitor degraded recovers when its rate falls to this (hysteresis)."""
    count_failovers: bool = True
    """Whether attempts after a failover count toward their channel's health (``False``: only
    first attempts do, so that routing with and without failover measure the same traffic)."""
    probe_every: int = 10
    """One payment in this many (by a hash of its id) still tries a degraded channel."""
    inline: bool = True
    """Check health after each outcome; ``False``: only when :meth:`Router.check_health` is
    called (the simulator checks between ticks to stay deterministic)."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.recover_at < self.degrade_at <= 1.0:
            raise ValueError("health thresholds need 0 <= recover_at < degrade_at <= 1")
        if (
            min(self.min_samples, self.recover_samples, self.probe_every) < 1
            or self.window_seconds <= 0
        ):
            raise ValueError(
                "min_samples, recover_samples, probe_every and window_seconds must be positive"
            )


class RoutingConfig(msgspec.Struct, frozen=True, kw_only=True):
    """Channel preference, fallback order and the decline-code table: configuration, not code.

    ``routes`` maps ``"merchant/scenario"``, ``"merchant/*"`` or ``"*/scenario"`` (looked up in
    that order) to an ordered channel list; unmatched payments use ``channels``. The request's
    preferred channel is always the first candidate.
    """

    channels: tuple[str, ...] = DEFAULT_CHANNELS
    routes: dict[str, tuple[str, ...]] = msgspec.field(default_factory=dict)
    credit_products: frozenset[str] = CREDIT_PRODUCTS
    actions: dict[str, DeclineAction] = msgspec.field(default_factory=lambda: dict(DEFAULT_ACTIONS))
    credit_fallback: bool = True
    """Whether a credit decline may fall back to a non-credit channel."""
    failover: bool = True
    """``False``: every decline ends the payment (decisions still route around ineligible
    channels)."""
    max_attempts: int = 3
    timeout_seconds: float = 10.0
    """The limit on each processor call."""
    verification_tries: int = 3
    settle: bool = True
    """Record ``PaymentSettled`` right after ``PaymentAuthorized``."""
    health: HealthConfig = msgspec.field(default_factory=HealthConfig)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.timeout_seconds <= 0:
            raise ValueError("timeout_seconds must be positive")
        if self.verification_tries < 1:
            raise ValueError("verification_tries must be at least 1")
        for code, action in self.actions.items():
            if action not in _ACTIONS:
                raise ValueError(f"decline code {code!r}: unknown action {action!r}")

    def order_for(self, merchant: str, scenario: str, preferred: str) -> tuple[str, ...]:
        """The candidate channels in order: the preferred one, then the configured route."""
        route = (
            self.routes.get(f"{merchant}/{scenario}")
            or self.routes.get(f"{merchant}/*")
            or self.routes.get(f"*/{scenario}")
            or self.channels
        )
        return tuple(dict.fromkeys((preferred, *route)))

    def action_for(self, code: str) -> DeclineAction:
        """The action for a decline code (unlisted codes stop)."""
        if not self.failover:
            return "stop"
        action = self.actions.get(code, "stop")
        if action == "fallback_non_credit" and not self.credit_fallback:
            return "stop"
        return action
