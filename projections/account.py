"""The account projection: credit lines per product (status, limit, used, held, overdue) and the
score, each with the position of the event that set it.

:func:`apply` is a pure function of ``(AccountFold, Record) -> AccountFold``. It takes the
events of the account's own stream *and* the events of the account's payments: the caller routes
payment events here (they carry only ``payment_id``; :mod:`projections.fold` keeps the
``payment_id -> account`` index, and :func:`projections.account_at` reads only the account's
payment streams). A ``huabei``/``jiebei`` payment draws on the credit line of the same product:

- ``PaymentAuthorized`` holds its amount (``held_minor``);
- ``PaymentSettled`` releases the attempt's hold and uses its amount (``used_minor``);
- ``PaymentDeclined`` after an authorization, or ``PaymentAbandoned``, releases the hold;
- ``RepaymentMade`` lowers ``used_minor`` (never below zero) and clears ``overdue_minor``,
  each up to its amount (CONTRACT rule 7.5).

Each line also keeps its availability history (:attr:`CreditLine.steps`), so that a shortfall
can cite the event that took available credit below an amount.

The projection records facts: an authorization on a line that is not ``active`` still holds
its amount (the replay engine, not the projection, judges whether it should have happened).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

import msgspec
from msgspec.structs import replace

from ledger.errors import UnknownEventTypeError
from ledger.events import (
    AccountOpened,
    CreditLimitChanged,
    CreditLineOpened,
    CreditScoreChanged,
    CreditStatusChanged,
    Event,
    PaymentAbandoned,
    PaymentAuthorized,
    PaymentDeclined,
    PaymentSettled,
    RepaymentMade,
    RepaymentOverdue,
    UnknownEvent,
)
from ledger.store import Record

from .state import BEFORE_OPENING, AccountState, CreditLine, Step

__all__ = [
    "ACCOUNT_EVENT_TYPES",
    "CREDIT_PAYMENT_EVENTS",
    "CREDIT_PRODUCTS",
    "AccountFold",
    "Hold",
    "apply",
    "apply_event",
    "new_fold",
]

CREDIT_PRODUCTS: Final = frozenset({"huabei", "jiebei"})
"""The channels that draw on a credit line of the same product."""

ACCOUNT_EVENT_TYPES: Final = frozenset(
    {
        "AccountOpened",
        "CreditLineOpened",
        "CreditLimitChanged",
        "CreditScoreChanged",
        "CreditStatusChanged",
        "RepaymentOverdue",
        "RepaymentMade",
    }
)
"""The event types of the ``account-<id>`` stream."""

CREDIT_PAYMENT_EVENTS: Final = frozenset(
    {"PaymentAuthorized", "PaymentSettled", "PaymentDeclined", "PaymentAbandoned"}
)
"""The payment events that can change an account (its holds and used credit)."""


class Hold(msgspec.Struct, frozen=True, gc=False):
    """An authorized, not yet settled or released amount of one payment attempt."""

    product: str
    amount_minor: int
    position: int


class AccountFold(msgspec.Struct, frozen=True, kw_only=True):
    """What the account reducer carries: the public :class:`AccountState` plus the open holds
    (by ``"<payment_id>#<attempt>"``)."""

    state: AccountState
    known: bool = False
    """Whether the account's own stream has an event yet (an unknown account has none)."""
    holds: dict[str, Hold] = msgspec.field(default_factory=dict)


def new_fold(account_id: str) -> AccountFold:
    """The fold of an account before any event."""
    return AccountFold(state=AccountState(account_id=account_id))


# --- availability --------------------------------------------------------------------------


def _stepped(steps: tuple[Step, ...], available: int, pos: int) -> tuple[Step, ...]:
    """``steps`` after the event at ``pos`` moved availability to ``available``.

    The last step is the current value: the event ends it (``until``), then every step not
    higher than the new value is dropped (it can never again be the last value high enough
    for an amount: the new one is later and at least as high)."""
    if steps and steps[-1].available_minor == available:
        return steps
    out = list(steps)
    if out:
        out[-1] = Step(out[-1].available_minor, pos)
    while out and out[-1].available_minor <= available:
        out.pop()
    out.append(Step(available, 0))
    return tuple(out)


