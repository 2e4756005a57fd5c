"""``payledger report``: its numbers are the ``--json`` commands' (explain, whatif, timeline,
stats, incidents, warnings), its page marks and links the evidence, every value from the log is
text (never markup), and the file is written atomically and never over a store."""

from __future__ import annotations

import html
import re
import sqlite3
from datetime import datetime
from pathlib import Path

import msgspec
import pytest
from dom import parse
from reporting import (
    CHANNELS,
    DEMO_PAYMENT,
    HOSTILE,
    HOSTILE_PAYMENT,
    check_demo_payment_page,
    check_fleet_page,
    cli,
    demo_store,
    fleet_store,
    hostile_store,
    json_lines,
)
from reporting import cli_json as _json
from reporting import no_external_reference as _no_external_reference
from reporting import page as _page

from replay.report import PaymentReport, render_payment
from replay.report.data import MAX_BUCKETS, bucket_failures
from replay.report.page import LONG_TEXT, esc, text


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> str:
    return demo_store(tmp_path_factory.mktemp("demo"))


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> str:
    return fleet_store(tmp_path_factory.mktemp("fleet"), payments=900, seed=8)


# --- a payment -----------------------------------------------------------------------------


def test_payment_report_holds_what_the_json_commands_print(demo: str) -> None:
    doc = _json("--db", demo, "report", "--payment", DEMO_PAYMENT, "--json", "-o", "-")
    assert doc["kind"] == "payment"
    assert doc["explanation"] == _json("--db", demo, "explain", DEMO_PAYMENT, "--json")
    used = doc["explanation"]["attempts"][-1]["channel"]
    assert [w["channel"] for w in doc["whatif"]] == [c for c in CHANNELS if c != used]
    for w in doc["whatif"]:
        assert w == _json("--db", demo, "whatif", DEMO_PAYMENT, "--channel", w["channel"], "--json")
    code, out, _ = cli("--db", demo, "timeline", "--payment", DEMO_PAYMENT, "--json")
    assert code == 0
    listed = json_lines(out)
    assert [(e["position"], e["stream"], e["type"], e["evidence"]) for e in doc["timeline"]] == [
        (e["position"], e["stream"], e["type"], e["evidence"]) for e in listed
    ]
    for a in doc["explanation"]["attempts"]:
        at = {e["position"]: e for e in doc["timeline"]}
        assert a["attempt"] in at[a["moment"]]["moment_of"]
        assert a["attempt"] in at[a["failed_at"]]["ended"]


def test_payment_page_marks_and_links_the_evidence(demo: str, tmp_path: Path) -> None:
    check_demo_payment_page(demo, tmp_path / "p.html")


def test_a_payment_that_failover_saved_has_no_root_cause_but_its_attempts(tmp_path: Path) -> None:
    db = str(tmp_path / "saved.db")
    from replay import cases

    assert cli("--db", db, "import", str(cases.incident_path("failover_saved")))[0] == 0
    pid = cases.expected("failover_saved")["explain"][0]["payment_id"]
    doc = _json("--db", db, "report", "--payment", pid, "--json", "-o", "-")
    assert doc["explanation"]["outcome"] == "succeeded"
    root = _page(tmp_path / "saved.html", "--db", db, "report", "--payment", pid)
    assert not root.find_all(cls="root-cause")
    assert "failover saved it" in root.find(id="verdict").text()
    failed = [a for a in doc["explanation"]["attempts"] if a["cause"]]
    assert failed
    assert len(doc["whatif"]) == 3


# --- a period ------------------------------------------------------------------------------


def test_period_report_holds_what_the_json_commands_print(fleet: str) -> None:
    doc = _json("--db", fleet, "report", "--json", "-o", "-")
    assert doc["kind"] == "fleet"
    assert doc["stats"] == _json("--db", fleet, "stats", "--json")
    code, out, _ = cli("--db", fleet, "incidents", "--json")
    assert code == 0
    assert doc["incidents"] == json_lines(out)
    code, out, _ = cli("--db", fleet, "warnings", "--json")
    assert code == 0
    assert doc["warnings"] == json_lines(out)
    by_category: dict[str, int] = {}
    for b in doc["failures_over_time"]:
        for category, n in b["failed"].items():
            by_category[category] = by_category.get(category, 0) + n
    assert by_category == doc["stats"]["by_category"]
    assert sum(i["payments_failed"] for i in doc["incidents"]) == doc["stats"]["failed"]
    assert len(doc["failures_over_time"]) <= MAX_BUCKETS + 1
    s = doc["stats"]
    assert s["payments"] == s["succeeded"] + s["failed"] + s["pending"]
    assert sum(s["by_merchant"].values()) == s["failed"]
    assert sum(s["saved_by_category"].values()) == s["saved_by_failover"] > 0


