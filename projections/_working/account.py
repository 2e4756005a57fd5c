"""An account's working state, changed in place: the same facts as the account reducer
(:mod:`projections.account`, the specification) without a copy per event.

Each handler here is the in-place twin of the reducer's handler of the same name; the tests
(``tests/test_working.py``) fold random logs both ways and compare the persisted rows byte for
byte. :meth:`Account.fold` gives the reducer's :class:`~projections.account.AccountFold`, field
for field and in the same dictionary order, so its encoding is the same bytes.
"""

from __future__ import annotations

from collections.abc import Callable
from sys import intern
from typing import Any, Final

from .. import slim
from ..account import CREDIT_PRODUCTS, AccountFold, Hold
from ..state import BEFORE_OPENING, AccountState, CreditLine, Step

__all__ = ["HANDLERS", "Account", "Line"]


class Line:
    """A credit line (:class:`projections.state.CreditLine`), mutable. Its availability
    history is one flat list, ``[available, until, available, until, ...]`` (a rebuild holds
    every account of a log at once: a pair of ints and no tuple per step)."""

    __slots__ = (
        "currency",
        "days_overdue",
        "held_minor",
        "limit_minor",
        "limit_position",
        "opened_position",
        "overdue_minor",
        "overdue_position",
        "product",
        "status",
        "status_position",
        "status_reason",
        "steps",
        "used_minor",
    )

    def __init__(self, product: str, currency: str, pos: int) -> None:
        """A line opened at ``pos``, before its limit is set (the reducer's new
        :class:`CreditLine`: limit 0, its history one step, :data:`BEFORE_OPENING`)."""
        self.product = intern(product)
        self.currency = intern(currency)
        self.status = "active"
        self.status_reason = ""
        self.status_position: int | None = None
        self.limit_minor = 0
        self.limit_position = pos
        self.used_minor = 0
        self.held_minor = 0
        self.overdue_minor = 0
        self.days_overdue = 0
        self.overdue_position: int | None = None
        self.opened_position = pos
        self.steps: list[int] = [BEFORE_OPENING, 0]

    @classmethod
    def of(cls, line: CreditLine) -> Line:
        """The working twin of a reducer's line."""
        self = cls.__new__(cls)
        self.product = intern(line.product)
        self.currency = intern(line.currency)
        self.status = intern(line.status)
        self.status_reason = intern(line.status_reason)
        self.status_position = line.status_position
        self.limit_minor = line.limit_minor
        self.limit_position = line.limit_position
        self.used_minor = line.used_minor
        self.held_minor = line.held_minor
        self.overdue_minor = line.overdue_minor
        self.days_overdue = line.days_overdue
        self.overdue_position = line.overdue_position
        self.opened_position = line.opened_position
        self.steps = [n for s in line.steps for n in (s.available_minor, s.until)]
        return self

    def frozen(self) -> CreditLine:
        steps = self.steps
        return CreditLine(
            product=self.product,
            currency=self.currency,
            status=self.status,  # type: ignore[arg-type]  # (one of CreditStatus, interned)
            status_reason=self.status_reason,
            status_position=self.status_position,
            limit_minor=self.limit_minor,
            limit_position=self.limit_position,
            used_minor=self.used_minor,
            held_minor=self.held_minor,
            overdue_minor=self.overdue_minor,
            days_overdue=self.days_overdue,
            overdue_position=self.overdue_position,
            opened_position=self.opened_position,
            steps=tuple([Step(steps[i], steps[i + 1]) for i in range(0, len(steps), 2)]),
        )

    def step(self, pos: int) -> None:
        """The availability history after the event at ``pos`` changed limit, used or held
        (the reducer's ``_stepped``, in place)."""
        available = self.limit_minor - self.used_minor - self.held_minor
        steps = self.steps
        if steps:
            if steps[-2] == available:
                return
            steps[-1] = pos  # the event ends the last value
            while steps and steps[-2] <= available:
                del steps[-2:]
        steps += (available, 0)

    def cite(self, cited: int, pos: int) -> None:
        """The steps the event at ``cited`` ended are ended by the event at ``pos`` from now
        on (a settlement takes over from its authorization)."""
        steps = self.steps
        for i in range(1, len(steps), 2):
            if steps[i] == cited:
                steps[i] = pos


