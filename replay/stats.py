"""Payments counted by outcome, and failed payments by root-cause category, channel (of the
last failed attempt), scenario and merchant; payments failover saved (succeeded after at least
one failed attempt) by the category of their last failed attempt. ``payledger stats --json``
prints this document, and ``payledger report`` shows it for a period.

The document: ``{"payments", "succeeded", "failed", "pending", "by_category", "by_channel",
"by_scenario", "by_merchant", "failed_amount_minor", "saved_by_failover",
"saved_by_category", "saved_amount_minor"}`` (amounts: objects keyed by currency). A period
places each payment by :func:`replay.incidents.period_moment`, as the incidents do.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from ledger.store import EventStore
from projections.state import PaymentState

from .batch import explain_payments
from .documents import StatsDocument
from .explanation import Explanation
from .incidents import in_period, plain_in_period

__all__ = ["Tally", "stats"]


def _add(counter: dict[str, int], key: str, n: int = 1) -> None:
    counter[key] = counter.get(key, 0) + n


def _sorted(counter: dict[str, int]) -> dict[str, int]:
    return dict(sorted(counter.items()))


class Tally:
    """The statistics of the explanations fed to it (:meth:`add`), within a period."""

    def __init__(self, *, since: datetime | None = None, until: datetime | None = None) -> None:
        self.since = since
        self.until = until
        self.counts = {"payments": 0, "succeeded": 0, "failed": 0, "pending": 0}
        self.by_category: dict[str, int] = {}
        self.by_channel: dict[str, int] = {}
        self.by_scenario: dict[str, int] = {}
        self.by_merchant: dict[str, int] = {}
        self.failed_amount: dict[str, int] = {}
        self.saved = 0
        self.saved_by_category: dict[str, int] = {}
        self.saved_amount: dict[str, int] = {}

    def add(self, exp: Explanation) -> bool:
        """Count one payment's explanation; returns whether it lies in the period."""
        if not in_period(exp, self.since, self.until):
            return False
        self.counts["payments"] += 1
        _add(self.counts, exp.outcome)
        failed = [a for a in exp.attempts if a.cause is not None]
        if exp.outcome == "failed":
            category = exp.root_cause.category if exp.root_cause is not None else "unknown"
            _add(self.by_category, category)
            _add(self.by_channel, failed[-1].channel if failed else "none")
            _add(self.by_scenario, exp.scenario)
            _add(self.by_merchant, exp.merchant)
            _add(self.failed_amount, exp.currency, exp.amount_minor)
        elif exp.outcome == "succeeded" and failed:
            last = failed[-1].cause
            assert last is not None
            self.saved += 1
            _add(self.saved_by_category, last.category)
            _add(self.saved_amount, exp.currency, exp.amount_minor)
        return True

    def add_plain(self, state: PaymentState) -> bool:
        """Count a payment with neither a decline nor an abandonment from its state (``plain``
        of :func:`replay.explain_payments`): what :meth:`add` counts of its explanation, which
        names no cause. Returns whether it lies in the period."""
        if not plain_in_period(state, self.since, self.until):
            return False
        self.counts["payments"] += 1
        _add(self.counts, state.outcome)
        return True

    def document(self) -> StatsDocument:
        """The statistics document (see the module docstring)."""
        return StatsDocument(
            payments=self.counts["payments"],
            succeeded=self.counts["succeeded"],
            failed=self.counts["failed"],
            pending=self.counts["pending"],
            by_category=_sorted(self.by_category),
            by_channel=_sorted(self.by_channel),
            by_scenario=_sorted(self.by_scenario),
            by_merchant=_sorted(self.by_merchant),
            failed_amount_minor=_sorted(self.failed_amount),
            saved_by_failover=self.saved,
            saved_by_category=_sorted(self.saved_by_category),
            saved_amount_minor=_sorted(self.saved_amount),
        )


async def stats(
    store: EventStore,
    progress: Callable[[int], None] | None = None,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
) -> StatsDocument:
    """The statistics document of every payment of the period, from one pass over the log
    (:func:`replay.explain_payments`) that explains the payments with a decline or an
    abandonment and counts the others from their state (``plain``)."""
    tally = Tally(since=since, until=until)
    async for exp in explain_payments(
        store, with_failures=True, plain=tally.add_plain, progress=progress
    ):
        tally.add(exp)
    return tally.document()