def test_a_period_keeps_the_incidents_and_warnings_of_its_bounds(fleet: str) -> None:
    every = _json("--db", fleet, "report", "--json", "-o", "-")
    moments = sorted(i["first_failure_at"] for i in every["incidents"])
    since, until = moments[len(moments) // 4], moments[3 * len(moments) // 4]
    bounds = ("--since", since, "--until", until)
    doc = _json("--db", fleet, "report", *bounds, "--json", "-o", "-")
    code, out, _ = cli("--db", fleet, "incidents", *bounds, "--json")
    assert code == 0
    assert doc["incidents"] == json_lines(out)
    assert 0 < len(doc["incidents"]) < len(every["incidents"])
    code, out, _ = cli("--db", fleet, "warnings", "--since", since, "--json")
    assert code == 0
    assert doc["warnings"] == [w for w in json_lines(out) if w["occurred_at"] <= until]
    assert doc["stats"]["failed"] == sum(i["payments_failed"] for i in doc["incidents"])
    assert doc["stats"]["payments"] < every["stats"]["payments"]
    starts = [b["start"] for b in doc["failures_over_time"]]
    assert starts[0] <= since
    assert doc["failures_over_time"][-1]["end"] > until


def test_period_page_shows_every_incident_with_its_figures(fleet: str, tmp_path: Path) -> None:
    check_fleet_page(fleet, tmp_path / "f.html")


def test_buckets_have_one_width_and_count_every_failure(fleet: str) -> None:
    from replay.report.data import BUCKET_WIDTHS

    doc = _json("--db", fleet, "report", "--json", "-o", "-")
    width = doc["bucket_seconds"]
    assert width in BUCKET_WIDTHS
    for b in doc["failures_over_time"]:
        start = datetime.fromisoformat(b["start"])
        end = datetime.fromisoformat(b["end"])
        assert (end - start).total_seconds() == width
        assert int(start.timestamp()) % width == 0
    assert bucket_failures([], since=None, until=None)[1] == ()


def test_a_long_period_gets_wider_buckets(fleet: str) -> None:
    doc = _json(
        "--db", fleet, "report", "--since", "2026-01-01T00:00:00Z", "--until",
        "2026-06-30T00:00:00Z", "--json", "-o", "-",
    )  # fmt: skip
    assert doc["bucket_seconds"] == 7 * 86400
    assert len(doc["failures_over_time"]) <= MAX_BUCKETS
    total = sum(sum(b["failed"].values()) for b in doc["failures_over_time"])
    assert total == doc["stats"]["failed"] > 0
    far = _json("--db", fleet, "report", "--since", "2030-01-01T00:00:00Z", "--json", "-o", "-")
    assert far["incidents"] == []
    assert far["failures_over_time"] == []
    assert far["stats"]["payments"] == 0


# --- hostile text --------------------------------------------------------------------------


def test_values_from_the_log_are_text_never_markup(tmp_path: Path) -> None:
    db = hostile_store(tmp_path)
    for name, argv in (
        ("payment", ("report", "--payment", HOSTILE_PAYMENT)),
        ("fleet", ("report",)),
    ):
        path = tmp_path / f"{name}.html"
        root = _page(path, "--db", db, *argv)
        _no_external_reference(root)
        assert not root.find_all(
            "style", where=lambda n: n.parent is not None and n.parent.tag != "head"
        )
        assert not root.find_all("b", where=lambda n: n.text() == "1")
        assert (
            root.find("head")
            .find("title")
            .text()
            .startswith(("Payment P<b>1</b>", "Payment failures"))
        )
        page = root.text()
        assert HOSTILE["merchant"] in page
        assert HOSTILE["account"] in page or name == "fleet"
        raw = path.read_text(encoding="utf-8")
        assert "<script" not in raw
        assert "<iframe" not in raw
        assert "<img" not in raw
    # a line of the timeline longer than the page shows: cut, and said so
    doc = _json("--db", db, "report", "--payment", HOSTILE_PAYMENT, "--json", "-o", "-")
    longest = max(len(e["summary"]) for e in doc["timeline"])
    assert longest > LONG_TEXT
    assert f"({longest - LONG_TEXT:,} more characters)" in (tmp_path / "payment.html").read_text(
        encoding="utf-8"
    )


def test_ten_kilobyte_values_are_cut_and_escaped(demo: str) -> None:
    """The log caps a text at 4 kB; the page must not rely on it."""
    code, out, _ = cli("--db", demo, "report", "--payment", DEMO_PAYMENT, "--json", "-o", "-")
    assert code == 0
    report = msgspec.json.decode(out, type=PaymentReport)
    huge = ('<script>alert("x")</script>' * 400)[:10_240]
    exp = msgspec.structs.replace(report.explanation, merchant=huge, payment_id=huge)
    first = msgspec.structs.replace(report.timeline[0], summary=huge, stream=huge)
    page = render_payment(
        msgspec.structs.replace(report, explanation=exp, timeline=(first, *report.timeline[1:]))
    )
    root = parse(page)
    _no_external_reference(root)
    assert html.escape(huge[: LONG_TEXT + 10]) not in page, "never shown whole"
    assert huge[:200] in root.text()
    assert f"({len(huge) - LONG_TEXT:,} more characters)" in root.text()
    assert len(page) < len(render_payment(report)) + 12 * len(huge)


def test_text_escapes_quotes_markup_and_control_characters() -> None:
    assert esc('<a href="x">\'&') == "&lt;a href=&quot;x&quot;&gt;&#x27;&amp;"
    assert esc("a\x00b\x1bc") == "a\ufffdb\ufffdc"
    assert text("x" * 10, 4) == 'xxxx<span class="cut">… (6 more characters)</span>'
    assert text("w" * 41).startswith('<span class="brk">')
    assert text("short words only") == "short words only"


# --- the file ------------------------------------------------------------------------------


def test_the_file_is_replaced_atomically_and_stdout_works(demo: str, tmp_path: Path) -> None:
    target = tmp_path / "out.html"
    target.write_text("old", encoding="utf-8")
    code, _, err = cli("--db", demo, "report", "--payment", DEMO_PAYMENT, "-o", str(target))
    assert code == 0, err
    assert target.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.html"], "no temporary file left"
    code, out, _ = cli("--db", demo, "report", "--payment", DEMO_PAYMENT, "-o", "-")
    assert code == 0
    assert out.decode("utf-8") == target.read_text(encoding="utf-8")


def test_never_written_over_a_store(demo: str, tmp_path: Path) -> None:
    before = Path(demo).read_bytes()
    for target in (demo, demo + "-wal", str(Path(demo).parent / "." / Path(demo).name)):
        code, _, err = cli("--db", demo, "report", "-o", target)
        assert code == 2, target
        assert "store" in err
    assert Path(demo).read_bytes() == before
    copy = tmp_path / "copy.db"
    copy.write_bytes(before)
    code, _, err = cli("--db", demo, "report", "-o", str(copy))
    assert code == 2
    assert "payledger store" in err
    assert copy.read_bytes() == before
    plain = tmp_path / "plain.sqlite"
    with sqlite3.connect(plain) as conn:
        conn.execute("CREATE TABLE t (x)")
    conn.close()
    code, _, err = cli("--db", demo, "report", "-o", str(plain))
    assert code == 2
    assert "SQLite database" in err
    code, _, err = cli("--db", demo, "report", "-o", str(tmp_path))
    assert code == 2
    assert "directory" in err


def test_bad_usage_writes_nothing(demo: str, tmp_path: Path) -> None:
    target = tmp_path / "r.html"
    since = ("--since", "2026-03-08T00:00:00Z")
    for argv, want in (
        (("report", "--payment", "P-none", "-o", str(target)), 1),
        (("report", "--payment", DEMO_PAYMENT, *since, "-o", str(target)), 2),
        (("report", "--since", "yesterday", "-o", str(target)), 2),
        (("report", "--since", "2026-03-09T00:00:00Z", "--until", "2026-03-08T00:00:00Z",
          "-o", str(target)), 2),
        (("report",), 2),
    ):  # fmt: skip
        code, _, _ = cli("--db", demo, *argv)
        assert code == want, argv
        assert not target.exists()
    assert not list(tmp_path.iterdir())


def test_a_period_of_a_store_with_no_payment(tmp_path: Path) -> None:
    db = str(tmp_path / "empty.db")
    (tmp_path / "nothing.jsonl").write_text("")
    assert cli("--db", db, "import", str(tmp_path / "nothing.jsonl"))[0] == 0
    root = _page(tmp_path / "e.html", "--db", db, "report")
    assert "no failed payments in the period" in root.text()
    assert root.find(cls="fact", data_field="payments").find(cls="value").text() == "0"


def test_the_readme_shows_both_pictures() -> None:
    root = Path(__file__).resolve().parent.parent
    readme = (root / "README.md").read_text(encoding="utf-8")
    pictures = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", readme)
    assert pictures == ["docs/report-payment.png", "docs/report-fleet.png"]
    for picture in pictures:
        assert (root / picture).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
