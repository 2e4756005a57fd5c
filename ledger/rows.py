"""Stored rows and the records they decode to: the read path's hot loop."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Final, TypeAlias

import msgspec

from .errors import DamagedStoreError
from .events import CATALOGUE, DECODER, ENCODER, Event, UnknownEvent, upcast
from .records import EPOCH, Record, from_micros, to_micros

__all__ = [
    "CURRENT_SHAPE",
    "PAYLOAD_COLUMNS",
    "ROW_COLUMNS",
    "PayloadRow",
    "RawRow",
    "current_schema",
    "current_shape_sql",
    "decode_event",
    "event_of_payload",
    "record_from_row",
    "row_from_record",
]

_CURRENT_SCHEMA: Final[dict[str, int]] = {n: c.schema_version for n, c in CATALOGUE.items()}


def current_schema(type_name: str) -> int | None:
    """The schema version events of ``type_name`` are decoded at (None: not a catalogue
    type)."""
    return _CURRENT_SCHEMA.get(type_name)


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


def event_of_payload(row: Sequence[Any]) -> Event:
    """The event of a :data:`PayloadRow`, decoded as :func:`record_from_row` decodes a stored
    row's (an event of a type this version does not know is an :class:`UnknownEvent` with no
    ``occurred_at``: the payload row does not carry it)."""
    position, type_name, schema, data = row[0], row[1], row[2], row[3]
    if _CURRENT_SCHEMA.get(type_name) == schema:
        try:
            event: Event = DECODER.decode(data)
            return event
        except (msgspec.ValidationError, msgspec.DecodeError):
            pass  # decode_event says why (it raises)
    return decode_event(type_name, schema, data, 0, position)


RawRow: TypeAlias = tuple[Any, ...]
"""A stored event undecoded, as :meth:`EventStore.read_rows` gives it: position, stream,
version, type, schema, occurred_at (microseconds), recorded_at (microseconds), event_id,
correlation_id, causation_id, data (the event's JSON)."""


def current_shape_sql(table: str = "") -> str:
    """An SQL condition on a stored row (of ``table``, an alias, if given): its type is in the
    catalogue and stored at its current schema version (its data decodes as it is, with no
    upcast)."""
    prefix = f"{table}." if table else ""
    by_version: dict[int, list[str]] = {}
    for name, cls in CATALOGUE.items():
        by_version.setdefault(cls.schema_version, []).append(f"'{name}'")
    return " OR ".join(
        f"({prefix}schema = {version} AND {prefix}type IN ({', '.join(names)}))"
        for version, names in sorted(by_version.items())
    )


CURRENT_SHAPE: Final = current_shape_sql()
""":func:`current_shape_sql` of a row of ``events`` read without an alias."""

PAYLOAD_COLUMNS: Final = "position, type, schema, data"
"""The columns of a :data:`PayloadRow`, without the stream."""

PayloadRow: TypeAlias = tuple[Any, ...]
"""A stored event as :meth:`EventStore.read_payloads` gives it: position, type, schema, data (the
event's JSON), and the stream when asked for."""


def row_from_record(record: Record) -> RawRow:
    """The :data:`RawRow` of a record (for backends that keep records, not rows)."""
    event = record.event
    if isinstance(event, UnknownEvent):
        type_name, schema, data = event.type_name, 0, event.payload
    else:
        type_name, schema, data = (
            event.type,
            type(event).schema_version,
            ENCODER.encode(event).decode(),
        )
    return (
        record.position,
        record.stream,
        record.version,
        type_name,
        schema,
        to_micros(event.occurred_at),
        to_micros(record.recorded_at),
        record.event_id,
        record.correlation_id,
        record.causation_id,
        data,
    )
