"""Validation and encoding: what every backend's ``append`` and ``import_events`` check before
they queue or apply anything, and the time-ordered ids the store gives events."""

from __future__ import annotations

import os
import random
import time
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Sequence
from datetime import UTC, timedelta
from typing import Any, Final

import anyio
import msgspec
import msgspec.inspect

from .errors import EventValidationError, FormatError
from .events import CATALOGUE, DECODER, ENCODER, Event, stream_of
from .records import MAX_STREAM_LENGTH, SUMMED_TYPES, ImportItem, Prepared, to_micros

__all__ = [
    "check_optional_id",
    "import_chunks",
    "non_utc_field",
    "normalize_event_id",
    "prepare",
    "prepare_append",
    "prepare_import",
    "split_validation_message",
    "uuid7",
]


def split_validation_message(message: str) -> tuple[str, str | None]:
    """Split msgspec's ``"Expected `int` >= 1 - at `$.attempt`"`` into message and field."""
    marker = " - at `$"
    at = message.rfind(marker)
    if at < 0:
        return message, None
    field = message[at + len(marker) : -1].lstrip(".")
    return message[:at], field or None


_RANDOM = random.Random(os.urandom(32))
_random_bits = _RANDOM.getrandbits
_time_ns = time.time_ns
_LAST: list[Any] = [-1, "", 0]
"""The last id's millisecond, that millisecond's text (``tttttttt-tttt-7``) and its 74 random
bits."""


def _after_fork() -> None:
    _RANDOM.seed(os.urandom(32))
    _LAST[0] = -1  # a child's next id starts from fresh random bits


os.register_at_fork(after_in_child=_after_fork)
_TAIL_MAX: Final = (1 << 74) - 1
_VARIANT: Final = 0b10 << 62
_LOW_62: Final = (1 << 62) - 1


def uuid7() -> str:
    """A time-ordered UUID (RFC 9562 version 7), increasing within the process: ids generated
    by the store sort by creation time, so the event_id index grows at its right edge instead of
    at random pages (an id that sorts between two others of the same millisecond would split a
    page). The first id of a millisecond takes 74 random bits from a generator seeded from
    ``os.urandom`` (reseeded in forked children); the next ones of that millisecond add a random
    32-bit step (RFC 9562's monotonic random, method 2), moving to the next millisecond if the
    bits run out. Ids need uniqueness, not secrecy."""
    ms = _time_ns() // 1_000_000
    last = _LAST
    if ms > last[0]:
        tail = _random_bits(74)
    else:  # the same millisecond (or the clock went back): keep increasing
        ms = last[0]
        tail = last[2] + _random_bits(32) + 1
        if tail > _TAIL_MAX:
            ms += 1
            tail = _random_bits(74)
    if ms != last[0]:
        t = f"{ms & 0xFFFF_FFFF_FFFF:012x}"
        last[0], last[1] = ms, f"{t[:8]}-{t[8:]}-7"
    last[2] = tail
    h = "%019x" % ((tail >> 62) << 64 | _VARIANT | (tail & _LOW_62))
    return f"{last[1]}{h[:3]}-{h[3:7]}-{h[7:]}"


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

_CLASSES: Final[dict[type, tuple[str, int, tuple[str, ...], bool]]] = {
    cls: (name, cls.schema_version, _TIME_FIELDS[name], name in SUMMED_TYPES)
    for name, cls in CATALOGUE.items()
}
"""Each catalogue class: its name, schema version, timestamp fields and whether its amount is
summed (what :func:`prepare` looks up once per event). A class is here exactly when
``CATALOGUE[cls.__name__] is cls``."""


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
    encode = ENCODER.encode
    decode = DECODER.decode
    for index, event in enumerate(events):
        cls = type(event)
        known = _CLASSES.get(cls)
        if known is None:
            raise EventValidationError(
                f"{cls.__name__} is not an event type of the catalogue", stream=stream, index=index
            )
        name, schema, time_fields, summed = known
        try:
            data = encode(event)
        except (TypeError, ValueError, msgspec.EncodeError) as e:  # a field of a foreign type
            raise EventValidationError(f"cannot be encoded: {e}", stream=stream, index=index) from e
        try:
            decode(data)
        except msgspec.ValidationError as e:
            message, field = split_validation_message(str(e))
            raise EventValidationError(message, field=field, stream=stream, index=index) from e
        for field_name in time_fields:  # as non_utc_field
            value = getattr(event, field_name)
            if value is not None and value.tzinfo is not UTC and value.utcoffset() != _ZERO:
                raise EventValidationError(
                    "timestamps are UTC", field=field_name, stream=stream, index=index
                )
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
                stream,
                name,
                schema,
                data.decode(),
                to_micros(event.occurred_at),
                eid,
                explicit,
                correlation_id,
                causation_id,
                None,
                int(getattr(event, "amount_minor", 0)) if summed else 0,
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


async def import_chunks(
    items: Iterable[ImportItem] | AsyncIterable[ImportItem], size: int
) -> AsyncIterator[list[ImportItem]]:
    """An import's ``items`` in lists of ``size`` (the last one shorter), with a checkpoint
    between lists of a plain iterable so that a long import stays cancellable."""
    batch: list[ImportItem] = []
    if isinstance(items, AsyncIterable):
        async for item in items:
            batch.append(item)
            if len(batch) >= size:
                yield batch
                batch = []
    else:
        for item in items:
            batch.append(item)
            if len(batch) >= size:
                yield batch
                batch = []
                await anyio.lowlevel.checkpoint()
    if batch:
        yield batch
