"""What the report tests share: the ``payledger`` command run in-process with its output
captured, the stores they report on (the demo's ``multiple_blockers`` incident, a simulated
fleet, and a log full of hostile text), and the checks of a written page that hold on every
backend (``test_report.py`` on SQLite, ``test_cli_postgres.py`` on PostgreSQL)."""

from __future__ import annotations

import io
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import anyio
from dom import Node, parse
from logs import load

from causes.wording import money
from ledger import events as ev
from ledger import open_store
from replay import cases
from replay.cli import main
from replay.report.page import CSP

__all__ = [
    "CHANNELS",
    "DEMO_PAYMENT",
    "HOSTILE",
    "HOSTILE_PAYMENT",
    "check_demo_payment_page",
    "check_fleet_page",
    "cli",
    "cli_json",
    "demo_store",
    "fleet_store",
    "hostile_store",
    "json_lines",
    "no_address_at_all",
    "no_external_reference",
    "page",
]

CHANNELS: Final = ("huabei", "jiebei", "bank_card", "balance")

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


def cli_json(*argv: str) -> Any:
    """Run a command that succeeds and prints one JSON document; returns the document."""
    code, out, err = cli(*argv)
    assert code == 0, err
    return json.loads(out)


def page(path: Path, *argv: str) -> Node:
    """Run ``payledger ARGV -o PATH``; returns the page written, parsed."""
    code, _, err = cli(*argv, "-o", str(path))
    assert code == 0, err
    return parse(path.read_text(encoding="utf-8"))


def no_address_at_all(path: Path) -> None:
    """A report of an ordinary log names no network address anywhere (not even an SVG
    namespace: inline SVG in HTML needs none)."""
    raw = path.read_bytes().lower()
    assert b"http:" not in raw
    assert b"https:" not in raw


def no_external_reference(root: Node) -> None:
    """The page loads nothing from anywhere: no script, stylesheet, image or frame, no
    external address in an attribute, and the report's Content-Security-Policy."""
    for node in root.iter():
        for name in ("src", "href", "action", "xlink:href", "poster", "data"):
            value = node.attrs.get(name, "").strip().lower()
            assert not value.startswith(("http:", "https:", "//", "ftp:")), (node, name)
        assert "url(" not in node.attrs.get("style", ""), node
    assert not root.find_all("script")
    assert not root.find_all("link")
    assert not root.find_all("img")
    assert not root.find_all("iframe")
    csp = root.find("meta", http_equiv="Content-Security-Policy")
    assert csp.attrs["content"] == CSP


# --- the pages, checked ---------------------------------------------------------------------


