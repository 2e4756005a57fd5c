"""payledger's replay side: time travel, root-cause analysis and the ``payledger`` CLI.

::

    from replay import explain, explain_failed, whatif

    explanation = await explain(store, "P1")        # CONTRACT section 5
    explanation.root_cause.category                 # "credit", "system", ...
    async for exp in explain_failed(store):         # every failed payment, one pass
        ...
"""

from __future__ import annotations

from .batch import explain_failed as explain_failed
from .batch import explain_payments as explain_payments
from .engine import explain as explain
from .explanation import AccountView as AccountView
from .explanation import AttemptCause as AttemptCause
from .explanation import AttemptExplanation as AttemptExplanation
from .explanation import Category as Category
from .explanation import Cause as Cause
from .explanation import ChannelView as ChannelView
from .explanation import Check as Check
from .explanation import CreditView as CreditView
from .explanation import Explanation as Explanation
from .explanation import PolicyView as PolicyView
from .explanation import RootCause as RootCause
from .explanation import StateAtFailure as StateAtFailure
from .explanation import WhatIf as WhatIf
from .whatif import whatif as whatif

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
