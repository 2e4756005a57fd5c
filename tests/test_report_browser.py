"""``payledger report`` opened in a real browser (headless Chromium, Debian's ``chromium``):
the rendered DOM shows the figures the ``--json`` commands print, the page asks the network for
nothing, hostile text stays text, and a screenshot is a real picture.

Chromium comes from ``.ci/chromium.sh``. Where ``PAYLEDGER_REQUIRE_CHROMIUM=1`` (CI and
``make test``) a missing Chromium fails these tests; elsewhere they are skipped, saying why.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from dom import Node, parse
from reporting import (
    DEMO_PAYMENT,
    HOSTILE,
    HOSTILE_PAYMENT,
    cli,
    demo_store,
    fleet_store,
    hostile_store,
    json_lines,
)

from causes.wording import money
from replay.report.page import CSP

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
import chromium


@pytest.fixture(scope="module", autouse=True)
def browser() -> str:
    found = chromium.binary()
    if found is None:
        why = "no Chromium (/usr/bin/chromium): run .ci/chromium.sh to install Debian's package"
        if os.environ.get("PAYLEDGER_REQUIRE_CHROMIUM") == "1":
            pytest.fail(f"PAYLEDGER_REQUIRE_CHROMIUM=1 but {why}")
        pytest.skip(why)
    return found


def _json(*argv: str) -> Any:
    code, out, err = cli(*argv)
    assert code == 0, err
    return json.loads(out)


def _rendered(folder: Path, name: str, *argv: str) -> tuple[Node, Path]:
    """Write the report, open it in Chromium; returns its DOM and the page's file. Checks on
    the way that the page asked the network for nothing."""
    page = folder / f"{name}.html"
    code, _, err = cli(*argv, "-o", str(page))
    assert code == 0, err
    log = folder / f"{name}.netlog.json"
    root = parse(chromium.dump_dom(page, net_log=log))
    assert chromium.page_requests(log) == []
    for node in root.iter():
        for attr in ("src", "href"):
            value = node.attrs.get(attr, "").lower()
            assert not value.startswith(("http:", "https:", "//")), node
    assert root.find("meta", http_equiv="Content-Security-Policy").attrs["content"] == CSP
    assert not root.find_all("script")
    return root, page


def _screenshot_is_a_picture(page: Path, png: Path) -> None:
    chromium.screenshot(page, png, width=1280, height=2000)
    width, height, distinct = chromium.png_summary(png)
    assert (width, height) == (1280, 2000)
    assert distinct > 64, "more than a blank page"
    assert png.stat().st_size > 20_000


def test_the_net_log_sees_what_a_page_asks_for(tmp_path: Path) -> None:
    """The check above can fail: a page with a remote image is caught (the name never
    resolves, so nothing leaves the machine)."""
    page = tmp_path / "remote.html"
    page.write_text(
        '<!DOCTYPE html><p>x</p><img src="http://payledger.invalid/pixel.png">', encoding="utf-8"
    )
    log = tmp_path / "remote.netlog.json"
    chromium.dump_dom(page, net_log=log)
    assert chromium.page_requests(log) == ["http://payledger.invalid/pixel.png"]


def test_a_payment_in_the_browser(tmp_path: Path) -> None:
    db = demo_store(tmp_path)
    exp = _json("--db", db, "explain", DEMO_PAYMENT, "--json")
    root, page = _rendered(tmp_path, "payment", "--db", db, "report", "--payment", DEMO_PAYMENT)
    cause = exp["root_cause"]
    verdict = root.find("div", cls="root-cause")
    assert verdict.attrs["data-category"] == cause["category"]
    assert verdict.find("span", cls="cat").text() == cause["category"]
    assert verdict.find(cls="summary").text() == cause["summary"]
    assert verdict.find(cls="remedy-text").text() == cause["remedy"]
    links = verdict.find(cls="evidence-list").find_all("a")
    assert [a.text() for a in links] == [f"#{p}" for p in cause["evidence"]]
    assert [a.attrs["href"] for a in links] == [f"#pos-{p}" for p in cause["evidence"]]
    cited = {p for c in [cause, *cause["contributing"]] for p in c["evidence"]}
    rows = root.find_all("tr", cls="timeline-row")
    assert {int(r.attrs["data-position"]) for r in rows if "evidence" in r.classes} == cited
    for p in cited:
        row = root.find("tr", id=f"pos-{p}")
        assert "evidence" in row.classes
        assert row.find_all("td")[0].text() == str(p)
    code, out, _ = cli("--db", db, "timeline", "--payment", DEMO_PAYMENT, "--json")
    assert code == 0
    assert [int(r.attrs["data-position"]) for r in rows] == [e["position"] for e in json_lines(out)]
    for a in exp["attempts"]:
        assert "moment" in root.find("tr", id=f"pos-{a['moment']}").classes
        mark = root.find("g", cls="moment", data_attempt=str(a["attempt"]))
        assert f"moment #{a['moment']}" in mark.text()
    state = exp["state_at_failure"]
    line = root.find("tr", cls="credit-line", data_product="huabei")
    assert line.find_all("td")[1].text().startswith(state["account"]["credit"]["huabei"]["status"])
    available = state["account"]["credit"]["huabei"]["available_minor"]
    assert line.find_all("td")[5].text() == money(available, "CNY").split()[0]
    for channel in ("jiebei", "bank_card", "balance"):
        w = _json("--db", db, "whatif", DEMO_PAYMENT, "--channel", channel, "--json")
        row = root.find("tr", cls="whatif-verdict", data_channel=channel)
        words = "would have passed every check" if w["would_pass"] else "would also have failed"
        assert row.find_all("td")[1].text() == words
    assert not root.find_all("tr", cls="whatif-verdict", data_channel="huabei")
    _screenshot_is_a_picture(page, tmp_path / "payment.png")


def test_a_simulated_fleet_in_the_browser(tmp_path: Path) -> None:
    db = fleet_store(tmp_path, payments=1500, seed=3)
    stats = _json("--db", db, "stats", "--json")
    code, out, _ = cli("--db", db, "incidents", "--json")
    assert code == 0
    incidents = json_lines(out)
    root, page = _rendered(tmp_path, "fleet", "--db", db, "report")
    rows = root.find_all("tr", cls="incident")
    assert len(rows) == len(incidents) > 1
    for row, incident in zip(rows, incidents, strict=True):
        cells = {
            c.attrs["data-field"]: c.text() for c in row.find_all("td") if "data-field" in c.attrs
        }
        assert row.attrs["data-category"] == incident["category"]
        assert cells["payments_failed"] == f"{incident['payments_failed']:,}"
        assert cells["amount_failed"] == ", ".join(
            money(v, c) for c, v in incident["amount_failed_minor"].items()
        )
        assert cells["saved_by_failover"] == f"{incident['saved_by_failover']:,}"
    for field in ("payments", "succeeded", "failed", "pending", "saved_by_failover"):
        shown = root.find(cls="fact", data_field=field).find(cls="value").text()
        assert shown == f"{stats[field]:,}"
    drawn: dict[str, int] = {}
    for rect in root.find_all("rect", where=lambda n: "data-count" in n.attrs):
        category = rect.attrs["data-category"]
        drawn[category] = drawn.get(category, 0) + int(rect.attrs["data-count"])
    assert drawn == stats["by_category"]
    code, out, _ = cli("--db", db, "warnings", "--json")
    assert code == 0
    assert [int(r.attrs["data-position"]) for r in root.find_all("tr", cls="warning")] == [
        w["position"] for w in json_lines(out)
    ]
    _screenshot_is_a_picture(page, tmp_path / "fleet.png")


def test_hostile_text_stays_text_in_the_browser(tmp_path: Path) -> None:
    db = hostile_store(tmp_path)
    root, _ = _rendered(tmp_path, "hostile", "--db", db, "report", "--payment", HOSTILE_PAYMENT)
    assert not root.find_all("img")
    assert not root.find_all("iframe")
    assert len(root.find_all("style")) == 1
    title = root.find("head").find("title").text()
    assert title == f"Payment {HOSTILE_PAYMENT}: failed"
    text = root.text()
    for value in ("merchant", "account", "outage"):
        assert HOSTILE[value] in text
    fleet, _ = _rendered(tmp_path, "hostile-fleet", "--db", db, "report")
    assert not fleet.find_all("img")
    assert HOSTILE["merchant"] in fleet.text()
