"""payledger's payment-service side: what acts on the read models.

A service embeds a :class:`Router` that picks a channel for each payment by the same blocking
conditions the replay explains failures with, fails over on declines, watches channel health and
records every step in the ledger; :func:`early_warnings` streams credit and channel warnings;
:func:`simulate` drives a router over a simulated population (the load generator and the
project's end-to-end test)::

    router = Router(store, MyProcessor(), RoutingConfig(max_attempts=3))
    outcome = await router.pay(PaymentRequest(payment_id="P1", ...))
"""

from __future__ import annotations

from .config import DEFAULT_ACTIONS as DEFAULT_ACTIONS
from .config import DeclineAction as DeclineAction
from .config import HealthConfig as HealthConfig
from .config import RoutingConfig as RoutingConfig
from .health import ChannelHealth as ChannelHealth
from .processor import PaymentOutcome as PaymentOutcome
from .processor import PaymentRequest as PaymentRequest
from .processor import Processor as Processor
from .processor import ProcessorResult as ProcessorResult
from .processor import Verification as Verification
from .router import Router as Router
from .simulator import SimulationConfig as SimulationConfig
from .simulator import SimulationReport as SimulationReport
from .simulator import Truth as Truth
from .simulator import simulate as simulate
from .warnings import Warning as EarlyWarning
from .warnings import warnings as early_warnings

__all__ = [
    "DEFAULT_ACTIONS",
    "ChannelHealth",
    "DeclineAction",
    "EarlyWarning",
    "HealthConfig",
    "PaymentOutcome",
    "PaymentRequest",
    "Processor",
    "ProcessorResult",
    "Router",
    "RoutingConfig",
    "SimulationConfig",
    "SimulationReport",
    "Truth",
    "early_warnings",
    "simulate",
]