class Account:
    """An account's fold (:class:`projections.account.AccountFold`), mutable. Its lines are a
    list in the order they were opened, its holds ``None`` while it has none."""

    __slots__ = (
        "account_id",
        "credit",
        "holder_ref",
        "holds",
        "known",
        "opened_position",
        "position",
        "previous_score",
        "score",
        "score_position",
    )

    def __init__(self, account_id: str) -> None:
        """An account before any event (the reducer's ``new_fold``)."""
        self.account_id = intern(account_id)
        self.position = 0
        self.holder_ref: str | None = None
        self.opened_position: int | None = None
        self.score: int | None = None
        self.previous_score: int | None = None
        self.score_position: int | None = None
        self.credit: list[Line] = []
        self.known = False
        self.holds: dict[str, Hold] | None = None

    @classmethod
    def of(cls, fold: AccountFold) -> Account:
        """The working twin of a reducer's fold (one read back from its row, say)."""
        state = fold.state
        self = cls(state.account_id)
        self.position = state.position
        self.holder_ref = state.holder_ref
        self.opened_position = state.opened_position
        self.score = state.score
        self.previous_score = state.previous_score
        self.score_position = state.score_position
        self.credit = [Line.of(line) for line in state.credit.values()]
        self.known = fold.known
        self.holds = dict(fold.holds) if fold.holds else None
        return self

    @classmethod
    def new(cls, account_id: str) -> Account:
        """An account before any event."""
        return cls(account_id)

    def line(self, product: str) -> Line | None:
        """The credit line of ``product`` (None: none was opened)."""
        for line in self.credit:
            if line.product == product:
                return line
        return None

    def fold(self) -> AccountFold:
        """The reducer's fold of the same events."""
        return AccountFold(state=self.state(), known=self.known, holds=dict(self.holds or {}))

    def state(self) -> AccountState:
        """The reducer's :class:`AccountState` of the same events (a copy: it stays as it is
        while this account goes on)."""
        return AccountState(
            account_id=self.account_id,
            position=self.position,
            holder_ref=self.holder_ref,
            opened_position=self.opened_position,
            score=self.score,
            previous_score=self.previous_score,
            score_position=self.score_position,
            credit={line.product: line.frozen() for line in self.credit},
        )

    def hold(self, key: str, hold: Hold) -> None:
        if self.holds is None:
            self.holds = {}
        self.holds[key] = hold

    def release(self, keys: list[str], pos: int) -> None:
        """The reducer's ``_release``: the holds under ``keys`` go back to their lines."""
        holds = self.holds
        if holds is not None:
            for key in keys:
                hold = holds.pop(key)
                line = self.line(hold.product)
                if line is not None:
                    line.held_minor = max(0, line.held_minor - hold.amount_minor)
                    line.step(pos)
            if not holds:
                self.holds = None
        self.position = pos


# --- account stream ------------------------------------------------------------------------


def _opened(a: Account, e: slim.AccountOpened, pos: int) -> None:
    a.holder_ref = e.holder_ref
    a.opened_position = pos
    a.position = pos
    a.known = True


def _line_opened(a: Account, e: slim.CreditLineOpened, pos: int) -> None:
    line = a.line(e.product)
    if line is None:
        line = Line(e.product, e.currency, pos)
        a.credit.append(line)
    else:  # reopened: a new limit and currency; what is used or held stays
        line.currency = intern(e.currency)
        line.limit_position = pos
        line.opened_position = pos
    line.limit_minor = e.limit_minor
    line.step(pos)
    a.position = pos
    a.known = True


def _limit(a: Account, e: slim.CreditLimitChanged, pos: int) -> None:
    line = a.line(e.product)
    if line is not None:
        line.limit_position = pos
        line.limit_minor = e.new_limit_minor
        line.step(pos)
    a.position = pos
    a.known = True


