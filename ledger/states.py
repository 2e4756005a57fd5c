"""Derived state kept beside the log: what read models persist, and the one place they write.

A read model (the projections, say) folds the log and keeps its results as rows, each by
``(kind, key)``, with the last global position they include (the *checkpoint*), written in one
transaction with the rows: a crash between an append and the read model's update leaves the old
rows and the old checkpoint, and the next catch-up applies those events once. The store keeps
the rows for each read model ``name`` apart, knows nothing of what they mean, and never lets a
read model touch the events.

Each row carries a ``summary``, a JSON object a user may query (with ``json_extract`` on
SQLite, ``->>`` on PostgreSQL), and a ``state``, the bytes the read model resumes from. Rows are
derived data: ``verify`` compares them with a fold of the log, and a read model of another
version drops them and folds again.

Every backend implements :class:`StateStore` (``store.states``); :class:`MemoryStates` is the
in-memory one, and the reference the others follow.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Collection, Iterable
from typing import Final

import msgspec

from .errors import ReadOnlyError, StoreError

__all__ = ["MemoryStates", "StateCheckpoint", "StateRow", "StateStore"]

PAGE: Final = 5000


class StateRow(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """One persisted piece of derived state."""

    kind: str
    """What the row is (``account``, ``payment``, ...): the read model's own names."""
    key: str
    group: str
    """A second key to find rows by (a payment's account, say); empty for none."""
    position: int
    """The last global position that changed it."""
    summary: str
    """A JSON object: what a user queries."""
    state: bytes
    """What the read model resumes from (empty when the summary is all it keeps)."""


class StateCheckpoint(msgspec.Struct, frozen=True):
    """Where a read model's rows stand."""

    position: int
    """The last global position the rows include (0: none)."""
    version: int | None
    """The read model's version that wrote them (``None``: it never wrote)."""


class StateStore(ABC):
    """The derived state of a store's read models (see the module docstring)."""

    @abstractmethod
    async def checkpoint(self, name: str) -> StateCheckpoint:
        """Where read model ``name`` stands."""

    @abstractmethod
    async def get(self, name: str, kind: str, keys: Collection[str]) -> dict[str, StateRow]:
        """The rows of ``kind`` under ``keys`` (those that exist), by key."""

    @abstractmethod
    async def grouped(self, name: str, kind: str, groups: Collection[str]) -> list[StateRow]:
        """The rows of ``kind`` whose group is one of ``groups``, in key order."""

    @abstractmethod
    def scan(self, name: str, kind: str | None = None) -> AsyncIterator[list[StateRow]]:
        """Every row (of ``kind``), in ``(kind, key)`` order, a page at a time."""

    @abstractmethod
    async def commit(
        self,
        name: str,
        rows: Iterable[StateRow],
        *,
        position: int,
        version: int,
        expected: int | None,
        reset: bool = False,
    ) -> bool:
        """Write ``rows`` (each replaces the row of its kind and key; an iterable is consumed
        once, as it is written) and move the checkpoint to ``position``, in one transaction, if
        the checkpoint is still at ``expected`` (``None``: wherever it is). With ``reset``,
        every row of ``name`` goes first (a rebuild). Returns False, writing nothing, when
        another writer moved the checkpoint.

        Raises :class:`ReadOnlyError` on a store opened read-only, and :class:`StoreError` for
        a checkpoint past the head of the log."""

    @abstractmethod
    async def drop(self, name: str) -> None:
        """Forget read model ``name``: its rows and its checkpoint."""


class MemoryStates(StateStore):
    """Derived state in dictionaries, for the in-memory store."""

    def __init__(self, head: Callable[[], int], *, readonly: bool = False) -> None:
        self._head = head
        self._readonly = readonly
        self._rows: dict[str, dict[tuple[str, str], StateRow]] = {}
        self._checkpoints: dict[str, StateCheckpoint] = {}

    async def checkpoint(self, name: str) -> StateCheckpoint:
        return self._checkpoints.get(name, StateCheckpoint(0, None))

    async def get(self, name: str, kind: str, keys: Collection[str]) -> dict[str, StateRow]:
        rows = self._rows.get(name, {})
        return {k: row for k in keys if (row := rows.get((kind, k))) is not None}

    async def grouped(self, name: str, kind: str, groups: Collection[str]) -> list[StateRow]:
        wanted = frozenset(groups)
        return [
            row
            for (k, _), row in sorted(self._rows.get(name, {}).items())
            if k == kind and row.group in wanted
        ]

    async def scan(self, name: str, kind: str | None = None) -> AsyncIterator[list[StateRow]]:
        chosen = [
            row
            for (k, _), row in sorted(self._rows.get(name, {}).items())
            if kind is None or k == kind
        ]
        for start in range(0, len(chosen), PAGE):
            yield chosen[start : start + PAGE]

    async def commit(
        self,
        name: str,
        rows: Iterable[StateRow],
        *,
        position: int,
        version: int,
        expected: int | None,
        reset: bool = False,
    ) -> bool:
        if self._readonly:
            raise ReadOnlyError("the store is opened read-only")
        if position > self._head():
            raise StoreError(f"a checkpoint at {position} is past the head {self._head()}")
        current = await self.checkpoint(name)
        if expected is not None and current.position != expected:
            return False
        table = {} if reset else dict(self._rows.get(name, {}))
        for row in rows:
            table[(row.kind, row.key)] = row
        self._rows[name] = table
        self._checkpoints[name] = StateCheckpoint(position, version)
        return True

    async def drop(self, name: str) -> None:
        if self._readonly:
            raise ReadOnlyError("the store is opened read-only")
        self._rows.pop(name, None)
        self._checkpoints.pop(name, None)
