"""The hash chain and the batch planner: positions, versions, hashes and the summed-amount
ceiling assigned to a group of calls inside one transaction, the same on every backend."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from typing import Any

import msgspec

from ._merkle.frontier import Frontier
from ._merkle.plan import DEFAULT_THRESHOLD
from ._merkle.tree import NodeId
from .errors import (
    ConcurrencyError,
    DuplicateEventError,
    EventValidationError,
    FormatError,
    IntegrityError,
)
from .records import MAX_SUMMED_MINOR, AppendResult, ImportItem, Prepared

__all__ = ["Planner", "Stored", "chain_hash", "plan_import"]

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
    """SHA-256 over the previous hash and the event's canonical bytes: ``prev``, then the
    UTF-8 of position, stream, version, event id, correlation id, causation id, recorded_at
    (microseconds) and schema joined by U+001F, U+001E, and the event's JSON."""
    return _sha256(
        prev
        + (
            f"{position}\x1f{stream}\x1f{version}\x1f{event_id}\x1f{correlation_id or ''}"
            f"\x1f{causation_id or ''}\x1f{recorded_us}\x1f{schema}\x1e{data}"
        ).encode()
    ).digest()


_sha256 = hashlib.sha256


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
        "frontier",
        "head_hash",
        "head_position",
        "recorded_us",
        "rows",
        "stored",
        "summed_minor",
        "threshold",
        "versions",
    )

    def __init__(
        self,
        head_position: int,
        head_hash: bytes,
        recorded_us: int | None = None,
        summed_minor: int = 0,
        frontier: Frontier | None = None,
        threshold: int = DEFAULT_THRESHOLD,
    ):
        self.head_position = head_position
        self.head_hash = head_hash
        self.frontier = frontier
        """The log's Merkle tree (its right edge) when the backend keeps one; it must be at
        ``head_position`` leaves: :meth:`grow_tree` extends it with the rows planned."""
        self.threshold = threshold
        self.recorded_us = recorded_us if recorded_us is not None else time.time_ns() // 1000
        self.summed_minor = summed_minor
        self.versions: dict[str, int] = {}
        self.stored: dict[str, Stored] = {}
        self.rows: list[tuple[Any, ...]] = []

    def grow_tree(self) -> list[tuple[NodeId, bytes]]:
        """Extend :attr:`frontier` with the chain hashes of :attr:`rows` (the rows about to be
        written) and return the perfect subtrees they completed at ``level >= threshold``: what
        the backend writes with the rows, in the same transaction, with the new frontier.
        Call it once per batch of rows written; nothing when the backend keeps no tree."""
        if self.frontier is None or not self.rows:
            return []
        first = self.rows[0][0]
        if self.frontier.size != first - 1:
            raise IntegrityError(
                first,
                f"the log's Merkle tree holds {self.frontier.size} events but the rows start "
                f"at position {first}: run `payledger verify`",
            )
        return self.frontier.append((row[11] for row in self.rows), threshold=self.threshold)

    def plan(
        self, stream: str, prepared: Sequence[Prepared], expected_version: int | None
    ) -> AppendResult:
        """Plan one call; raises :class:`ConcurrencyError` or :class:`DuplicateEventError`."""
        if self.stored:  # (no event stored or planned under an explicit id: nothing to repeat)
            duplicate = self._repeated(stream, prepared)
            if duplicate is not None:
                return duplicate
        current = self.versions.get(stream, 0)
        if expected_version is not None and expected_version != current:
            raise ConcurrencyError(stream, expected_version, current)
        if len(prepared) == 1:
            return self._plan_one(stream, prepared[0], current)
        summed = self.summed_minor
        for index, p in enumerate(prepared):
            if p.summed_minor:
                summed += p.summed_minor
                if summed > MAX_SUMMED_MINOR:
                    raise self._past_ceiling(stream, p, index)
        position, prev, version = self.head_position, self.head_hash, current
        first = position + 1
        rows = self.rows
        mark = len(rows)
        default_recorded = self.recorded_us
        try:
            for p in prepared:
                position += 1
                version += 1
                recorded = p.recorded_us if p.recorded_us is not None else default_recorded
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
        except BaseException:
            del rows[mark:]  # the planner as it was before the call
            raise
        # the plan of this call holds; remember explicit ids, which a later call may repeat
        for row, p in zip(rows[mark:], prepared, strict=True):
            if p.explicit_id:
                self.stored[p.event_id] = Stored(row[0], p.stream, row[2], p.data)
        self.head_position, self.head_hash = position, prev
        self.summed_minor = summed
        self.versions[stream] = version
        return AppendResult(
            stream=stream, positions=tuple(range(first, position + 1)), version=version
        )

    def _plan_one(self, stream: str, p: Prepared, current: int) -> AppendResult:
        """:meth:`plan` for a call of one event (the common case, kept short): the same
        checks, row, hash and bookkeeping."""
        summed = self.summed_minor
        if p.summed_minor:
            summed += p.summed_minor
            if summed > MAX_SUMMED_MINOR:
                raise self._past_ceiling(stream, p, 0)
        position = self.head_position + 1
        version = current + 1
        recorded = p.recorded_us if p.recorded_us is not None else self.recorded_us
        digest = chain_hash(
            self.head_hash,
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
        self.rows.append(
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
                digest,
            )
        )
        if p.explicit_id:
            self.stored[p.event_id] = Stored(position, p.stream, version, p.data)
        self.head_position = position
        self.head_hash = digest
        self.summed_minor = summed
        self.versions[stream] = version
        return AppendResult(stream, (position,), version)

    def _past_ceiling(self, stream: str, p: Prepared, index: int) -> EventValidationError:
        return EventValidationError(
            f"this {p.type} would take the ledger's summed amounts (holds, "
            f"settlements, repayments: {self.summed_minor:,} so far) past "
            f"{MAX_SUMMED_MINOR:,}, more than its projections can add up",
            field="amount_minor",
            stream=stream,
            index=index,
        )

    def _repeated(self, stream: str, prepared: Sequence[Prepared]) -> AppendResult | None:
        """The result of a call whose events are all stored already (a retry), or None when
        none is; raises :class:`DuplicateEventError` for a call that mixes stored and new
        events, or repeats an id with other content."""
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
        return None


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
