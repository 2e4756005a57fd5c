"""Why a payment attempt failed: the judgement of CONTRACT section 7, in one place.

The floor between the read models and everything that judges with them: the replay explains
failures with it, the router checks candidate channels with it, a what-if asks it of another
channel. One table of blocking conditions (:mod:`causes.conditions`), one table of decline
codes as clues (:mod:`causes.codes`), and the moment an attempt is judged at
(:mod:`causes.moment`)::

    from causes import Moment, World, judge

    root, *contributing = judge(moment)      # Cause(category, summary, evidence, remedy)
"""

from __future__ import annotations

from .cause import CATEGORIES as CATEGORIES
from .cause import Category as Category
from .cause import Cause as Cause
from .codes import DECLINE_CODES as DECLINE_CODES
from .codes import DeclineAction as DeclineAction
from .codes import DeclineCodeRule as DeclineCodeRule
from .conditions import CONDITIONS as CONDITIONS
from .conditions import Check as Check
from .conditions import CheckStatus as CheckStatus
from .conditions import Condition as Condition
from .conditions import Scope as Scope
from .conditions import blocking as blocking
from .conditions import checks as checks
from .conditions import judge as judge
from .moment import Moment as Moment
from .moment import World as World
from .moment import moment_of as moment_of
from .moment import moment_position as moment_position

__all__ = [
    "CATEGORIES",
    "CONDITIONS",
    "DECLINE_CODES",
    "Category",
    "Cause",
    "Check",
    "CheckStatus",
    "Condition",
    "DeclineAction",
    "DeclineCodeRule",
    "Moment",
    "Scope",
    "World",
    "blocking",
    "checks",
    "judge",
    "moment_of",
    "moment_position",
]