def _line(line: CreditLine, pos: int, **changes: int) -> CreditLine:
    """``line`` with ``changes`` (limit, used, held) made by the event at ``pos``, its
    availability history extended."""
    line = replace(line, **changes)
    available = line.limit_minor - line.used_minor - line.held_minor
    return replace(line, steps=_stepped(line.steps, available, pos))


def _with_line(
    fold: AccountFold,
    line: CreditLine,
    pos: int,
    *,
    holds: dict[str, Hold] | None = None,
    known: bool | None = None,
) -> AccountFold:
    state = replace(fold.state, credit={**fold.state.credit, line.product: line}, position=pos)
    return replace(
        fold,
        state=state,
        holds=fold.holds if holds is None else holds,
        known=fold.known if known is None else known,
    )


def _touch(fold: AccountFold, position: int, *, known: bool = False) -> AccountFold:
    state = replace(fold.state, position=position)
    return replace(fold, state=state, known=fold.known or known)


# --- account stream ------------------------------------------------------------------------


def _opened(fold: AccountFold, e: AccountOpened, pos: int) -> AccountFold:
    state = replace(fold.state, holder_ref=e.holder_ref, opened_position=pos, position=pos)
    return replace(fold, state=state, known=True)


def _line_opened(fold: AccountFold, e: CreditLineOpened, pos: int) -> AccountFold:
    old = fold.state.credit.get(e.product)
    if old is None:
        line = CreditLine(
            product=e.product,
            currency=e.currency,
            limit_minor=0,
            limit_position=pos,
            opened_position=pos,
            steps=(Step(BEFORE_OPENING, 0),),
        )
    else:  # reopened: a new limit and currency; what is used or held stays
        line = replace(old, currency=e.currency, limit_position=pos, opened_position=pos)
    return _with_line(fold, _line(line, pos, limit_minor=e.limit_minor), pos, known=True)


def _limit(fold: AccountFold, e: CreditLimitChanged, pos: int) -> AccountFold:
    line = fold.state.credit.get(e.product)
    if line is None:
        return _touch(fold, pos, known=True)
    line = _line(replace(line, limit_position=pos), pos, limit_minor=e.new_limit_minor)
    return _with_line(fold, line, pos, known=True)


def _score(fold: AccountFold, e: CreditScoreChanged, pos: int) -> AccountFold:
    state = replace(
        fold.state,
        score=e.new_score,
        previous_score=e.old_score,
        score_position=pos,
        position=pos,
    )
    return replace(fold, state=state, known=True)


def _status(fold: AccountFold, e: CreditStatusChanged, pos: int) -> AccountFold:
    line = fold.state.credit.get(e.product)
    if line is None:
        return _touch(fold, pos, known=True)
    line = replace(line, status=e.new_status, status_reason=e.reason, status_position=pos)
    return _with_line(fold, line, pos, known=True)


def _overdue(fold: AccountFold, e: RepaymentOverdue, pos: int) -> AccountFold:
    line = fold.state.credit.get(e.product)
    if line is None:
        return _touch(fold, pos, known=True)
    if e.overdue_minor > 0:
        line = replace(
            line,
            overdue_minor=e.overdue_minor,
            days_overdue=e.days_overdue,
            overdue_position=pos,
        )
    else:
        line = replace(line, overdue_minor=0, days_overdue=0, overdue_position=None)
    return _with_line(fold, line, pos, known=True)


def _repaid(fold: AccountFold, e: RepaymentMade, pos: int) -> AccountFold:
    """A repayment lowers used (never below zero) and clears overdue, each up to its amount."""
    line = fold.state.credit.get(e.product)
    if line is None:
        return _touch(fold, pos, known=True)
    overdue = max(0, line.overdue_minor - e.amount_minor)
    line = replace(
        line,
        overdue_minor=overdue,
        days_overdue=line.days_overdue if overdue else 0,
        overdue_position=line.overdue_position if overdue else None,
    )
    line = _line(line, pos, used_minor=max(0, line.used_minor - e.amount_minor))
    return _with_line(fold, line, pos, known=True)


# --- payment streams (routed here by the caller) -------------------------------------------


