"""Decline codes as clues (CONTRACT rule 7.4): one row per code of the catalogue's vocabulary.

A processor's decline code is never a verdict by itself when it claims a condition
(``credit_suspended``, ``insufficient_credit``, ``channel_not_permitted``, ``risk_blocked``,
``verification_failed``): processors often say ``unknown`` or ``channel_unavailable`` when the
real cause is a frozen credit line or a policy rule, and the reverse. Each row says

- ``observed``: the category a decline with this code proves by itself, because the caller
  observed it (a ``timeout``: the call did not come back; ``invalid_details``: the details were
  rejected). It is a blocking condition in the order of rule 7.3 (:mod:`causes.conditions`);
- ``fallback``: the category the decline gives when no condition holds (rule 7.4:
  ``channel_unavailable`` is ``system``, its evidence the decline itself);
- ``missing``: the evidence that would prove what the code claims, named by an ``unknown``
  judgement's summary (``{channel}`` is the attempt's channel);
- ``technical``: whether the decline counts against the channel's health;
- ``action``: what a router does next by default (:class:`gateway.RoutingConfig` may override).

Adding a code is one row here plus its entry in :data:`ledger.events.DeclineCode`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, Literal, TypeAlias

import msgspec

from .cause import Category

__all__ = ["DECLINE_CODES", "DeclineAction", "DeclineCodeRule", "rule_for"]

DeclineAction: TypeAlias = Literal["failover", "fallback_non_credit", "next_permitted", "stop"]
"""What a router does after a decline: ``failover`` and ``next_permitted`` try the next
eligible channel, ``fallback_non_credit`` the next eligible channel that is not a credit
product, ``stop`` abandons the payment."""


class DeclineCodeRule(msgspec.Struct, frozen=True, kw_only=True):
    """What one decline code tells (see the module docstring)."""

    code: str
    observed: Category | None = None
    fallback: Category | None = None
    missing: str
    technical: bool = False
    action: DeclineAction = "stop"


_ROWS: Final = (
    DeclineCodeRule(
        code="credit_suspended",
        missing="a CreditStatusChanged that made the {channel} line inactive",
        action="fallback_non_credit",
    ),
    DeclineCodeRule(
        code="insufficient_credit",
        missing="a CreditLimitChanged or payments that took the {channel} line's available "
        "credit below the amount",
        action="fallback_non_credit",
    ),
    DeclineCodeRule(
        code="channel_unavailable",
        fallback="system",
        missing="a ChannelStatusChanged taking {channel} down",
        technical=True,
        action="failover",
    ),
    DeclineCodeRule(
        code="channel_not_permitted",
        missing="a ChannelPolicySet excluding {channel} for the scenario",
        action="next_permitted",
    ),
    DeclineCodeRule(
        code="verification_failed",
        missing="a VerificationFailed event for the attempt",
    ),
    DeclineCodeRule(
        code="invalid_details",
        observed="user_action",
        missing="the details the processor rejected",
    ),
    DeclineCodeRule(
        code="timeout",
        observed="system",
        missing="a ChannelStatusChanged degrading {channel}",
        technical=True,
        action="failover",
    ),
    DeclineCodeRule(
        code="risk_blocked",
        missing="a risk event (a CreditStatusChanged to frozen) for the account",
    ),
    DeclineCodeRule(code="unknown", missing="any event explaining the failure"),
)

DECLINE_CODES: Final[Mapping[str, DeclineCodeRule]] = {row.code: row for row in _ROWS}
"""Every decline code of the catalogue, by code."""

_ABANDONED: Final = DeclineCodeRule(code="", missing="any event explaining the failure")


def rule_for(code: str | None) -> DeclineCodeRule:
    """The row of ``code``; an attempt that ended without a decline (abandoned unfinished) gets
    a row that observes nothing and claims nothing."""
    if code is None:
        return _ABANDONED
    return DECLINE_CODES.get(code, _ABANDONED)
