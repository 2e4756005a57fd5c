"""payledger's ``rebuild`` beside the ``eventsourcing`` library's (issue 3, "Speed"), same run.

The same events (:func:`bench._data.ledger_events`: 200,000, or 20,000 with ``--quick``) are
stored twice:

(a) in a payledger store, and rebuilt by :meth:`projections.Projector.rebuild`: one pass over
    the log from position 1 that folds every event into every projection (account, channel,
    policy, payment and the double-entry balances) and then writes every projection row and the
    checkpoints in one transaction;
(b) in the ``eventsourcing`` library (``pip install -e '.[bench]'``; never a runtime
    dependency) with its SQLite persistence module (``PERSISTENCE_MODULE=eventsourcing.sqlite``,
    a file database), as the events of four aggregates written in the library's declarative
    style (``@event`` command methods): :class:`Account` (credit lines with status, limit,
    overdue, held and used; score), :class:`Channel`, :class:`Policy` and :class:`Payment`
    (request, attempts with candidates, verifications, outcome and code, failovers, outcome).
    Every payledger event is exactly one ``eventsourcing`` event of the aggregate of its stream,
    stored in log order (the notification ids follow the payledger positions).

The ``eventsourcing`` side is rebuilt two ways, each timed on its own, every repetition
measuring payledger and each of them back to back (figures: the payledger rate beside each,
and the ratio; target 3x, issue 3):

1. **one pass over the notification log** (the closest equivalent of our rebuild): every
   stored event in notification order (``ApplicationRecorder.select_notifications``, what the
   application's notification log reads, in pages of 20,000 rather than its sections of 10),
   turned back into its domain event by the application's mapper and applied to its aggregate
   (``event.mutate(aggregate)``, what the library's ``project_aggregate`` does) with every
   aggregate kept in memory. Like our rebuild it is one sequential pass from the first event
   that rebuilds every read model, and it is how the library's ``ProcessApplication``/
   ``System`` followers pull notifications (its projection runner needs a recorder with
   subscriptions, which the SQLite module does not offer). It is the faster of the two ways,
   so it is the stricter comparison. It runs as the library runs by default, with Python's
   cyclic GC on; our rebuild pauses the GC while it folds, so the same pass is also timed with
   the GC paused (an ``aim`` figure: it shows how much of the gap is that one trick).
2. **``repository.get(id)`` for every aggregate** (the issue's literal "rebuilds aggregates"):
   no snapshots, no aggregate cache, one ``SELECT`` of the aggregate's own events per aggregate.

After either, the credit that payments hold or use is added to their accounts from the rebuilt
:class:`Payment` aggregates (in the library an aggregate sees only its own events, and our log
puts authorizations and settlements in payment streams). The ``eventsourcing`` side writes
nothing back and keeps no double-entry balances: it does less than our rebuild, which only
makes the comparison harder for payledger. Once per run, outside the timings, the rebuilt
aggregates are checked against our persisted projections (every payment's outcome and
attempts, every account's score and credit lines' status, limit and overdue, every channel's
status, every policy): a mismatch fails the module.

The raw ``sqlite3`` baseline of the same run reads the same rows of the payledger store with
plain ``sqlite3`` and decodes each with :data:`ledger.events.DECODER` (no fold, no write):
what any rebuild must at least do.

Run it alone with ``python -m bench eventsourcing`` (``--quick`` for 20,000 events).
"""

from __future__ import annotations

import contextlib
import gc
import uuid
from collections.abc import Callable, Iterator
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Final, TypeVar, cast

import msgspec

from ledger import ImportItem, open_store
from ledger.events import Candidate, Event
from projections import Projector, World

from ._data import ledger_events
from ._raw import read_decode
from ._util import Figure, Options, Target, scratch_dir, timed

try:
    from eventsourcing.application import Application
    from eventsourcing.domain import Aggregate, event
except ImportError:  # the benchmark's extra is not installed
    _AVAILABLE = False
