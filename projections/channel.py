"""The channel projection: a channel's status and the ``ChannelStatusChanged`` that set it.

A channel with no status event is ``up`` (CONTRACT section 2); the latest event holds.
"""

from __future__ import annotations

from msgspec.structs import replace

from ledger.errors import UnknownEventTypeError
from ledger.events import ChannelStatusChanged, UnknownEvent
from ledger.store import Record

from .state import ChannelState

__all__ = ["apply", "apply_event", "new_state"]


def new_state(channel: str) -> ChannelState:
    """A channel before any event: ``up`` by default."""
    return ChannelState(channel=channel)


def apply(state: ChannelState, record: Record) -> ChannelState:
    """The channel after ``record`` (an event of its stream; anything else only moves
    ``position``). Raises :class:`UnknownEventTypeError` for an event of an unknown type."""
    return apply_event(state, record.event, record.position)


def apply_event(state: ChannelState, event: object, position: int) -> ChannelState:
    """:func:`apply` of an event at ``position``."""
    if isinstance(event, ChannelStatusChanged):
        return replace(
            state,
            status=event.status,
            reason=event.reason,
            expected_until=event.expected_until,
            status_position=position,
            position=position,
        )
    if isinstance(event, UnknownEvent):
        raise UnknownEventTypeError(event.type_name, position)
    return replace(state, position=position)
