"""An account's working state, changed in place: the same facts as the account reducer
(:mod:`projections.account`, the specification) without a copy per event.

Each handler here is the in-place twin of the reducer's handler of the same name; the tests
(``tests/test_working.py``) fold random logs both ways and compare the persisted rows byte for
byte. :meth:`Account.fold` gives the reducer's :class:`~projections.account.AccountFold`, field
for field and in the same dictionary order, so its encoding is the same bytes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from .. import slim
from ..account import CREDIT_PRODUCTS, AccountFold, Hold
from ..state import BEFORE_OPENING, AccountState, CreditLine, Step
from .payment import Names

__all__ = ["HANDLERS", "Account", "Line"]


class Line:
    """A credit line (:class:`projections.state.CreditLine`), mutable; ``steps`` a list."""

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

    def __init__(self, line: CreditLine, names: Names) -> None:
        self.product = names.setdefault(line.product, line.product)
        self.currency = names.setdefault(line.currency, line.currency)
        self.status = line.status
        self.status_reason = names.setdefault(line.status_reason, line.status_reason)
        self.status_position = line.status_position
        self.limit_minor = line.limit_minor
        self.limit_position = line.limit_position
        self.used_minor = line.used_minor
        self.held_minor = line.held_minor
        self.overdue_minor = line.overdue_minor
        self.days_overdue = line.days_overdue
        self.overdue_position = line.overdue_position
        self.opened_position = line.opened_position
        self.steps: list[tuple[int, int]] = [(s.available_minor, s.until) for s in line.steps]
        """The availability history as ``(available_minor, until)`` pairs."""

    def frozen(self) -> CreditLine:
        return CreditLine(
            product=self.product,
            currency=self.currency,
            status=self.status,
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
            steps=tuple([Step(available, until) for available, until in self.steps]),
        )

    def step(self, pos: int) -> None:
        """The availability history after the event at ``pos`` changed limit, used or held
        (the reducer's ``_stepped``, in place)."""
        available = self.limit_minor - self.used_minor - self.held_minor
        steps = self.steps
        if steps:
            last = steps[-1][0]
            if last == available:
                return
            steps[-1] = (last, pos)
            while steps and steps[-1][0] <= available:
                steps.pop()
        steps.append((available, 0))


class Account:
    """An account's fold (:class:`projections.account.AccountFold`), mutable."""

    __slots__ = (
        "account_id",
        "credit",
        "holder_ref",
        "holds",
        "known",
        "names",
        "opened_position",
        "position",
        "previous_score",
        "score",
        "score_position",
    )

    def __init__(self, fold: AccountFold, names: Names) -> None:
        """``names``: one copy of each product, currency and reason the lines share."""
        self.names = names
        state = fold.state
        self.account_id = state.account_id
        self.position = state.position
        self.holder_ref = state.holder_ref
        self.opened_position = state.opened_position
        self.score = state.score
        self.previous_score = state.previous_score
        self.score_position = state.score_position
        self.credit: dict[str, Line] = {p: Line(line, names) for p, line in state.credit.items()}
        self.known = fold.known
        self.holds: dict[str, Hold] = dict(fold.holds)

    @classmethod
    def new(cls, account_id: str, names: Names) -> Account:
        """An account before any event."""
        return cls(AccountFold(state=AccountState(account_id=account_id)), names)

    def fold(self) -> AccountFold:
        """The reducer's fold of the same events."""
        return AccountFold(state=self.state(), known=self.known, holds=dict(self.holds))

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
            credit={p: line.frozen() for p, line in self.credit.items()},
        )

    def release(self, keys: list[str], pos: int) -> None:
        """The reducer's ``_release``: the holds under ``keys`` go back to their lines."""
        holds, credit = self.holds, self.credit
        for key in keys:
            hold = holds.pop(key)
            line = credit.get(hold.product)
            if line is not None:
                line.held_minor = max(0, line.held_minor - hold.amount_minor)
                line.step(pos)
        self.position = pos


# --- account stream ------------------------------------------------------------------------


def _opened(a: Account, e: slim.AccountOpened, pos: int) -> None:
    a.holder_ref = e.holder_ref
    a.opened_position = pos
    a.position = pos
    a.known = True


def _line_opened(a: Account, e: slim.CreditLineOpened, pos: int) -> None:
    line = a.credit.get(e.product)
    if line is None:
        line = Line(
            CreditLine(
                product=e.product,
                currency=e.currency,
                limit_minor=0,
                limit_position=pos,
                opened_position=pos,
                steps=(Step(BEFORE_OPENING, 0),),
            ),
            a.names,
        )
        a.credit[e.product] = line
    else:  # reopened: a new limit and currency; what is used or held stays
        line.currency = a.names.setdefault(e.currency, e.currency)
        line.limit_position = pos
        line.opened_position = pos
    line.limit_minor = e.limit_minor
    line.step(pos)
    a.position = pos
    a.known = True


def _limit(a: Account, e: slim.CreditLimitChanged, pos: int) -> None:
    line = a.credit.get(e.product)
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
    line = a.credit.get(e.product)
    if line is not None:
        line.status = e.new_status
        line.status_reason = a.names.setdefault(e.reason, e.reason)
        line.status_position = pos
    a.position = pos
    a.known = True


def _overdue(a: Account, e: slim.RepaymentOverdue, pos: int) -> None:
    line = a.credit.get(e.product)
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
    line = a.credit.get(e.product)
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
    holds = a.holds
    key = f"{e.payment_id}#{e.attempt}" if holds or e.channel in a.credit else ""
    if holds and key in holds:  # authorized again: release the first hold, then hold again
        a.release([key], pos)
    channel = e.channel
    line = a.credit.get(channel)
    if line is not None and channel in CREDIT_PRODUCTS:
        holds[key] = Hold(channel, e.amount_minor, pos)
        line.held_minor += e.amount_minor
        line.step(pos)
    a.position = pos


def _settled(a: Account, e: slim.PaymentSettled, pos: int) -> None:
    channel = e.channel
    holds = a.holds
    key = ""
    hold = None
    if holds:
        key = f"{e.payment_id}#{e.attempt}"
        hold = holds.get(key)
        if hold is not None and hold.product != channel:  # rare: held on another product
            a.release([key], pos)
            hold = None
    line = a.credit.get(channel)
    if line is None or channel not in CREDIT_PRODUCTS:
        if hold is not None:
            a.release([key], pos)
        a.position = pos
        return
    held = line.held_minor
    if hold is not None:
        del holds[key]
        held = max(0, held - hold.amount_minor)
        cited = hold.position
        steps = line.steps
        for i, (available, until) in enumerate(steps):
            if until == cited:
                steps[i] = (available, pos)
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