else:
    _AVAILABLE = True

__all__ = ["run"]

TITLE: Final = "eventsourcing"

INSTALL_HINT: Final = (
    "bench_eventsourcing: the `eventsourcing` library is not installed, so this comparison is "
    "skipped. Install the benchmark's extra into the virtualenv and run it again:\n"
    "    .venv/bin/python -m pip install -e '.[bench]'   (or: make bench)"
)

_NAMESPACE: Final = uuid.UUID("6f1c3b9e-2a51-4d7e-9a0e-5b3f1c2d4e6a")
_CREDIT_PRODUCTS: Final = frozenset({"huabei", "jiebei"})
_PAGE: Final = 20_000


_F = TypeVar("_F", bound=Callable[..., Any])


def _event(name: str) -> Callable[[_F], _F]:
    """``eventsourcing.domain.event(name)``, typed (the command method keeps its signature)."""
    return cast("Callable[[_F], _F]", event(name))


def _id(stream: str) -> uuid.UUID:
    """The aggregate id of a payledger stream (``account-A1``, ``payment-P1``, ...)."""
    return uuid.uuid5(_NAMESPACE, stream)


if _AVAILABLE:

    class Account(Aggregate):  # type: ignore[misc, unused-ignore]
        """An account: its score and its credit lines per product."""

        @staticmethod
        def create_id(account_id: str) -> uuid.UUID:
            return _id(f"account-{account_id}")

        @_event("Opened")
        def __init__(self, account_id: str, holder_ref: str, occurred_at: Any) -> None:
            self.account_id = account_id
            self.holder_ref = holder_ref
            self.score: int | None = None
            self.previous_score: int | None = None
            self.credit: dict[str, dict[str, Any]] = {}

        @_event("CreditLineOpened")
        def open_line(
            self, product: str, limit_minor: int, currency: str, occurred_at: Any
        ) -> None:
            line = self.credit.get(product)
            if line is None:
                self.credit[product] = {
                    "currency": currency,
                    "status": "active",
                    "status_reason": "",
                    "limit_minor": limit_minor,
                    "used_minor": 0,
                    "held_minor": 0,
                    "overdue_minor": 0,
                    "days_overdue": 0,
                }
            else:
                line["currency"] = currency
                line["limit_minor"] = limit_minor

        @_event("CreditLimitChanged")
        def change_limit(
            self,
            product: str,
            old_limit_minor: int,
            new_limit_minor: int,
            reason: str,
            occurred_at: Any,
        ) -> None:
            line = self.credit.get(product)
            if line is not None:
                line["limit_minor"] = new_limit_minor

        @_event("CreditScoreChanged")
        def change_score(
            self, old_score: int, new_score: int, bureau: str, occurred_at: Any
        ) -> None:
            self.previous_score = old_score
            self.score = new_score

        @_event("CreditStatusChanged")
        def change_status(
            self, product: str, old_status: str, new_status: str, reason: str, occurred_at: Any
        ) -> None:
            line = self.credit.get(product)
            if line is not None:
                line["status"] = new_status
                line["status_reason"] = reason

        @_event("RepaymentOverdue")
        def overdue(
            self, product: str, overdue_minor: int, days_overdue: int, occurred_at: Any
        ) -> None:
            line = self.credit.get(product)
            if line is not None:
                line["overdue_minor"] = overdue_minor
                line["days_overdue"] = days_overdue if overdue_minor > 0 else 0

        @_event("RepaymentMade")
        def repay(self, product: str, amount_minor: int, occurred_at: Any) -> None:
            line = self.credit.get(product)
            if line is not None:
                line["used_minor"] -= min(amount_minor, line["used_minor"])
                overdue = max(0, line["overdue_minor"] - amount_minor)
                line["overdue_minor"] = overdue
                if not overdue:
                    line["days_overdue"] = 0

        def draw(self, product: str, *, held_minor: int = 0, used_minor: int = 0) -> None:
            """Credit a payment holds or uses (from the payment aggregates; not an event)."""
            line = self.credit.get(product)
            if line is not None:
                line["held_minor"] += held_minor
                line["used_minor"] += used_minor

    class Channel(Aggregate):  # type: ignore[misc, unused-ignore]
        """A payment channel's status (created by its first status change)."""

        @staticmethod
        def create_id(channel: str) -> uuid.UUID:
            return _id(f"channel-{channel}")

        @_event("FirstStatus")
        def __init__(
            self, channel: str, status: str, reason: str, expected_until: Any, occurred_at: Any
        ) -> None:
            self.channel = channel
            self.status = status
            self.reason = reason
            self.expected_until = expected_until

        @_event("StatusChanged")
        def change_status(
            self, status: str, reason: str, expected_until: Any, occurred_at: Any
        ) -> None:
            self.status = status
            self.reason = reason
            self.expected_until = expected_until

    class Policy(Aggregate):  # type: ignore[misc, unused-ignore]
        """The channels a merchant accepts per scenario (created by its first rule)."""

        @staticmethod
        def create_id(merchant: str) -> uuid.UUID:
            return _id(f"policy-{merchant}")

        @_event("FirstPolicy")
        def __init__(
            self,
            merchant: str,
            scenario: str,
            allowed_channels: list[str],
            reason: str,
            occurred_at: Any,
        ) -> None:
            self.merchant = merchant
            self.rules: dict[str, dict[str, Any]] = {
                scenario: {"allowed_channels": allowed_channels, "reason": reason}
            }

        @_event("PolicySet")
        def set_policy(
            self, scenario: str, allowed_channels: list[str], reason: str, occurred_at: Any
        ) -> None:
            self.rules[scenario] = {"allowed_channels": allowed_channels, "reason": reason}

    class Payment(Aggregate):  # type: ignore[misc, unused-ignore]
        """A payment: its request, attempts, failovers and outcome (the same rules as
        :func:`projections.payment.outcome_of`)."""

        @staticmethod
        def create_id(payment_id: str) -> uuid.UUID:
            return _id(f"payment-{payment_id}")

        @_event("Requested")
        def __init__(
            self,
            payment_id: str,
            account_id: str,
            merchant: str,
            scenario: str,
            amount_minor: int,
            currency: str,
            preferred_channel: str,
            occurred_at: Any,
        ) -> None:
            self.payment_id = payment_id
            self.account_id = account_id
            self.merchant = merchant
            self.scenario = scenario
            self.amount_minor = amount_minor
            self.currency = currency
            self.preferred_channel = preferred_channel
            self.requested_at = occurred_at
            self.attempts: dict[int, dict[str, Any]] = {}
            self.failovers: list[dict[str, Any]] = []
            self.abandoned_reason: str | None = None
            self.outcome = "pending"

        def _attempt(self, number: int, channel: str | None) -> dict[str, Any]:
            found = self.attempts.get(number)
            if found is None:
                if channel is None:
                    channel = (
                        self.failovers[-1]["to_channel"]
                        if self.failovers
                        else self.preferred_channel
                    )
                found = {
                    "channel": channel,
                    "candidates": [],
                    "rule": "",
                    "verifications": [],
                    "outcome": "pending",
                    "code": None,
                    "message": None,
                    "auth_ref": None,
                    "outcome_order": 0,
                }
                self.attempts[number] = found
            return found

        def _settle_outcome(self) -> None:
            attempts = [self.attempts[n] for n in sorted(self.attempts)]
            if any(a["outcome"] == "settled" for a in attempts):
                self.outcome = "succeeded"  # authorized and not settled is still pending
                return
            if self.abandoned_reason is not None:
                self.outcome = "failed"
                return
            if attempts and attempts[-1]["outcome"] == "declined":
                declined_at = attempts[-1]["outcome_order"]
                if not any(f["order"] > declined_at for f in self.failovers):
                    self.outcome = "failed"
                    return
            self.outcome = "pending"

        @_event("ChannelDecided")
        def decide(
            self,
            attempt: int,
            channel: str,
            candidates: list[dict[str, Any]],
            rule: str,
            occurred_at: Any,
        ) -> None:
            a = self._attempt(attempt, channel)
            a["channel"] = channel
            a["candidates"] = candidates
            a["rule"] = rule
            self._settle_outcome()

        @_event("Attempted")
        def attempted(
            self, attempt: int, channel: str, amount_minor: int, occurred_at: Any
        ) -> None:
            self._attempt(attempt, channel)["channel"] = channel
            self._settle_outcome()

        @_event("VerificationRequested")
        def verification_requested(self, attempt: int, method: str, occurred_at: Any) -> None:
            self._attempt(attempt, None)

        @_event("VerificationFailed")
        def verification_failed(
            self, attempt: int, method: str, reason: str, remaining_tries: int, occurred_at: Any
        ) -> None:
            self._attempt(attempt, None)["verifications"].append(
                {"method": method, "passed": False, "reason": reason, "remaining": remaining_tries}
            )

        @_event("VerificationPassed")
        def verification_passed(self, attempt: int, method: str, occurred_at: Any) -> None:
            self._attempt(attempt, None)["verifications"].append({"method": method, "passed": True})

        def _outcome(self, attempt: int, channel: str, outcome: str, **fields: Any) -> None:
            a = self._attempt(attempt, channel)
            a.update(outcome=outcome, code=None, message=None, outcome_order=self.version)
            a.update(fields)
            self._settle_outcome()

        @_event("Authorized")
        def authorize(
            self, attempt: int, channel: str, amount_minor: int, auth_ref: str, occurred_at: Any
        ) -> None:
            self._outcome(attempt, channel, "authorized", auth_ref=auth_ref)

        @_event("Declined")
        def decline(
            self, attempt: int, channel: str, code: str, message: str, occurred_at: Any
        ) -> None:
            self._outcome(attempt, channel, "declined", code=code, message=message)

        @_event("Settled")
        def settle(self, attempt: int, channel: str, amount_minor: int, occurred_at: Any) -> None:
            self._outcome(attempt, channel, "settled")

        @_event("FailoverTriggered")
        def failover(
            self, from_channel: str, to_channel: str, reason: str, occurred_at: Any
        ) -> None:
            self.failovers.append(
                {
                    "from_channel": from_channel,
                    "to_channel": to_channel,
                    "reason": reason,
                    "order": self.version,
                }
            )
            self._settle_outcome()

        @_event("Abandoned")
        def abandon(self, reason: str, occurred_at: Any) -> None:
            self.abandoned_reason = reason
            self._settle_outcome()


