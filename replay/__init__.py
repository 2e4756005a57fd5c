"""payledger's replay side: time travel, root-cause analysis and the ``payledger`` CLI.

::

    from replay import explain, explain_failed, whatif

    explanation = await explain(store, "P1")        # CONTRACT section 5
    explanation.root_cause.category                 # "credit", "system", ...
    async for exp in explain_failed(store):         # every failed payment, one pass
        ...
"""

from __future__ import annotations

from .engine import AccountView as AccountView
from .engine import AttemptCause as AttemptCause
from .engine import AttemptExplanation as AttemptExplanation
from .engine import Category as Category
from .engine import Cause as Cause
from .engine import ChannelView as ChannelView
from .engine import Check as Check
from .engine import CreditView as CreditView
from .engine import Explanation as Explanation
from .engine import PolicyView as PolicyView
from .engine import RootCause as RootCause
from .engine import StateAtFailure as StateAtFailure
from .engine import WhatIf as WhatIf
from .engine import explain as explain
from .engine import explain_failed as explain_failed
from .engine import explain_payments as explain_payments
from .engine import whatif as whatif

__all__ = [
    "AccountView",
    "AttemptCause",
    "AttemptExplanation",
    "Category",
    "Cause",
    "ChannelView",
    "Check",
    "CreditView",
    "Explanation",
    "PolicyView",
    "RootCause",
    "StateAtFailure",
    "WhatIf",
    "explain",
    "explain_failed",
    "explain_payments",
    "whatif",
]
