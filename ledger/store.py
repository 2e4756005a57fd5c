"""The event store's contract, shared by every backend.

What every backend guarantees (the contract suite in ``tests/store_contract.py`` checks each):

1. ``append`` is atomic for its list of events: all of them are stored, or none.
2. Global positions start at 1 and are gap-free, in commit order, with any number of tasks and
   processes appending at once.
3. Each stream's versions are 1, 2, 3, ... with no gaps; ``expected_version`` (``None``: any,
   ``0``: the stream must not exist, ``n``: its version must be ``n``) is checked per call, so one
   conflicting call never fails its neighbours in a group commit.
4. An ``event_id`` is stored once. A call whose events are all already stored, with the same
   content, is an idempotent retry: it returns the original positions and appends nothing. The
   same id with other content, or a call mixing stored and new events, is an error.
5. Every event is validated against the catalogue before it is stored, and filed in the stream
   its ids name (:func:`ledger.events.stream_of`).
6. Each stored event carries a SHA-256 over its canonical bytes and the previous event's hash;
   :meth:`EventStore.verify` walks the chain.
7. Reads are streamed page by page: memory stays flat however many events are read. A read of
   the whole log yields exactly the positions it promises, in order, or raises
   :class:`DamagedStoreError`: nothing is ever answered from part of the log.
8. The amounts the projections add up (:data:`SUMMED_TYPES`: authorizations, settlements,
   repayments) never total more than :data:`MAX_SUMMED_MINOR` over the whole log, so every
   projection sum fits a 64-bit integer: an append that would pass it is refused whole, before
   anything is stored (:class:`Planner` keeps the running total the head records).
9. A cancelled or timed-out ``append`` or ``import_events`` leaves the store exactly as before
   the call or exactly as after it, never between.

This module holds the pieces every backend shares: the records it returns, event validation,
the hash chain and the batch planner that applies rules 3 and 4.
"""

from __future__ import annotations

import hashlib
import os
import random
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal, TypeAlias

import msgspec
import msgspec.inspect

from .errors import (
    ConcurrencyError,
    DamagedStoreError,
    DuplicateEventError,
    EventValidationError,
    FormatError,
)
from .events import (
    CATALOGUE,
    DECODER,
    ENCODER,
    Event,
    PaymentAuthorized,
    PaymentSettled,
    RepaymentMade,
    UnknownEvent,
    stream_of,
    upcast,
)

