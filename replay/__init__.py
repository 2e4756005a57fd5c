"""payledger's replay side: time travel, root-cause analysis and the ``payledger`` CLI.

::

    from replay import explain, explain_failed, whatif

    explanation = await explain(store, "P1")        # CONTRACT section 5
    explanation.root_cause.category                 # "credit", "system", ...
    async for exp in explain_failed(store):         # every failed payment, one pass
        ...

The names load on first use (``import replay`` alone loads nothing of the engine), so that
``python -m replay`` can take Ctrl-C from its first instant (:mod:`payledger_entry`).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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
    from .what_if import whatif as whatif

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

_WHERE = {
    "explain_failed": "batch",
    "explain_payments": "batch",
    "explain": "engine",
    "AccountView": "explanation",
    "AttemptCause": "explanation",
    "AttemptExplanation": "explanation",
    "Category": "explanation",
    "Cause": "explanation",
    "ChannelView": "explanation",
    "Check": "explanation",
    "CreditView": "explanation",
    "Explanation": "explanation",
    "PolicyView": "explanation",
    "RootCause": "explanation",
    "StateAtFailure": "explanation",
    "WhatIf": "explanation",
    "whatif": "what_if",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'replay' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value
