"""``payledger report``: one self-contained HTML file about a payment or a period.

:mod:`~replay.report.data` gathers the numbers with the code the ``--json`` commands run;
:mod:`~replay.report.payment` and :mod:`~replay.report.fleet` lay them out as a page
(:mod:`~replay.report.page`: the document and its pieces; :mod:`~replay.report.svg`: the
drawings); :mod:`~replay.report.output` writes the file. ::

    report = await payment_report(store, "P1")          # or: await fleet_report(store)
    html = render_payment(report)                        # or: render_fleet(report)
"""

from __future__ import annotations

from .data import FleetReport as FleetReport
from .data import PaymentReport as PaymentReport
from .data import fleet_report as fleet_report
from .data import payment_report as payment_report
from .fleet import render_fleet as render_fleet
from .output import write_output as write_output
from .payment import render_payment as render_payment

__all__ = [
    "FleetReport",
    "PaymentReport",
    "fleet_report",
    "payment_report",
    "render_fleet",
    "render_payment",
    "write_output",
]