# --- the payledger event -> eventsourcing command --------------------------------------------

_METHODS: Final[dict[str, str]] = {
    "CreditLineOpened": "open_line",
    "CreditLimitChanged": "change_limit",
    "CreditScoreChanged": "change_score",
    "CreditStatusChanged": "change_status",
    "RepaymentOverdue": "overdue",
    "RepaymentMade": "repay",
    "ChannelStatusChanged": "change_status",
    "ChannelPolicySet": "set_policy",
    "ChannelDecided": "decide",
    "PaymentAttempted": "attempted",
    "VerificationRequested": "verification_requested",
    "VerificationFailed": "verification_failed",
    "VerificationPassed": "verification_passed",
    "PaymentAuthorized": "authorize",
    "PaymentDeclined": "decline",
    "PaymentSettled": "settle",
    "FailoverTriggered": "failover",
    "PaymentAbandoned": "abandon",
}
"""The command method of each non-creating event type."""

_CREATORS: Final[dict[str, str]] = {
    "AccountOpened": "Account",
    "ChannelStatusChanged": "Channel",
    "ChannelPolicySet": "Policy",
    "PaymentRequested": "Payment",
}
"""The aggregate class whose first event each type can be."""

_KEYS: Final[dict[str, str]] = {
    "account": "account_id",
    "payment": "payment_id",
    "channel": "channel",
    "policy": "merchant",
}
"""The field that names the aggregate, by stream prefix (not an argument of its commands)."""


