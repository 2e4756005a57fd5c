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
- ``RepaymentMade`` lowers ``used_minor`` (oldest settlement first) and clears
  ``overdue_minor``, each up to its amount.

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

from .state import AccountState, CreditLine

__all__ = [
    "AccountFold",
    "Hold",
    "Usage",
    "apply",
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


class Usage(msgspec.Struct, frozen=True, gc=False):
    """A settlement not yet (fully) repaid: what is left of it, oldest first."""

    position: int
    remaining_minor: int


class AccountFold(msgspec.Struct, frozen=True, kw_only=True):
    """What the account reducer carries: the public :class:`AccountState` plus the open holds
    (by ``"<payment_id>#<attempt>"``) and the unrepaid settlements per product."""

    state: AccountState
    known: bool = False
    """Whether the account's own stream has an event yet (an unknown account has none)."""
    holds: dict[str, Hold] = msgspec.field(default_factory=dict)
    usage: dict[str, tuple[Usage, ...]] = msgspec.field(default_factory=dict)


def new_fold(account_id: str) -> AccountFold:
    """The fold of an account before any event."""
    return AccountFold(state=AccountState(account_id=account_id))


def _usage_positions(fold: AccountFold, product: str) -> tuple[int, ...]:
    held = [h.position for h in fold.holds.values() if h.product == product]
    used = [u.position for u in fold.usage.get(product, ()) if u.remaining_minor > 0]
    return tuple(sorted(held + used))


def _with_line(
    fold: AccountFold,
    line: CreditLine,
    position: int,
    *,
    holds: dict[str, Hold] | None = None,
    usage: dict[str, tuple[Usage, ...]] | None = None,
    known: bool | None = None,
) -> AccountFold:
    fold = replace(
        fold,
        holds=fold.holds if holds is None else holds,
        usage=fold.usage if usage is None else usage,
        known=fold.known if known is None else known,
    )
    if holds is not None or usage is not None:
        line = replace(line, usage_positions=_usage_positions(fold, line.product))
    state = replace(fold.state, credit={**fold.state.credit, line.product: line}, position=position)
    return replace(fold, state=state)


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
            limit_minor=e.limit_minor,
            limit_position=pos,
            opened_position=pos,
        )
    else:  # reopened: a new limit and currency; what is used or held stays
        line = replace(
            old,
            currency=e.currency,
            limit_minor=e.limit_minor,
            limit_position=pos,
            opened_position=pos,
        )
    return _with_line(fold, line, pos, known=True)


def _limit(fold: AccountFold, e: CreditLimitChanged, pos: int) -> AccountFold:
    line = fold.state.credit.get(e.product)
    if line is None:
        return _touch(fold, pos, known=True)
    line = replace(line, limit_minor=e.new_limit_minor, limit_position=pos)
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
    line = fold.state.credit.get(e.product)
    if line is None:
        return _touch(fold, pos, known=True)
    applied = min(e.amount_minor, line.used_minor)
    left = applied
    queue: list[Usage] = []
    for usage in fold.usage.get(e.product, ()):
        take = min(left, usage.remaining_minor)
        left -= take
        if usage.remaining_minor - take > 0:
            queue.append(Usage(usage.position, usage.remaining_minor - take))
    overdue = max(0, line.overdue_minor - e.amount_minor)
    line = replace(
        line,
        used_minor=line.used_minor - applied,
        overdue_minor=overdue,
        days_overdue=line.days_overdue if overdue else 0,
        overdue_position=line.overdue_position if overdue else None,
    )
    return _with_line(fold, line, pos, usage={**fold.usage, e.product: tuple(queue)}, known=True)


# --- payment streams (routed here by the caller) -------------------------------------------


def _release(fold: AccountFold, keys: list[str], pos: int) -> AccountFold:
    if not keys:
        return _touch(fold, pos)
    holds = dict(fold.holds)
    products: dict[str, int] = {}
    for key in keys:
        hold = holds.pop(key)
        products[hold.product] = products.get(hold.product, 0) + hold.amount_minor
    fold = replace(fold, holds=holds)
    for product, amount in sorted(products.items()):
        line = fold.state.credit.get(product)
        if line is not None:
            line = replace(line, held_minor=max(0, line.held_minor - amount))
            fold = _with_line(fold, line, pos, holds=holds)
    return _touch(fold, pos)


def _positions_of(
    product: str, holds: dict[str, Hold], usage: dict[str, tuple[Usage, ...]]
) -> tuple[int, ...]:
    """:func:`_usage_positions` of a fold with these holds and usage."""
    positions = [h.position for h in holds.values() if h.product == product]
    positions.extend(u.position for u in usage.get(product, ()) if u.remaining_minor > 0)
    positions.sort()
    return tuple(positions)


def _authorized(fold: AccountFold, e: PaymentAuthorized, pos: int) -> AccountFold:
    key = f"{e.payment_id}#{e.attempt}"
    if key in fold.holds:  # authorized again: release the first hold, then hold again
        fold = _release(fold, [key], pos)
    channel = e.channel
    state = fold.state
    line = state.credit.get(channel)
    if line is None or channel not in CREDIT_PRODUCTS:
        return _touch(fold, pos)
    # what _with_line(fold, line + hold, pos, holds=...) does, in one step
    holds = {**fold.holds, key: Hold(channel, e.amount_minor, pos)}
    line = replace(
        line,
        held_minor=line.held_minor + e.amount_minor,
        usage_positions=_positions_of(channel, holds, fold.usage),
    )
    state = replace(state, credit={**state.credit, channel: line}, position=pos)
    return replace(fold, state=state, holds=holds)


def _settled(fold: AccountFold, e: PaymentSettled, pos: int) -> AccountFold:
    key = f"{e.payment_id}#{e.attempt}"
    channel = e.channel
    hold = fold.holds.get(key)
    if hold is not None and hold.product != channel:  # rare: held on another product
        fold = _release(fold, [key], pos)
        hold = None
    state = fold.state
    line = state.credit.get(channel)
    if line is None or channel not in CREDIT_PRODUCTS:
        return _touch(fold if hold is None else _release(fold, [key], pos), pos)
    # what _release(fold, [key], pos) then _with_line(fold, line + used, pos, usage=...) do,
    # in one step: the hold (if any) is on this line
    holds = fold.holds
    held = line.held_minor
    if hold is not None:
        holds = dict(holds)
        del holds[key]
        held = max(0, held - hold.amount_minor)
    usage = {**fold.usage, channel: (*fold.usage.get(channel, ()), Usage(pos, e.amount_minor))}
    line = replace(
        line,
        held_minor=held,
        used_minor=line.used_minor + e.amount_minor,
        usage_positions=_positions_of(channel, holds, usage),
    )
    state = replace(state, credit={**state.credit, channel: line}, position=pos)
    return replace(fold, state=state, holds=holds, usage=usage)


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
    event = record.event
    handler = _HANDLERS.get(type(event))
    if handler is not None:
        return handler(fold, event, record.position)
    if isinstance(event, UnknownEvent):
        raise UnknownEventTypeError(event.type_name, record.position)
    return fold
