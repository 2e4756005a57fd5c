"""payledger's read models: account, channel, policy, payment and double-entry balances, each a
pure function of (state, record) -> state, so that live updates, rebuilds and time travel run
the same code and the same events always give the same state.

::

    from projections import account_at, channel_at, payment_at, policy_at

    state = await account_at(store, "A7", position=9)          # or as_of=datetime(...)
    state.credit["huabei"].available_minor

    async with Projector.open(store) as projector:             # persisted, in the store file
        await projector.catch_up()

    async for record in subscribe(store, from_position=1):     # every event, then live ones
        ...
"""

from __future__ import annotations

from .fold import World as World
from .fold import fold as fold
from .projector import Progress as Progress
from .projector import Projector as Projector
from .projector import RebuildResult as RebuildResult
from .projector import open_projections as open_projections
from .state import AccountState as AccountState
from .state import AttemptState as AttemptState
from .state import ChannelState as ChannelState
from .state import CreditLine as CreditLine
from .state import FailoverState as FailoverState
from .state import PaymentState as PaymentState
from .state import PolicyRule as PolicyRule
from .state import PolicyState as PolicyState
from .state import VerificationResult as VerificationResult
from .subscription import subscribe as subscribe
from .travel import account_at as account_at
from .travel import channel_at as channel_at
from .travel import payment_at as payment_at
from .travel import policy_at as policy_at
from .travel import policy_for as policy_for

__all__ = [
    "AccountState",
    "AttemptState",
    "ChannelState",
    "CreditLine",
    "FailoverState",
    "PaymentState",
    "PolicyRule",
    "PolicyState",
    "Progress",
    "Projector",
    "RebuildResult",
    "VerificationResult",
    "World",
    "account_at",
    "channel_at",
    "fold",
    "open_projections",
    "payment_at",
    "policy_at",
    "policy_for",
    "subscribe",
]