def _fields(ev: Event) -> dict[str, Any]:
    """The event's fields as the command's keyword arguments (JSON-friendly containers)."""
    out: dict[str, Any] = {}
    for name, value in msgspec.structs.asdict(ev).items():
        if isinstance(value, tuple):
            value = [msgspec.structs.asdict(v) if isinstance(v, Candidate) else v for v in value]
        out[name] = value
    return out


def _store_eventsourcing(path: Path, count: int, seed: int) -> dict[str, list[uuid.UUID]]:
    """Write the events into an ``eventsourcing`` SQLite application, in log order; returns
    the aggregate ids per class name."""
    classes: dict[str, Any] = {
        "Account": Account,
        "Channel": Channel,
        "Policy": Policy,
        "Payment": Payment,
    }
    app = _application(path)
    try:
        aggregates: dict[str, Any] = {}
        ids: dict[str, list[uuid.UUID]] = {name: [] for name in classes}
        batch: list[Any] = []
        for stream, ev in ledger_events(count, seed):
            name = type(ev).__name__
            fields = _fields(ev)
            agg = aggregates.get(stream)
            if agg is None:
                cls_name = _CREATORS.get(name)
                if cls_name is None:
                    raise RuntimeError(f"{stream}: first event {name} creates no aggregate")
                agg = classes[cls_name](**fields)
                aggregates[stream] = agg
                ids[cls_name].append(agg.id)
            else:
                del fields[_KEYS[stream.partition("-")[0]]]
                getattr(agg, _METHODS[name])(**fields)
            batch.extend(app.mapper.to_stored_event(e) for e in agg.collect_events())
            if len(batch) >= 5000:
                app.recorder.insert_events(batch)
                batch = []
        if batch:
            app.recorder.insert_events(batch)
        return ids
    finally:
        app.close()


