"""The JSON Lines interchange format (CONTRACT section 3).

One event per line, UTF-8::

    {"stream": "account-A1", "type": "CreditStatusChanged", "occurred_at": "2026-03-01T09:00:00Z",
     "data": {...the event's fields...}, "event_id": "...", "correlation_id": "...",
     "causation_id": "..."}

``export`` adds ``position``, ``version`` and ``recorded_at``; ``import`` accepts them
(``recorded_at`` is kept, so an export imported into an empty store reproduces its hash chain;
``position`` and ``version`` are informative and re-assigned). Reading is strict: every problem is
a :class:`~ledger.errors.FormatError` naming the line and the field.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from typing import Any, Final

import msgspec

from .errors import FormatError
from .events import CATALOGUE, Event, UnknownEvent
from .store import ImportItem, Record, non_utc_field, split_validation_message

__all__ = ["decode_line", "encode_record", "read_lines"]

_FIELDS: Final[dict[str, frozenset[str]]] = {
    name: frozenset(f for f in cls.__struct_fields__ if f != "occurred_at")
    for name, cls in CATALOGUE.items()
}


class _Envelope(msgspec.Struct, forbid_unknown_fields=True):
    stream: str
    type: str
    occurred_at: str
    data: dict[str, Any]
    event_id: str | None = None
    correlation_id: str | None = None
    causation_id: str | None = None
    position: int | None = None
    version: int | None = None
    recorded_at: datetime | None = None


_ENVELOPE_DECODER: Final = msgspec.json.Decoder(_Envelope)
_MISSING: Final = "Object missing required field `"


def _missing_field(message: str, field: str | None) -> str | None:
    """The field a "missing required field" message names (msgspec gives no path at the top)."""
    if field is None and message.startswith(_MISSING):
        return message[len(_MISSING) :].split("`", 1)[0]
    return field


_ENCODER: Final = msgspec.json.Encoder()


def decode_line(raw: bytes | str, line: int, source: str | None = None) -> ImportItem:
    """Read one line into an :class:`ImportItem`; raises :class:`FormatError`."""
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise FormatError(line, f"not valid UTF-8 (byte {e.start})", source=source) from e
    try:
        env = _ENVELOPE_DECODER.decode(raw)
    except msgspec.ValidationError as e:
        message, field = split_validation_message(str(e))
        field = _missing_field(message, field)
        if message.startswith("Object contains unknown field"):
            message = f"unknown key {message.split('`')[1]!r}"
            field = None
        raise FormatError(line, message, field=field, source=source) from e
    except msgspec.DecodeError as e:
        text = str(e)
        if "truncated" in text:
            text = "the line is truncated (" + text + ")"
        raise FormatError(line, text, source=source) from e
    cls = CATALOGUE.get(env.type)
    if cls is None:
        raise FormatError(line, f"unknown event type {env.type!r}", field="type", source=source)
    extra = env.data.keys() - _FIELDS[env.type]
    if extra:
        raise FormatError(
            line,
            f"{env.type} has no field {sorted(extra)[0]!r}",
            field=f"data.{sorted(extra)[0]}",
            source=source,
        )
    payload = dict(env.data)
    payload["type"] = env.type
    payload["occurred_at"] = env.occurred_at
    try:
        event: Event = msgspec.convert(payload, cls)
    except msgspec.ValidationError as e:
        message, field = split_validation_message(str(e))
        field = _missing_field(message, field)
        if field and field != "occurred_at":
            field = f"data.{field}"
        raise FormatError(line, message, field=field, source=source) from e
    late = non_utc_field(event)
    if late is not None:
        field = late if late == "occurred_at" else f"data.{late}"
        raise FormatError(line, "timestamps are UTC", field=field, source=source)
    if env.recorded_at is not None and env.recorded_at.utcoffset() != timedelta(0):
        raise FormatError(line, "timestamps are UTC", field="recorded_at", source=source)
    return ImportItem(
        stream=env.stream,
        event=event,
        event_id=env.event_id,
        correlation_id=env.correlation_id,
        causation_id=env.causation_id,
        recorded_at=env.recorded_at,
        line=line,
        source=source,
    )


def read_lines(lines: Iterable[bytes], source: str | None = None) -> Iterator[ImportItem]:
    """Decode a file's lines (as read in binary); blank lines are skipped but counted."""
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        yield decode_line(raw.rstrip(b"\r\n"), number, source)


def encode_record(record: Record) -> bytes:
    """One line of the export (with its newline)."""
    event = record.event
    if isinstance(event, UnknownEvent):  # written by a newer version: pass it through as stored
        data = msgspec.json.decode(event.payload)
        type_name = data.pop("type", event.type_name)
    else:
        data = msgspec.structs.asdict(event)
        type_name = event.type
    data.pop("occurred_at", None)
    doc: dict[str, Any] = {
        "stream": record.stream,
        "type": type_name,
        "occurred_at": event.occurred_at,
        "data": data,
        "event_id": record.event_id,
    }
    if record.correlation_id is not None:
        doc["correlation_id"] = record.correlation_id
    if record.causation_id is not None:
        doc["causation_id"] = record.causation_id
    doc["position"] = record.position
    doc["version"] = record.version
    doc["recorded_at"] = record.recorded_at
    return _ENCODER.encode(doc) + b"\n"