def _score(a: Account, e: slim.CreditScoreChanged, pos: int) -> None:
    a.score = e.new_score
    a.previous_score = e.old_score
    a.score_position = pos
    a.position = pos
    a.known = True


def _status(a: Account, e: slim.CreditStatusChanged, pos: int) -> None:
    line = a.line(e.product)
    if line is not None:
        line.status = intern(e.new_status)
        line.status_reason = intern(e.reason)
        line.status_position = pos
    a.position = pos
    a.known = True


def _overdue(a: Account, e: slim.RepaymentOverdue, pos: int) -> None:
    line = a.line(e.product)
    if line is not None:
        if e.overdue_minor > 0:
            line.overdue_minor = e.overdue_minor
            line.days_overdue = e.days_overdue
            line.overdue_position = pos
        else:
            line.overdue_minor = 0
            line.days_overdue = 0
            line.overdue_position = None
    a.position = pos
    a.known = True


def _repaid(a: Account, e: slim.RepaymentMade, pos: int) -> None:
    line = a.line(e.product)
    if line is not None:
        overdue = max(0, line.overdue_minor - e.amount_minor)
        line.overdue_minor = overdue
        if not overdue:
            line.days_overdue = 0
            line.overdue_position = None
        line.used_minor = max(0, line.used_minor - e.amount_minor)
        line.step(pos)
    a.position = pos
    a.known = True


# --- payment streams (routed here by the caller) -------------------------------------------


def _authorized(a: Account, e: slim.PaymentAuthorized, pos: int) -> None:
    channel = e.channel
    line = a.line(channel)
    holds = a.holds
    key = f"{e.payment_id}#{e.attempt}" if holds or line is not None else ""
    if holds and key in holds:  # authorized again: release the first hold, then hold again
        a.release([key], pos)
    if line is not None and channel in CREDIT_PRODUCTS:
        a.hold(key, Hold(channel, e.amount_minor, pos))
        line.held_minor += e.amount_minor
        line.step(pos)
    a.position = pos


def _settled(a: Account, e: slim.PaymentSettled, pos: int) -> None:
    channel = e.channel
    key = ""
    hold = None
    if a.holds:
        key = f"{e.payment_id}#{e.attempt}"
        hold = a.holds.get(key)
        if hold is not None and hold.product != channel:  # rare: held on another product
            a.release([key], pos)
            hold = None
    line = a.line(channel)
    if line is None or channel not in CREDIT_PRODUCTS:
        if hold is not None:
            a.release([key], pos)
        a.position = pos
        return
    held = line.held_minor
    if hold is not None and a.holds is not None:
        del a.holds[key]
        if not a.holds:
            a.holds = None
        held = max(0, held - hold.amount_minor)
        line.cite(hold.position, pos)
    line.held_minor = held
    line.used_minor += e.amount_minor
    line.step(pos)
    a.position = pos


def _declined(a: Account, e: slim.PaymentDeclined, pos: int) -> None:
    if a.holds:
        key = f"{e.payment_id}#{e.attempt}"
        if key in a.holds:
            a.release([key], pos)
    a.position = pos


def _abandoned(a: Account, e: slim.PaymentAbandoned, pos: int) -> None:
    if a.holds:
        prefix = f"{e.payment_id}#"
        a.release([k for k in a.holds if k.startswith(prefix)], pos)
    a.position = pos


HANDLERS: Final[dict[type[slim.Slim], Callable[[Account, Any, int], None]]] = {
    slim.AccountOpened: _opened,
    slim.CreditLineOpened: _line_opened,
    slim.CreditLimitChanged: _limit,
    slim.CreditScoreChanged: _score,
    slim.CreditStatusChanged: _status,
    slim.RepaymentOverdue: _overdue,
    slim.RepaymentMade: _repaid,
    slim.PaymentAuthorized: _authorized,
    slim.PaymentSettled: _settled,
    slim.PaymentDeclined: _declined,
    slim.PaymentAbandoned: _abandoned,
}
"""The in-place twin of each of the account reducer's handlers, by slim event type."""