def check_demo_payment_page(db: str, path: Path) -> None:
    """``report --payment DEMO_PAYMENT -o PATH`` on the store ``db`` (holding the demo's
    ``multiple_blockers`` incident) writes a self-contained page that marks and links the
    evidence, with the verdict, the state at the failure and the what-ifs of the ``--json``
    commands on the same store."""
    exp = cli_json("--db", db, "explain", DEMO_PAYMENT, "--json")
    root = page(path, "--db", db, "report", "--payment", DEMO_PAYMENT)
    no_external_reference(root)
    no_address_at_all(path)
    rows = {int(r.attrs["data-position"]): r for r in root.find_all("tr", cls="timeline-row")}
    assert rows, "the timeline lists events"
    ids = {n.attrs["id"] for n in root.iter() if "id" in n.attrs}
    for link in root.find_all("a"):
        href = link.attrs.get("href", "")
        assert href.startswith("#"), href
        assert href[1:] in ids, f"dead link {href}"
    cause = exp["root_cause"]
    verdict = root.find("div", cls="root-cause")
    assert verdict.attrs["data-category"] == cause["category"]
    assert verdict.find(cls="summary").text() == cause["summary"]
    assert verdict.find(cls="remedy-text").text() == cause["remedy"]
    cited = [int(a.attrs["data-position"]) for a in verdict.find(cls="evidence-list").find_all("a")]
    assert cited == cause["evidence"]
    contributing = root.find_all("tr", cls="contributing")
    assert [(r.attrs["data-category"], r.attrs["data-evidence"]) for r in contributing] == [
        (c["category"], " ".join(map(str, c["evidence"]))) for c in cause["contributing"]
    ]
    evidence = {p for c in [cause, *cause["contributing"]] for p in c["evidence"]}
    assert {p for p, r in rows.items() if "evidence" in r.classes} == evidence
    for p in evidence:
        assert rows[p].attrs["id"] == f"pos-{p}"
        assert root.find("a", cls="event", data_position=str(p)).attrs["href"] == f"#pos-{p}"
    for a in exp["attempts"]:
        assert "moment" in rows[a["moment"]].classes
        mark = root.find("g", cls="moment", data_attempt=str(a["attempt"]))
        assert mark.attrs["data-position"] == str(a["moment"])
        row = root.find("tr", cls="attempt", data_attempt=str(a["attempt"]))
        assert row.attrs["data-outcome"] == a["outcome"]
    state = exp["state_at_failure"]
    line = root.find("tr", cls="credit-line", data_product="huabei")
    assert line.attrs["data-status"] == state["account"]["credit"]["huabei"]["status"]
    assert money(state["account"]["credit"]["huabei"]["available_minor"], "CNY").split()[0] in (
        line.text()
    )
    assert root.find(cls="state-channel").attrs["data-status"] == state["channel"]["status"]
    for channel in CHANNELS[1:]:
        w = cli_json("--db", db, "whatif", DEMO_PAYMENT, "--channel", channel, "--json")
        verdict_row = root.find("tr", cls="whatif-verdict", data_channel=channel)
        assert verdict_row.attrs["data-would-pass"] == str(w["would_pass"]).lower()
        words = "would have passed" if w["would_pass"] else "would also have failed"
        assert words in verdict_row.text()
        block = root.find("div", cls="whatif", data_channel=channel)
        assert [
            (c.attrs["data-check"], c.attrs["data-status"])
            for c in block.find_all("tr", cls="check")
        ] == [(c["check"], c["status"]) for c in w["checks"]]


def check_fleet_page(db: str, path: Path) -> None:
    """``report -o PATH`` (the whole period) on the store ``db`` (a simulated fleet) writes a
    self-contained page with every incident, the figures and the chart of ``report --json``."""
    doc = cli_json("--db", db, "report", "--json", "-o", "-")
    root = page(path, "--db", db, "report")
    no_external_reference(root)
    no_address_at_all(path)
    rows = root.find_all("tr", cls="incident")
    assert len(rows) == len(doc["incidents"]) > 1
    for rank, (row, incident) in enumerate(zip(rows, doc["incidents"], strict=True), start=1):
        assert row.attrs["data-rank"] == str(rank)
        assert row.attrs["data-category"] == incident["category"]
        assert row.attrs["data-evidence"] == " ".join(map(str, incident["evidence"]))
        cells = {
            c.attrs["data-field"]: c.text() for c in row.find_all("td") if "data-field" in c.attrs
        }
        assert cells["payments_failed"] == f"{incident['payments_failed']:,}"
        assert cells["saved_by_failover"] == f"{incident['saved_by_failover']:,}"
        assert cells["amount_failed"] == ", ".join(
            money(v, c) for c, v in incident["amount_failed_minor"].items()
        )
    s = doc["stats"]
    for field in ("payments", "succeeded", "failed", "pending", "saved_by_failover"):
        assert root.find(cls="fact", data_field=field).find(cls="value").text() == f"{s[field]:,}"
    for c, n in s["by_category"].items():
        assert root.find("tr", cls="by-category", data_category=c).find_all("td")[1].text() == str(
            n
        )
    drawn: dict[str, int] = {}
    for rect in root.find_all("rect", where=lambda n: "data-count" in n.attrs):
        drawn[rect.attrs["data-category"]] = drawn.get(rect.attrs["data-category"], 0) + int(
            rect.attrs["data-count"]
        )
    assert drawn == s["by_category"]
    merchants = root.find(cls="top", data_field="by_merchant").find_all(
        "tr", where=lambda n: "data-name" in n.attrs
    )
    top = max(s["by_merchant"].items(), key=lambda kv: kv[1])
    assert merchants[0].attrs["data-name"] == top[0]
    assert merchants[0].find_all("td")[1].text() == f"{top[1]:,}"
    assert len(root.find_all("tr", cls="warning")) == len(doc["warnings"])


# --- the stores ----------------------------------------------------------------------------


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
