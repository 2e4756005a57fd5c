"""The SQL that depends on the layout of the events table: a store of schema 4 finds a stream
by its number (``streams``, the unique index on ``(stream_no, version)``) and events of the
types of :data:`.tables.RARE_TYPES` by their partial index; a store of an older schema, opened
read-only and read as it is, by the stream's name and the index by type. Every query that
finds a stream or a type here does so on an index."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any, Final

from .tables import RARE_TYPES, RARE_TYPES_CONDITION, RARE_TYPES_INDEX
from .writer import in_clause

__all__ = ["Layout"]

_RARE: Final = frozenset(RARE_TYPES)


class Layout:
    """The layout of one store's events table (by its schema version)."""

    __slots__ = ("numbered",)

    def __init__(self, schema_version: int) -> None:
        self.numbered = schema_version >= 4
        """Streams are found by their number (schema 4)."""

    @property
    def stream_is(self) -> str:
        """The events of the stream named by one parameter."""
        if self.numbered:
            return "stream_no = (SELECT id FROM streams WHERE name = ?)"
        return "stream = ?"

    def streams_in(self, names: Iterable[str]) -> tuple[str, list[Any]]:
        """The events of the streams ``names``."""
        if not self.numbered:
            return in_clause("stream", names)
        in_names, params = in_clause("name", names)
        return f"stream_no IN (SELECT id FROM streams WHERE {in_names})", params

    def types_in(self, types: Collection[str]) -> tuple[str, list[Any]]:
        """The events of the types ``types``: when the partial index holds every one of them,
        its condition is added word for word, so SQLite may read them through it."""
        in_types, params = in_clause("type", types)
        if self.rare(types):
            return f"{in_types} AND ({RARE_TYPES_CONDITION})", params
        return in_types, params

    def rare(self, types: Collection[str]) -> bool:
        """Whether the events of ``types`` are all in the index of rare types (schema 4)."""
        return self.numbered and bool(types) and _RARE.issuperset(types)

    def by_types(self, types: Collection[str]) -> str:
        """What follows ``FROM events`` to read the events of ``types`` through the partial
        index (when it holds them all; other types are read in position order, and an older
        schema's index by type is left to SQLite's choice)."""
        return f" INDEXED BY {RARE_TYPES_INDEX}" if self.rare(types) else ""
