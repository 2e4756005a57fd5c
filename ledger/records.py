"""What the store returns and takes: records, results, reports, import items, the prepared
form of an event, and the log's constants. Plain Structs, no I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Final, Literal, TypeAlias

import msgspec

from .events import Event, PaymentAuthorized, PaymentSettled, RepaymentMade

__all__ = [
    "EPOCH",
    "GENESIS_HASH",
    "MAX_STREAM_LENGTH",
    "MAX_SUMMED_MINOR",
    "SUMMED_TYPES",
    "AppendResult",
    "Durability",
    "ImportItem",
    "ImportResult",
    "IntegrityReport",
    "Prepared",
    "Record",
    "from_micros",
    "read_backwards",
    "to_micros",
]

Durability: TypeAlias = Literal["full", "normal"]
"""``full`` (default): an append returns once its events are fsynced. ``normal``: an append
survives a crash of the process but may be lost with the machine's power (SQLite
``synchronous=NORMAL`` in WAL mode)."""

EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
GENESIS_HASH: Final = bytes(32)
_MICRO: Final = timedelta(microseconds=1)
MAX_STREAM_LENGTH: Final = 300
SUMMED_TYPES: Final = frozenset(
    cls.__name__ for cls in (PaymentAuthorized, PaymentSettled, RepaymentMade)
)
"""The event types whose ``amount_minor`` the projections add up: holds (authorizations), used
credit and the balances' postings (settlements), repayments (``projections.account`` and
``projections.balances``). Every projection sum is a part of their total over the log."""
MAX_SUMMED_MINOR: Final = 2**63 - 1
"""The most the amounts of :data:`SUMMED_TYPES` may add up to over the whole log: the largest
SQLite INTEGER, so no projection sum can overflow its column."""


class Record(msgspec.Struct, frozen=True, gc=False):
    """One stored event with its place in the log."""

    position: int
    """Global position: 1, 2, 3, ... in append order, gap-free."""
    stream: str
    version: int
    """The event's version within its stream: 1, 2, 3, ..."""
    event: Event
    event_id: str
    recorded_at: datetime
    """When the store committed the event (UTC)."""
    correlation_id: str | None = None
    causation_id: str | None = None

    @property
    def type(self) -> str:
        """The event's catalogue name."""
        return self.event.type


class AppendResult(msgspec.Struct, frozen=True):
    """What an append stored."""

    stream: str
    positions: tuple[int, ...]
    """The global positions of the call's events, in the call's order."""
    version: int
    """The stream's version after the call's last event."""
    duplicate: bool = False
    """True when the call was an exact retry of events already stored (nothing appended)."""


class ImportResult(msgspec.Struct, frozen=True):
    """What an import stored."""

    appended: int
    skipped: int
    """Events whose event_id was already stored with the same content."""
    first_position: int | None
    last_position: int | None


class IntegrityReport(msgspec.Struct, frozen=True):
    """The outcome of :meth:`EventStore.verify`."""

    ok: bool
    checked: int
    head_position: int
    head_hash: str
    first_bad_position: int | None = None
    reason: str | None = None
    damaged: str | None = None
    """When the file itself is damaged (not altered through SQL): what is, e.g. ``"the events
    table"`` or ``"index events_by_type"``; ``first_bad_position`` is then the first position
    known to be affected (None when none can be told, e.g. damage in free pages)."""


class Prepared(msgspec.Struct, gc=False):
    """An event validated and encoded, ready to be planned into a batch."""

    stream: str
    type: str
    schema: int
    data: str
    occurred_us: int
    event_id: str
    explicit_id: bool
    correlation_id: str | None
    causation_id: str | None
    recorded_us: int | None = None
    summed_minor: int = 0
    """The amount the projections add up for this event (0 unless its type is one of
    :data:`SUMMED_TYPES`)."""


class ImportItem(msgspec.Struct, frozen=True, gc=False):
    """One event to import, as read from a JSON Lines line."""

    stream: str
    event: Event
    event_id: str | None = None
    correlation_id: str | None = None
    causation_id: str | None = None
    recorded_at: datetime | None = None
    line: int = 0
    source: str | None = None
    """The file the item was read from, named in errors with ``line``."""


# --- time -----------------------------------------------------------------------------------


def to_micros(ts: datetime) -> int:
    """Microseconds since the epoch of an aware datetime, exactly."""
    return (ts - EPOCH) // _MICRO


def from_micros(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=us)


def read_backwards(first: int, last: int, head: int, bound: int, row_cost: float) -> bool:
    """For :meth:`ledger.store.EventStore.position_at`: whether the last event at or before
    ``bound`` (microseconds) is cheaper to find by reading the log backwards from ``head``
    than through the index by time. ``first`` and ``last`` are the first and last events'
    ``occurred_at``: logs are mostly in time order, so they place the moment; reading backwards
    costs about the events after it, each ``row_cost`` index entries, the index the events
    before it. Either way the answer is exact; only its cost depends on this guess."""
    share = 0.0 if bound < first or last <= first else min(1.0, (bound - first) / (last - first))
    before = share * head
    return (head - before) * row_cost < before
