"""What the report tests share: the ``payledger`` command run in-process with its output
captured, and the stores they report on (the demo's ``multiple_blockers`` incident, a simulated
fleet, and a log full of hostile text)."""

from __future__ import annotations

import io
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import anyio
from logs import load

from ledger import events as ev
from ledger import open_store
from replay import cases
from replay.cli import main

__all__ = [
    "DEMO_PAYMENT",
    "HOSTILE",
    "HOSTILE_PAYMENT",
    "cli",
    "demo_store",
    "fleet_store",
    "hostile_store",
    "json_lines",
]

DEMO_PAYMENT: Final = "P-20260308-0019"
"""The payment of ``multiple_blockers``: a policy, an outage and a frozen line at once."""
_T0: Final = datetime(2026, 3, 8, 9, 0, tzinfo=UTC)
HOSTILE: Final = {
    "merchant": '<script>document.title="pwned"</script>"\'&amp;',
    "account": 'A"><img src=x onerror="document.title=1">',
    "payment": "P<b>1</b>&lt;'\"",
    "outage": "<style>body{display:none}</style></svg>",
    "freeze": ('</td></tr></table><iframe src="https://example.invalid/"></iframe>' * 70)[:4096],
    "long": ("<script>alert(1)</script> 'quoted' \"double\" & " * 100)[:4096],
}
"""Values written into the hostile log: markup, quotes and the longest texts the log takes
(a timeline line built of several reaches past 10 kB)."""
HOSTILE_PAYMENT: Final = HOSTILE["payment"]


def cli(*argv: str) -> tuple[int, bytes, str]:
    """Run ``payledger`` in-process; returns (exit code, stdout bytes, stderr text)."""
    out, err = io.BytesIO(), io.StringIO()
    wrapper = io.TextIOWrapper(out, encoding="utf-8", write_through=True)
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = wrapper, err
    try:
        try:
            code = main(list(argv))
        except SystemExit as e:  # argparse usage errors
            code = int(e.code or 0)
    finally:
        sys.stdout, sys.stderr = saved
        wrapper.flush()
        data = out.getvalue()
        wrapper.detach()
    return code, data, err.getvalue()


def json_lines(data: bytes) -> list[Any]:
    return [json.loads(line) for line in data.splitlines() if line.strip()]


def demo_store(folder: Path) -> str:
    """The demo's ``multiple_blockers`` incident in a store of its own."""
    db = str(folder / "demo.db")
    code, _, err = cli("--db", db, "import", str(cases.incident_path("multiple_blockers")))
    assert code == 0, err
    return db


def fleet_store(folder: Path, payments: int, seed: int = 3) -> str:
    """A simulated fleet (``payledger simulate``)."""
    db = str(folder / "fleet.db")
    code, _, err = cli("--db", db, "simulate", "--payments", str(payments), "--seed", str(seed))
    assert code == 0, err
    return db


def hostile_store(folder: Path) -> str:
    """A failed payment whose ids, reasons and messages are the :data:`HOSTILE` values."""
    h = HOSTILE
    at = [_T0 + timedelta(minutes=n) for n in range(12)]
    pid, account, merchant = h["payment"], h["account"], h["merchant"]
    scenario = "car_loan_down_payment"
    log: list[ev.Event] = [
        ev.ChannelPolicySet(
            merchant=merchant,
            scenario=scenario,
            allowed_channels=("bank_card",),
            reason=h["long"],
            occurred_at=at[0],
        ),
        ev.AccountOpened(account_id=account, holder_ref=h["long"][:256], occurred_at=at[1]),
        ev.CreditLineOpened(
            account_id=account,
            product="huabei",
            limit_minor=6_000_000,
            currency="CNY",
            occurred_at=at[2],
        ),
        ev.CreditStatusChanged(
            account_id=account,
            product="huabei",
            old_status="active",
            new_status="frozen",
            reason=h["freeze"],
            occurred_at=at[3],
        ),
        ev.ChannelStatusChanged(
            channel="huabei", status="down", reason=h["outage"], occurred_at=at[4]
        ),
        ev.PaymentRequested(
            payment_id=pid,
            account_id=account,
            merchant=merchant,
            scenario=scenario,
            amount_minor=2_500_000,
            currency="CNY",
            preferred_channel="huabei",
            occurred_at=at[5],
        ),
        ev.ChannelDecided(
            payment_id=pid,
            attempt=1,
            channel="huabei",
            candidates=tuple(
                ev.Candidate(channel=c, eligible=c == "huabei", reason=h["long"])
                for c in ("huabei", "jiebei", "bank_card")
            ),
            rule=h["long"][:256],
            occurred_at=at[6],
        ),
        ev.PaymentAttempted(
            payment_id=pid, attempt=1, channel="huabei", amount_minor=2_500_000, occurred_at=at[7]
        ),
        ev.PaymentDeclined(
            payment_id=pid,
            attempt=1,
            channel="huabei",
            code="unknown",
            message=h["long"],
            occurred_at=at[8],
        ),
        ev.PaymentAbandoned(payment_id=pid, reason=h["outage"], occurred_at=at[9]),
    ]
    db = str(folder / "hostile.db")

    async def write() -> None:
        async with open_store(db) as store:
            await load(store, log)

    anyio.run(write)
    return db