def _application(path: Path) -> Any:
    return Application(
        env={
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": str(path),
            "IS_SNAPSHOTTING_ENABLED": "n",
        }
    )


def _add_credit(aggregates: dict[uuid.UUID, Any]) -> None:
    """Add the credit that payments hold (authorized) or use (settled) to their accounts."""
    accounts = {a.account_id: a for a in aggregates.values() if isinstance(a, Account)}
    for p in aggregates.values():
        if not isinstance(p, Payment):
            continue
        account = accounts.get(p.account_id)
        if account is None:
            continue
        for a in p.attempts.values():
            channel = a["channel"]
            if channel not in _CREDIT_PRODUCTS:
                continue
            if a["outcome"] == "authorized":
                account.draw(channel, held_minor=p.amount_minor)
            elif a["outcome"] == "settled":
                account.draw(channel, used_minor=p.amount_minor)


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off for the block (as ``Projector.rebuild`` does)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _es_one_pass(app: Any) -> tuple[int, dict[uuid.UUID, Any]]:
    """Every stored event in notification order, applied to its aggregate."""
    recorder = app.recorder
    mapper = app.mapper
    aggregates: dict[uuid.UUID, Any] = {}
    get = aggregates.get
    events = 0
    start = 1
    while True:
        notifications = recorder.select_notifications(start, _PAGE)
        if not notifications:
            break
        for n in notifications:
            domain_event = mapper.to_domain_event(n)
            oid = domain_event.originator_id
            aggregates[oid] = domain_event.mutate(get(oid))
        events += len(notifications)
        start = notifications[-1].id + 1
    _add_credit(aggregates)
    return events, aggregates


