"""The JSON Lines interchange format (CONTRACT section 3).

One event per line, UTF-8::

    {"stream": "account-A1", "type": "CreditStatusChanged", "occurred_at": "2026-03-01T09:00:00Z",
     "data": {...the event's fields...}, "event_id": "...", "correlation_id": "...",
     "causation_id": "..."}

``export`` adds ``position``, ``version`` and ``recorded_at``; ``import`` accepts them
(``recorded_at`` is kept, so an export imported into an empty store reproduces its hash chain;
``position`` and ``version`` are informative and re-assigned).

Reading is strict: every problem is a :class:`~ledger.errors.FormatError` naming the line and,
where one is at fault, the field, never another exception. Beyond the catalogue's own checks a
line is refused when it

- is not UTF-8, or escapes a lone UTF-16 surrogate (``"\\ud800"`` is not a character);
- nests objects and arrays more than :data:`MAX_DEPTH` levels deep (an event needs four);
- repeats a key in any object, the envelope's or ``data``'s (JSON leaves it undefined which
  one counts; payledger takes neither).

**Retry-safe import.** ``read_lines(..., derive_ids=True)`` gives a line without an
``event_id`` one derived from the line itself (:func:`derived_event_id`): a UUID (RFC 9562
version 8) whose first 48 bits are the event's ``occurred_at`` in Unix milliseconds, like the
store's own version 7 ids (so a file's ids still grow at the right edge of the event-id index),
and whose other 74 free bits come from SHA-256 over the line number and the line's bytes
(without its line ending). The same file read again gives the same ids, so importing it a
second time (the natural retry after an interrupted or uncertain import) stores nothing new:
the store skips events already stored under the same id with the same content. Two identical
lines at different line numbers get different ids, so both are imported.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from typing import Any, Final

import msgspec

from .errors import FormatError
from .events import CATALOGUE, Event, UnknownEvent
from .store import ImportItem, Record, non_utc_field, split_validation_message, to_micros

__all__ = [
    "MAX_DEPTH",
    "decode_line",
    "derived_event_id",
    "encode_record",
    "read_lines",
    "record_document",
]

MAX_DEPTH: Final = 16
"""How deep objects and arrays may nest in one line (an event needs four levels)."""

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


_JSON_DECODER: Final = msgspec.json.Decoder()
_MISSING: Final = "Object missing required field `"
_TOO_DEEP: Final = f"nested more than {MAX_DEPTH} levels deep (an event needs at most 4)"


def _missing_field(message: str, field: str | None) -> str | None:
    """The field a "missing required field" message names (msgspec gives no path at the top)."""
    if field is None and message.startswith(_MISSING):
        return message[len(_MISSING) :].split("`", 1)[0]
    return field


_ENCODER: Final = msgspec.json.Encoder()


class _TooDeep(Exception):
    """Raised by :func:`_count_strings` past :data:`MAX_DEPTH`."""


def _count_strings(value: Any, depth: int = 1) -> int:
    """The keys and string values in a decoded JSON document; raises :class:`_TooDeep` when
    containers nest deeper than :data:`MAX_DEPTH`."""
    if depth > MAX_DEPTH:
        raise _TooDeep
    count = 0
    if type(value) is dict:
        count = len(value)
        items: Iterable[Any] = value.values()
    else:
        items = value
    for item in items:
        kind = type(item)
        if kind is str:
            count += 1
        elif kind is dict or kind is list:
            count += _count_strings(item, depth + 1)
    return count


class _Pairs(list[tuple[str, Any]]):
    """An object as read, keys in order and repeats kept."""


def _path(prefix: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{prefix}[{key}]"
    return f"{prefix}.{key}" if prefix else key


def _repeated_key(text: str) -> tuple[str, str] | None:
    """The first key repeated in one object of the (valid JSON) ``text``: (its path, the key)."""
    stack: list[tuple[str, Any]] = [("", json.loads(text, object_pairs_hook=_Pairs))]
    while stack:
        prefix, value = stack.pop()
        if isinstance(value, _Pairs):
            seen: set[str] = set()
            for key, _item in value:
                if key in seen:
                    return _path(prefix, key), key
                seen.add(key)
            stack.extend((_path(prefix, key), item) for key, item in reversed(value))
        elif isinstance(value, list):
            stack.extend((_path(prefix, i), item) for i, item in reversed(list(enumerate(value))))
    return None


_ESCAPE: Final = re.compile(r"\\(?:u([0-9a-fA-F]{4})|.)", re.DOTALL)


def _lone_surrogate(text: str) -> tuple[str, str | None] | None:
    """The first ``\\uXXXX`` escape of ``text`` that is half a UTF-16 surrogate pair with no
    other half, and the path of the value holding it when the line is otherwise JSON."""
    high: re.Match[str] | None = None
    lone: str | None = None
    for m in _ESCAPE.finditer(text):
        code = int(m.group(1), 16) if m.group(1) else -1
        if high is not None:
            if 0xDC00 <= code <= 0xDFFF and m.start() == high.end():
                high = None
                continue
            lone = high.group(0)
            break
        if 0xD800 <= code <= 0xDBFF:
            high = m
        elif 0xDC00 <= code <= 0xDFFF:
            lone = m.group(0)
            break
    else:
        if high is not None:
            lone = high.group(0)
    if lone is None:
        return None
    try:
        doc = json.loads(text, object_pairs_hook=_Pairs)
    except (ValueError, RecursionError):
        return lone, None
    stack: list[tuple[str, Any]] = [("", doc)]
    while stack:
        prefix, value = stack.pop()
        if isinstance(value, str):
            if not _encodable(value):
                return lone, prefix or None
        elif isinstance(value, _Pairs):
            for key, item in reversed(value):
                if not _encodable(key):
                    return lone, _path(prefix, key)
                stack.append((_path(prefix, key), item))
        elif isinstance(value, list):
            stack.extend((_path(prefix, i), item) for i, item in reversed(list(enumerate(value))))
    return lone, None


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _parse(raw: bytes | str, line: int, source: str | None) -> Any:
    """The line as JSON values, after the structural checks of the module docstring."""
    if isinstance(raw, bytes):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise FormatError(line, f"not valid UTF-8 (byte {e.start})", source=source) from e
    else:
        text = raw
        if not _encodable(text):
            raise FormatError(line, "contains a lone UTF-16 surrogate", source=source)
    try:
        doc = _JSON_DECODER.decode(text)
    except RecursionError as e:
        raise FormatError(line, _TOO_DEEP, source=source) from e
    except msgspec.DecodeError as e:
        lone = _lone_surrogate(text)
        if lone is not None:
            escape, field = lone
            raise FormatError(
                line,
                f"{escape} is half of a UTF-16 surrogate pair, not a character",
                field=field,
                source=source,
            ) from e
        message = str(e)
        if "truncated" in message:
            message = f"the line is truncated ({message})"
        raise FormatError(line, message, source=source) from e
    if type(doc) is dict or type(doc) is list:
        try:
            strings = _count_strings(doc)
        except _TooDeep:
            raise FormatError(line, _TOO_DEEP, source=source) from None
        # Without escapes, every string of the line is two of its quotes: a line holding
        # more strings than the decoded document lost some to a repeated key.
        if "\\" in text or 2 * strings != text.count('"'):
            repeated = _repeated_key(text)
            if repeated is not None:
                field, key = repeated
                raise FormatError(
                    line, f"key {key!r} appears twice in one object", field=field, source=source
                )
    return doc


def decode_line(raw: bytes | str, line: int, source: str | None = None) -> ImportItem:
    """Read one line into an :class:`ImportItem`; raises :class:`FormatError`."""
    doc = _parse(raw, line, source)
    try:
        env = msgspec.convert(doc, _Envelope)
    except msgspec.ValidationError as e:
        message, field = split_validation_message(str(e))
        field = _missing_field(message, field)
        if message.startswith("Object contains unknown field"):
            message = f"unknown key {message.split('`')[1]!r}"
            field = None
        raise FormatError(line, message, field=field, source=source) from e
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


_ID_DOMAIN: Final = b"payledger import event_id v1\x00"


def derived_event_id(raw: bytes, line: int, occurred_at: datetime) -> str:
    """The ``event_id`` of a line that carries none (see the module docstring): UUID version 8,
    ``occurred_at``'s Unix milliseconds in its first 48 bits, SHA-256 over the line number and
    the line's bytes in the other 74 free bits."""
    digest = int.from_bytes(
        hashlib.sha256(_ID_DOMAIN + str(line).encode() + b"\x00" + raw).digest()[:10], "big"
    )
    ms = to_micros(occurred_at) // 1000
    value = (
        (ms & 0xFFFF_FFFF_FFFF) << 80
        | 0x8 << 76
        | ((digest >> 62) & 0xFFF) << 64
        | 0b10 << 62
        | (digest & ((1 << 62) - 1))
    )
    return str(uuid.UUID(int=value))


