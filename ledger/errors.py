"""The error tree of payledger.

Every failure a user can cause or meet is one of these, never a bare ``sqlite3`` or msgspec
exception: lower-layer errors are translated at the boundary, ``raise ... from e``.

::

    LedgerError
     ├── ConcurrencyError          wrong expected_version for a stream
     ├── DuplicateEventError       an event_id already stored with other content
     ├── EventValidationError      an event breaks the catalogue (field, vocabulary, amount)
     ├── FormatError               a JSON Lines line that cannot be read (line number, field)
     ├── UnknownEventTypeError     a stored event of a type this code does not know
     ├── NotFoundError             no such payment, account or stream
     ├── IntegrityError            the store was altered behind its back (first bad position)
     │    └── DamagedStoreError    the file's pages are damaged: part of the log cannot be read
     └── StoreError                the store file itself
          ├── NotALedgerError      the file is not a payledger store
          ├── SchemaVersionError   the store was written by a newer payledger
          ├── ReadOnlyError        a write on a store opened read-only
          ├── StoreClosedError     a call on a closed store
          └── DiskFullError        the disk is full: the write was refused whole
"""

from __future__ import annotations

__all__ = [
    "ConcurrencyError",
    "DamagedStoreError",
    "DiskFullError",
    "DuplicateEventError",
    "EventValidationError",
    "FormatError",
    "IntegrityError",
    "LedgerError",
    "NotALedgerError",
    "NotFoundError",
    "ReadOnlyError",
    "SchemaVersionError",
    "StoreClosedError",
    "StoreError",
    "UnknownEventTypeError",
]


class LedgerError(Exception):
    """Raised for every failure payledger reports; the root of the error tree."""


class ConcurrencyError(LedgerError):
    """Raised when an append's ``expected_version`` is not the stream's current version.

    Nothing of the call is appended.
    """

    def __init__(self, stream: str, expected: int, actual: int) -> None:
        self.stream = stream
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"stream {stream!r}: expected version {expected}, but its version is {actual}"
        )


class DuplicateEventError(LedgerError):
    """Raised when an ``event_id`` is already stored with different content, or when one call
    mixes events already stored with new ones."""

    def __init__(self, event_id: str, position: int | None, detail: str) -> None:
        self.event_id = event_id
        self.position = position
        where = f" (stored at position {position})" if position is not None else ""
        super().__init__(f"event_id {event_id}{where}: {detail}")


class EventValidationError(LedgerError):
    """Raised when an event breaks the catalogue: a missing or mistyped field, a value outside
    a closed vocabulary, a non-positive amount, an empty id or a timestamp not in UTC."""

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        stream: str | None = None,
        index: int | None = None,
    ) -> None:
        self.field = field
        self.stream = stream
        self.index = index
        where = []
        if stream is not None:
            where.append(f"stream {stream!r}")
        if index is not None:
            where.append(f"event #{index + 1}")
        if field is not None:
            where.append(f"field {field!r}")
        prefix = ", ".join(where)
        super().__init__(f"{prefix}: {message}" if prefix else message)
        self.message = message


class FormatError(LedgerError):
    """Raised when a line of a JSON Lines file cannot be read as an event; names the line
    number and, where one is at fault, the field."""

    def __init__(
        self, line: int, message: str, *, field: str | None = None, source: str | None = None
    ) -> None:
        self.line = line
        self.field = field
        self.source = source
        self.message = message
        where = f"{source}:" if source else "line "
        loc = f"{where}{line}" if source else f"line {line}"
        fld = f" field {field!r}:" if field else ""
        super().__init__(f"{loc}:{fld} {message}")


class UnknownEventTypeError(LedgerError):
    """Raised when a stored event has a type this version of payledger does not know (it was
    written by a newer version), where the caller needs every event understood."""

    def __init__(self, type_name: str, position: int) -> None:
        self.type_name = type_name
        self.position = position
        super().__init__(
            f"position {position}: event type {type_name!r} is unknown to this version of "
            "payledger (written by a newer version?)"
        )


class NotFoundError(LedgerError):
    """Raised when a payment, account or stream the caller names has no events."""


class IntegrityError(LedgerError):
    """Raised when the store's hash chain or positions show it was altered behind its back."""

    def __init__(self, position: int, reason: str) -> None:
        self.position = position
        self.reason = reason
        super().__init__(f"integrity check failed at position {position}: {reason}")


class DamagedStoreError(IntegrityError):
    """Raised when a store's file is damaged (a page unreadable or cut off, a row that does not
    decode, a read that comes back short): the log cannot be read whole, so nothing is answered
    from part of it. ``position`` is the first position known to be affected (1 when the damage
    is in what every read needs, such as the schema)."""

    def __init__(self, position: int, reason: str, *, damaged: str = "the events table") -> None:
        self.damaged = damaged
        """What is damaged: ``"the events table"``, ``"index events_by_type"``, ``"the file"``."""
        super().__init__(position, reason)


class StoreError(LedgerError):
    """Raised when the store file cannot be used: unreadable, foreign, newer or closed."""


class NotALedgerError(StoreError):
    """Raised when the file opened is not a payledger store (another SQLite database, or not
    SQLite at all)."""


class SchemaVersionError(StoreError):
    """Raised when the store was written by a newer payledger whose schema this one does not
    know."""


class ReadOnlyError(StoreError):
    """Raised when a write is attempted on a store opened read-only."""


class StoreClosedError(StoreError):
    """Raised when a store is used after it was closed."""


class DiskFullError(StoreError):
    """Raised when a write finds the disk (or the file system's quota) full. The write is
    refused whole: nothing of it is stored, and the store stays readable."""