__all__ = [
    "MAX_SUMMED_MINOR",
    "SUMMED_TYPES",
    "AppendResult",
    "Durability",
    "EventStore",
    "ImportItem",
    "ImportResult",
    "IntegrityReport",
    "Prepared",
    "Record",
    "prepare_append",
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


# --- validation and encoding ---------------------------------------------------------------


def split_validation_message(message: str) -> tuple[str, str | None]:
    """Split msgspec's ``"Expected `int` >= 1 - at `$.attempt`"`` into message and field."""
    marker = " - at `$"
    at = message.rfind(marker)
    if at < 0:
        return message, None
    field = message[at + len(marker) : -1].lstrip(".")
    return message[:at], field or None


def to_micros(ts: datetime) -> int:
    """Microseconds since the epoch of an aware datetime, exactly."""
    return (ts - EPOCH) // _MICRO


def from_micros(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=us)


_RANDOM = random.Random(os.urandom(32))
os.register_at_fork(after_in_child=lambda: _RANDOM.seed(os.urandom(32)))


def uuid7() -> str:
    """A time-ordered UUID (RFC 9562 version 7): ids generated by the store sort by creation
    time, so the event_id index grows at its right edge instead of at random pages. The 74
    random bits come from a generator seeded from ``os.urandom`` (reseeded in forked children):
    ids need uniqueness, not secrecy."""
    ms = time.time_ns() // 1_000_000
    rand = _RANDOM.getrandbits(80)
    value = (
        (ms & 0xFFFF_FFFF_FFFF) << 80
        | 0x7 << 76
        | ((rand >> 62) & 0xFFF) << 64
        | 0b10 << 62
        | (rand & ((1 << 62) - 1))
    )
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def normalize_event_id(value: str | uuid.UUID) -> str:
    if isinstance(value, uuid.UUID):
        return str(value)
    try:
        return str(uuid.UUID(value))
    except (ValueError, AttributeError, TypeError) as e:
        raise EventValidationError(f"event_id {value!r} is not a UUID", field="event_id") from e


def check_optional_id(value: str | None, name: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not 0 < len(value) <= 256:
        raise EventValidationError(
            f"{name} must be a non-empty string of at most 256 characters", field=name
        )
    try:
        value.encode()
    except UnicodeEncodeError as e:
        raise EventValidationError(f"{name} is not valid Unicode text", field=name) from e
    return value


def _time_fields(cls: type[Event]) -> tuple[str, ...]:
    info = msgspec.inspect.type_info(cls)
    assert isinstance(info, msgspec.inspect.StructType)
    out = []
    for f in info.fields:
        kinds = f.type.types if isinstance(f.type, msgspec.inspect.UnionType) else (f.type,)
        if any(isinstance(k, msgspec.inspect.DateTimeType) for k in kinds):
            out.append(f.name)
    return tuple(out)


_TIME_FIELDS: Final[dict[str, tuple[str, ...]]] = {
    name: _time_fields(cls) for name, cls in CATALOGUE.items()
}


_ZERO: Final = timedelta(0)


def non_utc_field(event: Event) -> str | None:
    """The first timestamp field of ``event`` that is not in UTC (``occurred_at``,
    ``expected_until``, ...), or None."""
    for name in _TIME_FIELDS.get(type(event).__name__, ("occurred_at",)):
        value = getattr(event, name)
        if value is not None and value.tzinfo is not UTC and value.utcoffset() != _ZERO:
            return str(name)
    return None


def prepare(
    stream: str,
    events: Sequence[Event],
    *,
    event_ids: Sequence[str | uuid.UUID] | None = None,
    correlation_id: str | None = None,
    causation_id: str | None = None,
) -> list[Prepared]:
    """Validate ``events`` for ``stream`` and encode them; raises :class:`EventValidationError`
    naming the stream, the event's index and the field at fault."""
    if not isinstance(stream, str) or not 0 < len(stream) <= MAX_STREAM_LENGTH:
        raise EventValidationError("a stream name is a non-empty string", stream=str(stream))
    if isinstance(events, Event):
        raise EventValidationError("append takes a list of events, not one event", stream=stream)
    if event_ids is not None and len(event_ids) != len(events):
        raise EventValidationError(
            f"{len(event_ids)} event_ids for {len(events)} events", stream=stream
        )
    correlation_id = check_optional_id(correlation_id, "correlation_id")
    causation_id = check_optional_id(causation_id, "causation_id")
    out: list[Prepared] = []
    seen: set[str] = set()
    for index, event in enumerate(events):
        cls = type(event)
        name = cls.__name__
        if CATALOGUE.get(name) is not cls:
            raise EventValidationError(
                f"{name} is not an event type of the catalogue", stream=stream, index=index
            )
        try:
            data = ENCODER.encode(event)
        except (TypeError, ValueError, msgspec.EncodeError) as e:  # a field of a foreign type
            raise EventValidationError(f"cannot be encoded: {e}", stream=stream, index=index) from e
        try:
            DECODER.decode(data)
        except msgspec.ValidationError as e:
            message, field = split_validation_message(str(e))
            raise EventValidationError(message, field=field, stream=stream, index=index) from e
        late = non_utc_field(event)
        if late is not None:
            raise EventValidationError("timestamps are UTC", field=late, stream=stream, index=index)
        expected_stream = stream_of(event)
        if expected_stream != stream:
            raise EventValidationError(
                f"a {name} belongs in stream {expected_stream!r}", stream=stream, index=index
            )
        if event_ids is None:
            eid, explicit = uuid7(), False
        else:
            try:
                eid, explicit = normalize_event_id(event_ids[index]), True
            except EventValidationError as e:
                raise EventValidationError(
                    e.message, field="event_id", stream=stream, index=index
                ) from e
            if eid in seen:
                raise EventValidationError(
                    f"event_id {eid} is given twice in one call",
                    field="event_id",
                    stream=stream,
                    index=index,
                )
            seen.add(eid)
        out.append(
            Prepared(
                stream=stream,
                type=name,
                schema=cls.schema_version,
                data=data.decode(),
                occurred_us=to_micros(event.occurred_at),
                event_id=eid,
                explicit_id=explicit,
                correlation_id=correlation_id,
                causation_id=causation_id,
                summed_minor=int(getattr(event, "amount_minor", 0)) if name in SUMMED_TYPES else 0,
            )
        )
    return out


def prepare_append(
    stream: str,
    events: Sequence[Event],
    expected_version: int | None,
    *,
    event_ids: Sequence[str | uuid.UUID] | None,
    correlation_id: str | None,
    causation_id: str | None,
) -> list[Prepared]:
    """What every backend's ``append`` checks before it queues or applies anything: the
    expected version's type, then every event (:func:`prepare`)."""
    if expected_version is not None and (
        isinstance(expected_version, bool)
        or not isinstance(expected_version, int)
        or expected_version < 0
    ):
        raise ValueError("expected_version is None or an integer >= 0")
    return prepare(
        stream,
        events,
        event_ids=event_ids,
        correlation_id=correlation_id,
        causation_id=causation_id,
    )


# --- the hash chain ------------------------------------------------------------------------


def chain_hash(
    prev: bytes,
    position: int,
    stream: str,
    version: int,
    event_id: str,
    correlation_id: str | None,
    causation_id: str | None,
    recorded_us: int,
    schema: int,
    data: str,
) -> bytes:
    """SHA-256 over the previous hash and the event's canonical bytes."""
    head = "\x1f".join(
        (
            str(position),
            stream,
            str(version),
            event_id,
            correlation_id or "",
            causation_id or "",
            str(recorded_us),
            str(schema),
        )
    )
    return hashlib.sha256(prev + head.encode() + b"\x1e" + data.encode()).digest()


# --- decoding stored rows ------------------------------------------------------------------

_CURRENT_SCHEMA: Final[dict[str, int]] = {n: c.schema_version for n, c in CATALOGUE.items()}


def decode_event(type_name: str, schema: int, data: str, occurred_us: int, position: int) -> Event:
    """Decode a stored event, upcasting an older shape; an unknown type is an
    :class:`UnknownEvent`, never a crash."""
    current = _CURRENT_SCHEMA.get(type_name)
    try:
        if current == schema:
            event: Event = DECODER.decode(data)
            return event
        if current is None or schema > current:
            return UnknownEvent(
                occurred_at=from_micros(occurred_us),
                type_name=type_name if current is None else f"{type_name}@v{schema}",
                payload=data,
                position=position,
            )
        payload = upcast(type_name, schema, msgspec.json.decode(data))
        upcasted: Event = msgspec.convert(payload, CATALOGUE[type_name])
        return upcasted
    except (msgspec.ValidationError, msgspec.DecodeError, LookupError) as e:
        reason = f"position {position}: stored {type_name} does not decode: {e}"
        raise DamagedStoreError(position, reason, damaged=f"position {position}") from e


# --- the batch planner ---------------------------------------------------------------------


class Stored(msgspec.Struct, frozen=True, gc=False):
    """What the planner needs to know of an event already stored under an id."""

    position: int
    stream: str
    version: int
    data: str


class Planner:
    """Assigns positions, versions and hashes to a batch of calls inside one transaction.

    A backend fills ``versions`` (current version of each stream the batch touches) and
    ``stored`` (events already stored under the batch's explicit ids) before planning, then
    writes ``rows`` and commits. Each call is planned on its own: a conflict raises for that
    call only and leaves the planner as it was before it.

    ``summed_minor`` is the head's running total of the amounts the projections add up (rule
    8 of the module docstring): a call that would take it past :data:`MAX_SUMMED_MINOR` raises
    :class:`EventValidationError` naming its stream, the event and ``amount_minor``. After
    planning, the backend records ``planner.summed_minor`` in its head with the rows. A
    backend that does not keep the total yet passes nothing (0): the rule then holds within
    each batch only.
    """

    __slots__ = (
        "head_hash",
        "head_position",
        "recorded_us",
        "rows",
        "stored",
        "summed_minor",
        "versions",
    )

    def __init__(
        self,
        head_position: int,
        head_hash: bytes,
        recorded_us: int | None = None,
        summed_minor: int = 0,
    ):
        self.head_position = head_position
        self.head_hash = head_hash
        self.recorded_us = recorded_us if recorded_us is not None else time.time_ns() // 1000
        self.summed_minor = summed_minor
        self.versions: dict[str, int] = {}
        self.stored: dict[str, Stored] = {}
        self.rows: list[tuple[Any, ...]] = []

    def plan(
        self, stream: str, prepared: Sequence[Prepared], expected_version: int | None
    ) -> AppendResult:
        """Plan one call; raises :class:`ConcurrencyError` or :class:`DuplicateEventError`."""
        stored = [self.stored.get(p.event_id) if p.explicit_id else None for p in prepared]
        if any(hit is not None for hit in stored):
            for p, hit in zip(prepared, stored, strict=True):
                if hit is None:
                    first = next(h for h in stored if h is not None)
                    raise DuplicateEventError(
                        p.event_id,
                        first.position,
                        "this call mixes events already stored with new ones; "
                        "retry it whole or send only the new events",
                    )
                if hit.stream != p.stream or hit.data != p.data:
                    raise DuplicateEventError(
                        p.event_id, hit.position, "already stored with different content"
                    )
            return AppendResult(
                stream=stream,
                positions=tuple(h.position for h in stored if h is not None),
                version=max(h.version for h in stored if h is not None),
                duplicate=True,
            )
        current = self.versions.get(stream, 0)
        if expected_version is not None and expected_version != current:
            raise ConcurrencyError(stream, expected_version, current)
        summed = self.summed_minor
        for index, p in enumerate(prepared):
            if p.summed_minor:
                summed += p.summed_minor
                if summed > MAX_SUMMED_MINOR:
                    raise EventValidationError(
                        f"this {p.type} would take the ledger's summed amounts (holds, "
                        f"settlements, repayments: {self.summed_minor:,} so far) past "
                        f"{MAX_SUMMED_MINOR:,}, more than its projections can add up",
                        field="amount_minor",
                        stream=stream,
                        index=index,
                    )
        positions = []
        position, prev, version = self.head_position, self.head_hash, current
        rows = []
        for p in prepared:
            position += 1
            version += 1
            recorded = p.recorded_us if p.recorded_us is not None else self.recorded_us
            prev = chain_hash(
                prev,
                position,
                p.stream,
                version,
                p.event_id,
                p.correlation_id,
                p.causation_id,
                recorded,
                p.schema,
                p.data,
            )
            rows.append(
                (
                    position,
                    p.stream,
                    version,
                    p.type,
                    p.schema,
                    p.occurred_us,
                    recorded,
                    p.event_id,
                    p.correlation_id,
                    p.causation_id,
                    p.data,
                    prev,
                )
            )
            positions.append(position)
        # commit the plan of this call; remember explicit ids, which a later call may repeat
        for p, pos, row in zip(prepared, positions, rows, strict=True):
            if p.explicit_id:
                self.stored[p.event_id] = Stored(pos, p.stream, row[2], p.data)
        self.rows.extend(rows)
        self.head_position, self.head_hash = position, prev
        self.summed_minor = summed
        self.versions[stream] = version
        return AppendResult(stream=stream, positions=tuple(positions), version=version)


ROW_COLUMNS: Final = (
    "position, stream, version, type, schema, occurred_at, recorded_at, "
    "event_id, correlation_id, causation_id, data, hash"
)
"""The columns of a stored row, in the order :class:`Planner` writes them."""


_recorded_cache: tuple[int, datetime] = (0, EPOCH)


def record_from_row(row: Sequence[Any]) -> Record:
    """A :class:`Record` from a row selected as ``ROW_COLUMNS`` without the hash.

    The read path's hot loop: the common case (a known type at its current schema) decodes
    straight through :data:`DECODER`, and ``recorded_at`` is converted once per group commit
    (every event of a group shares it)."""
    global _recorded_cache
    if len(row) != 11:  # a full stored row, hash included
        row = row[:11]
    (
        position,
        stream,
        version,
        type_name,
        schema,
        occurred_us,
        recorded_us,
        eid,
        corr,
        caus,
        data,
    ) = row
    if _CURRENT_SCHEMA.get(type_name) == schema:
        try:
            event: Event = DECODER.decode(data)
        except (msgspec.ValidationError, msgspec.DecodeError):
            event = decode_event(type_name, schema, data, occurred_us, position)  # raises
    else:
        event = decode_event(type_name, schema, data, occurred_us, position)
    cached_us, recorded_at = _recorded_cache
    if cached_us != recorded_us:
        recorded_at = EPOCH + timedelta(microseconds=recorded_us)
        _recorded_cache = (recorded_us, recorded_at)
    return Record(position, stream, version, event, eid, recorded_at, corr, caus)


# --- the abstract store --------------------------------------------------------------------


class EventStore(ABC):
    """An append-only, gap-free, tamper-evident event store (see the module docstring)."""

    readonly: bool = False

    @abstractmethod
    async def append(
        self,
        stream: str,
        events: Sequence[Event],
        *,
        expected_version: int | None = None,
        correlation_id: str | None = None,
        causation_id: str | None = None,
        event_ids: Sequence[str | uuid.UUID] | None = None,
    ) -> AppendResult:
        """Append ``events`` to ``stream`` atomically; returns once they are durable."""

    @abstractmethod
    def read_stream(
        self, stream: str, from_version: int = 1, *, to_position: int | None = None
    ) -> AsyncIterator[Record]:
        """The events of one stream from ``from_version``, up to ``to_position`` if given."""

    @abstractmethod
    def read_all(
        self,
        from_position: int = 1,
        *,
        to_position: int | None = None,
        page_size: int = 1000,
    ) -> AsyncIterator[Record]:
        """Every event in position order, streamed page by page."""

    @abstractmethod
    def read_streams(
        self,
        streams: Iterable[str],
        *,
        from_position: int = 1,
        to_position: int | None = None,
    ) -> AsyncIterator[Record]:
        """The events of several streams, interleaved in position order."""

    @abstractmethod
    def query(
        self,
        *,
        stream: str | None = None,
        types: Sequence[str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        correlation_id: str | None = None,
        from_position: int = 1,
        to_position: int | None = None,
    ) -> AsyncIterator[Record]:
        """The events matching every given filter (``since``/``until`` bound ``occurred_at``,
        inclusive), in position order."""

    @abstractmethod
    async def head(self) -> int:
        """The last global position (0 for an empty store)."""

    @abstractmethod
    async def stream_version(self, stream: str) -> int:
        """The stream's current version (0 when it has no events)."""

    @abstractmethod
    async def position_at(self, moment: datetime) -> int:
        """The last position whose event occurred at or before ``moment`` (0 if none)."""

    @abstractmethod
    async def import_events(
        self, items: Iterable[ImportItem] | AsyncIterable[ImportItem]
    ) -> ImportResult:
        """Append every item in one transaction; events already stored with the same id and
        content are skipped. If the iterable raises, nothing is appended."""

    @abstractmethod
    async def verify(self) -> IntegrityReport:
        """Walk the hash chain, the positions and the stream versions."""

    @abstractmethod
    async def wait_for_append(self, after_position: int) -> int:
        """Wait until the head passes ``after_position``; returns the new head. Bound the wait
        with ``anyio.move_on_after``."""

    @abstractmethod
    async def aclose(self) -> None:
        """Close the store."""

    async def __aenter__(self) -> EventStore:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def prepare_import(item: ImportItem) -> Prepared:
    """Validate one import item (the event, its stream, its ids)."""
    try:
        (prepared,) = prepare(
            item.stream,
            [item.event],
            event_ids=None if item.event_id is None else [item.event_id],
            correlation_id=item.correlation_id,
            causation_id=item.causation_id,
        )
    except EventValidationError as e:
        raise FormatError(
            item.line, e.message, field=e.field or "stream", source=item.source
        ) from e
    if item.recorded_at is not None:
        prepared.recorded_us = to_micros(item.recorded_at)
    return prepared


def plan_import(planner: Planner, item: ImportItem, prepared: Prepared) -> AppendResult:
    """Plan one import item on its own; a conflict or a refused amount is a
    :class:`FormatError` naming the item's line and the field at fault."""
    try:
        return planner.plan(prepared.stream, [prepared], None)
    except DuplicateEventError as e:
        raise FormatError(item.line, str(e), field="event_id", source=item.source) from e
    except EventValidationError as e:
        field = None if e.field is None else f"data.{e.field}"
        message = f"stream {prepared.stream!r}: {e.message}"
        raise FormatError(item.line, message, field=field, source=item.source) from e