def _es_get_all(app: Any, ids: dict[str, list[uuid.UUID]]) -> tuple[int, dict[uuid.UUID, Any]]:
    """``repository.get`` of every aggregate (no snapshots, no cache)."""
    repository = app.repository
    aggregates: dict[uuid.UUID, Any] = {}
    events = 0
    for group in ids.values():
        for aggregate_id in group:
            agg = repository.get(aggregate_id)
            aggregates[aggregate_id] = agg
            events += agg.version
    _add_credit(aggregates)
    return events, aggregates


# --- checking that both sides rebuilt the same state -----------------------------------------


def _mismatches(world: World, aggregates: dict[uuid.UUID, Any]) -> Iterator[str]:
    """What differs between our projections and the rebuilt aggregates."""
    seen = {"Account": 0, "Payment": 0, "Channel": 0, "Policy": 0}
    for agg in aggregates.values():
        seen[type(agg).__name__] += 1
        if isinstance(agg, Payment):
            ours = world.payments.get(agg.payment_id)
            if ours is None:
                yield f"payment {agg.payment_id}: missing in payledger"
                continue
            theirs = (agg.outcome, len(agg.attempts), len(agg.failovers))
            mine = (ours.outcome, len(ours.attempts), len(ours.failovers))
            if theirs != mine:
                yield f"payment {agg.payment_id}: {mine} != {theirs}"
        elif isinstance(agg, Account):
            state = world.account(agg.account_id)
            if state is None:
                yield f"account {agg.account_id}: missing in payledger"
                continue
            mine_lines = {
                p: (line.status, line.limit_minor, line.overdue_minor)
                for p, line in state.credit.items()
            }
            theirs_lines = {
                p: (line["status"], line["limit_minor"], line["overdue_minor"])
                for p, line in agg.credit.items()
            }
            if (state.score, mine_lines) != (agg.score, theirs_lines):
                yield f"account {agg.account_id}: {state.score, mine_lines} != " + str(
                    (agg.score, theirs_lines)
                )
        elif isinstance(agg, Channel):
            if world.channel(agg.channel).status != agg.status:
                yield f"channel {agg.channel}: status differs"
        elif isinstance(agg, Policy):
            rules = world.policy(agg.merchant).rules
            mine_rules = {s: list(r.allowed_channels) for s, r in rules.items()}
            theirs_rules = {s: r["allowed_channels"] for s, r in agg.rules.items()}
            if mine_rules != theirs_rules:
                yield f"policy {agg.merchant}: rules differ"
    counts = {
        "Account": sum(1 for f in world.accounts.values() if f.known),
        "Payment": len(world.payments),
        "Channel": len(world.channels),
        "Policy": len(world.policies),
    }
    if counts != seen:
        yield f"aggregate counts: payledger {counts} != eventsourcing {seen}"


def _check(world: World, aggregates: dict[uuid.UUID, Any], how: str) -> None:
    problems = list(_mismatches(world, aggregates))
    if problems:
        shown = "; ".join(problems[:5])
        raise RuntimeError(
            f"eventsourcing ({how}) and payledger rebuilt different states "
            f"({len(problems)} differences): {shown}"
        )


# --- raw sqlite3 ------------------------------------------------------------------------------


# --- the figures ------------------------------------------------------------------------------


async def _build_payledger(path: Path, count: int, seed: int) -> None:
    async with open_store(path, durability="normal") as store:
        await store.import_events(
            ImportItem(stream=stream, event=ev) for stream, ev in ledger_events(count, seed)
        )