def _release(fold: AccountFold, keys: list[str], pos: int) -> AccountFold:
    """Release the holds under ``keys`` (a decline or an abandonment)."""
    if not keys:
        return _touch(fold, pos)
    holds = dict(fold.holds)
    for key in keys:
        hold = holds.pop(key)
        line = fold.state.credit.get(hold.product)
        if line is not None:
            line = _line(line, pos, held_minor=max(0, line.held_minor - hold.amount_minor))
            fold = _with_line(fold, line, pos)
    return _touch(replace(fold, holds=holds), pos)


def _authorized(fold: AccountFold, e: PaymentAuthorized, pos: int) -> AccountFold:
    """Rule 7.5: an authorization holds its amount on the line of its channel's product."""
    key = f"{e.payment_id}#{e.attempt}"
    if key in fold.holds:  # authorized again: release the first hold, then hold again
        fold = _release(fold, [key], pos)
    channel = e.channel
    line = fold.state.credit.get(channel)
    if line is None or channel not in CREDIT_PRODUCTS:
        return _touch(fold, pos)
    holds = {**fold.holds, key: Hold(channel, e.amount_minor, pos)}
    line = _line(line, pos, held_minor=line.held_minor + e.amount_minor)
    return _with_line(fold, line, pos, holds=holds)


def _settled(fold: AccountFold, e: PaymentSettled, pos: int) -> AccountFold:
    """The attempt's hold becomes used credit; where the authorization is what took the line's
    availability below some amount, the settlement is cited instead from now on."""
    key = f"{e.payment_id}#{e.attempt}"
    channel = e.channel
    hold = fold.holds.get(key)
    if hold is not None and hold.product != channel:  # rare: held on another product
        fold = _release(fold, [key], pos)
        hold = None
    line = fold.state.credit.get(channel)
    if line is None or channel not in CREDIT_PRODUCTS:
        return _touch(fold if hold is None else _release(fold, [key], pos), pos)
    holds = fold.holds
    held = line.held_minor
    if hold is not None:
        holds = dict(holds)
        del holds[key]
        held = max(0, held - hold.amount_minor)
        cited = hold.position
        line = replace(
            line,
            steps=tuple(
                Step(s.available_minor, pos) if s.until == cited else s for s in line.steps
            ),
        )
    line = _line(line, pos, held_minor=held, used_minor=line.used_minor + e.amount_minor)
    return _with_line(fold, line, pos, holds=holds)


def _declined(fold: AccountFold, e: PaymentDeclined, pos: int) -> AccountFold:
    key = f"{e.payment_id}#{e.attempt}"
    return _release(fold, [key] if key in fold.holds else [], pos)


def _abandoned(fold: AccountFold, e: PaymentAbandoned, pos: int) -> AccountFold:
    prefix = f"{e.payment_id}#"
    return _release(fold, [k for k in fold.holds if k.startswith(prefix)], pos)


_Handler = Callable[[AccountFold, "Event", int], AccountFold]
_HANDLERS: Final[dict[type[Event], _Handler]] = {
    AccountOpened: _opened,  # type: ignore[dict-item]
    CreditLineOpened: _line_opened,  # type: ignore[dict-item]
    CreditLimitChanged: _limit,  # type: ignore[dict-item]
    CreditScoreChanged: _score,  # type: ignore[dict-item]
    CreditStatusChanged: _status,  # type: ignore[dict-item]
    RepaymentOverdue: _overdue,  # type: ignore[dict-item]
    RepaymentMade: _repaid,  # type: ignore[dict-item]
    PaymentAuthorized: _authorized,  # type: ignore[dict-item]
    PaymentSettled: _settled,  # type: ignore[dict-item]
    PaymentDeclined: _declined,  # type: ignore[dict-item]
    PaymentAbandoned: _abandoned,  # type: ignore[dict-item]
}


def apply(fold: AccountFold, record: Record) -> AccountFold:
    """The account after ``record``: an event of its stream or of one of its payments.

    Other payment events leave it as it is (``position`` included: it is the last event that
    concerned the account). Raises :class:`UnknownEventTypeError` for an event of an unknown type.
    """
    return apply_event(fold, record.event, record.position)


def apply_event(fold: AccountFold, event: Event, position: int) -> AccountFold:
    """:func:`apply` of an event at ``position``."""
    handler = _HANDLERS.get(type(event))
    if handler is not None:
        return handler(fold, event, position)
    if isinstance(event, UnknownEvent):
        raise UnknownEventTypeError(event.type_name, position)
    return fold
