"""The policy projection: which channels a merchant accepts per scenario, and the
``ChannelPolicySet`` that said so.

A scenario with no rule accepts every channel (CONTRACT section 2); the latest rule holds.
"""

from __future__ import annotations

from msgspec.structs import replace

from ledger.errors import UnknownEventTypeError
from ledger.events import ChannelPolicySet, UnknownEvent
from ledger.store import Record

from .state import PolicyRule, PolicyState

__all__ = ["apply", "apply_event", "new_state"]


def new_state(merchant: str) -> PolicyState:
    """A merchant before any event: every channel accepted for every scenario."""
    return PolicyState(merchant=merchant)


def apply(state: PolicyState, record: Record) -> PolicyState:
    """The policy after ``record`` (an event of its stream; anything else only moves
    ``position``). Raises :class:`UnknownEventTypeError` for an event of an unknown type."""
    return apply_event(state, record.event, record.position)


def apply_event(state: PolicyState, event: object, position: int) -> PolicyState:
    """:func:`apply` of an event at ``position``."""
    if isinstance(event, ChannelPolicySet):
        rule = PolicyRule(
            scenario=event.scenario,
            allowed_channels=tuple(event.allowed_channels),
            reason=event.reason,
            position=position,
        )
        return replace(state, rules={**state.rules, event.scenario: rule}, position=position)
    if isinstance(event, UnknownEvent):
        raise UnknownEventTypeError(event.type_name, position)
    return replace(state, position=position)