async def run(options: Options) -> list[Figure]:
    """Measure the figures of the module docstring (none without ``eventsourcing``)."""
    if not _AVAILABLE:
        print(INSTALL_HINT)
        return []
    count = 20_000 if options.quick else 200_000
    ours: list[float] = []
    one_pass: list[float] = []
    paused: list[float] = []
    get_all: list[float] = []
    raw: list[float] = []
    with scratch_dir(options) as tmp:
        pl_path = tmp / "payledger.db"
        es_path = tmp / "eventsourcing.db"
        options.log(f"eventsourcing: storing {count:,} events in a payledger store")
        await _build_payledger(pl_path, count, options.seed)
        options.log(f"eventsourcing: storing the same {count:,} events with eventsourcing.sqlite")
        with timed() as elapsed:
            ids = _store_eventsourcing(es_path, count, options.seed)
        options.log(
            f"eventsourcing: stored {sum(len(v) for v in ids.values()):,} aggregates "
            f"in {elapsed():.1f} s"
        )
        app = _application(es_path)
        try:
            async with (
                open_store(pl_path) as store,  # a rebuild writes its rows
                Projector.open(store) as projector,
            ):
                for i in range(options.repeat):
                    gc.collect()
                    with timed() as elapsed:
                        result = await projector.rebuild()
                    ours.append(result.events / elapsed())
                    gc.collect()
                    with timed() as elapsed:
                        n = _es_one_pass(app)[0]
                    one_pass.append(n / elapsed())
                    gc.collect()
                    with _gc_paused(), timed() as elapsed:
                        n_paused = _es_one_pass(app)[0]
                    paused.append(n_paused / elapsed())
                    gc.collect()
                    with timed() as elapsed:
                        n_get = _es_get_all(app, ids)[0]
                    get_all.append(n_get / elapsed())
                    gc.collect()
                    with timed() as elapsed:
                        n_raw = read_decode(pl_path)
                    raw.append(n_raw / elapsed())
                    if not result.events == n == n_paused == n_get == n_raw == count:
                        raise RuntimeError(
                            f"event counts differ: payledger {result.events}, eventsourcing "
                            f"{n} (one pass), {n_paused} (GC paused) and {n_get} (get), "
                            f"raw {n_raw}, expected {count}"
                        )
                    options.log(
                        f"eventsourcing {i + 1}/{options.repeat}: payledger {ours[-1]:,.0f}, "
                        f"eventsourcing one pass {one_pass[-1]:,.0f} "
                        f"({paused[-1]:,.0f} with the GC paused), "
                        f"repository.get {get_all[-1]:,.0f}, raw {raw[-1]:,.0f} events/s"
                    )
                options.log("eventsourcing: checking both sides rebuilt the same state")
                world = await projector.load_world()
                _check(world, _es_one_pass(app)[1], "one pass")
                _check(world, _es_get_all(app, ids)[1], "repository.get")
        finally:
            app.close()
    size = f"{count:,} events"
    return [
        Figure.measured(
            "rebuild vs eventsourcing (one pass)",
            "events/s",
            ours,
            one_pass,
            better="higher",
            target=Target(on="ratio", op=">=", threshold=3),
            note=(
                f"{size}; payledger: Projector.rebuild (fold every projection, write every row); "
                f"baseline: eventsourcing {_version()} (SQLite), every notification mapped to "
                "its domain event and applied to its aggregate, all in memory"
            ),
        ),
        Figure.measured(
            "rebuild vs eventsourcing (one pass, GC paused)",
            "events/s",
            ours,
            paused,
            better="higher",
            target=Target(on="ratio", op=">=", threshold=3, aim=True),
            note=(
                f"{size}; baseline: the same pass with Python's cyclic GC paused, as "
                "payledger's rebuild pauses it (not the library's default)"
            ),
        ),
        Figure.measured(
            "rebuild vs eventsourcing (repository.get)",
            "events/s",
            ours,
            get_all,
            better="higher",
            target=Target(on="ratio", op=">=", threshold=3),
            note=(
                f"{size}; baseline: eventsourcing repository.get of every aggregate "
                "(no snapshots, no cache)"
            ),
        ),
        Figure.measured(
            "rebuild vs raw sqlite3 read + decode",
            "events/s",
            ours,
            raw,
            better="higher",
            note=f"{size}; baseline: sqlite3 SELECT + msgspec decode of the payledger rows",
        ),
    ]


def _version() -> str:
    try:
        return version("eventsourcing")
    except PackageNotFoundError:
        return "?"