def read_lines(
    lines: Iterable[bytes], source: str | None = None, *, derive_ids: bool = False
) -> Iterator[ImportItem]:
    """Decode a file's lines (as read in binary); blank lines are skipped but counted.

    ``derive_ids``: give each line without an ``event_id`` the one :func:`derived_event_id`
    derives from it, so that importing the same file again stores nothing new.
    """
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        body = raw.rstrip(b"\r\n")
        item = decode_line(body, number, source)
        if derive_ids and item.event_id is None:
            eid = derived_event_id(body, number, item.event.occurred_at)
            item = msgspec.structs.replace(item, event_id=eid)
        yield item


def record_document(record: Record) -> dict[str, Any]:
    """A stored event as every listing shows it (``export``, ``audit``, ``timeline``): its
    place in the log (``position``, ``stream``, ``version``), ``type``, ``occurred_at``,
    ``recorded_at``, ``event_id``, ``correlation_id``, ``causation_id`` (``null`` when absent)
    and ``data``. An event of a type this version does not know passes through as stored."""
    event = record.event
    if isinstance(event, UnknownEvent):  # written by a newer version: pass it through as stored
        data = msgspec.json.decode(event.payload)
        type_name = data.pop("type", event.type_name)
    else:
        data = msgspec.structs.asdict(event)
        type_name = event.type
    data.pop("occurred_at", None)
    return {
        "position": record.position,
        "stream": record.stream,
        "version": record.version,
        "type": type_name,
        "occurred_at": event.occurred_at,
        "recorded_at": record.recorded_at,
        "event_id": record.event_id,
        "correlation_id": record.correlation_id,
        "causation_id": record.causation_id,
        "data": data,
    }


def encode_record(record: Record) -> bytes:
    """One line of the export (with its newline): :func:`record_document` as JSON."""
    return _ENCODER.encode(record_document(record)) + b"\n"
