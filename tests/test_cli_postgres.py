"""Every ``payledger`` command on a ``postgresql://`` URL, through :func:`replay.cli.main`, beside
the same command on an SQLite file holding the same log (CONTRACT section 4: every command and
every figure behaves the same on both): the same exit code and the same output, human and
``--json``. The log is a simulated fleet recorded in SQLite, exported, and imported into a
PostgreSQL database of its own."""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import anyio
import msgspec
import pytest
from pg_support import sync_database
from reporting import DEMO_PAYMENT, check_demo_payment_page, check_fleet_page, cli, demo_store

from ledger import open_store
from ledger.states import StateRow
from projections.check import check_projections
from projections.rows import NAME
from replay import cases
from replay.cli import build_parser, main

PAYMENTS: Final = 300
SEED: Final = 5


class Stores(msgspec.Struct, frozen=True):
    sqlite: str
    postgres: str
    log: Path
    failed: list[dict[str, Any]]
    head: int


def _call(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    try:
        code = main(list(argv))
    except SystemExit as e:  # argparse usage errors
        code = int(e.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def _quiet(*argv: str) -> str:
    """Run a command for the fixtures (module-scoped: no capsys); returns its stdout."""
    raw = io.BytesIO()
    out = io.TextIOWrapper(raw, encoding="utf-8")
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        code = main(list(argv))
        out.flush()
    assert code == 0, argv
    return raw.getvalue().decode()


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stores]:
    tmp = tmp_path_factory.mktemp("cli-pg")
    sqlite = str(tmp / "fleet.db")
    log = tmp / "fleet.jsonl"
    _quiet("--db", sqlite, "simulate", "--payments", str(PAYMENTS), "--seed", str(SEED))
    _quiet("--db", sqlite, "export", str(log))
    failed = [
        json.loads(line)
        for line in _quiet("--db", sqlite, "explain", "--failed", "--json").splitlines()
    ]
    with sync_database("payledger_cli") as url:
        _quiet("--db", url, "import", str(log))
        head = len(log.read_bytes().splitlines())
        yield Stores(sqlite, url, log, failed, head)


def _same(capsys: pytest.CaptureFixture[str], stores: Stores, *argv: str) -> tuple[int, str]:
    """Run ``argv`` on both stores; assert the same exit code and output; return them."""
    code, out, err = _call(capsys, "--db", stores.sqlite, *argv)
    pg_code, pg_out, pg_err = _call(capsys, "--db", stores.postgres, *argv)
    assert (pg_code, pg_out) == (code, out), (argv, err, pg_err)
    if code != 0:
        assert err.startswith("payledger: ")
        assert pg_err.startswith("payledger: ")
    return code, out


def test_the_db_option_takes_a_file_or_a_postgresql_url() -> None:
    help_text = build_parser().format_help()
    assert "--db PATH" in help_text
    assert "a file path (SQLite) or a PostgreSQL URL (postgresql://" in " ".join(help_text.split())


def test_import_projects_and_export_gives_back_every_line(
    capsys: pytest.CaptureFixture[str], stores: Stores, tmp_path: Path
) -> None:
    code, out, err = _call(capsys, "--db", stores.postgres, "export")
    assert code == 0, err
    assert out.encode() == stores.log.read_bytes()
    again = tmp_path / "again.jsonl"
    assert _call(capsys, "--db", stores.postgres, "export", str(again))[0] == 0
    assert again.read_bytes() == stores.log.read_bytes()
    # a retried import adds nothing, on both
    code, out = _same(capsys, stores, "import", str(stores.log), "--json")
    assert code == 0
    assert json.loads(out) == {
        "appended": 0,
        "skipped": stores.head,
        "first_position": None,
        "last_position": None,
    }

    async def projected() -> None:
        async with open_store(stores.postgres, readonly=True) as store:
            assert (await store.states.checkpoint(NAME)).position == stores.head
            assert (await check_projections(store)).ok

    anyio.run(projected)


def _commands(stores: Stores) -> list[list[str]]:
    failed = stores.failed
    assert len(failed) > 10
    credit = next(e for e in failed if e["root_cause"]["category"] == "credit")
    other = failed[len(failed) // 2]
    pid, account = credit["payment_id"], credit["account_id"]
    position = credit["state_at_failure"]["position"]
    when = credit["failure_at"]
    return [
        ["explain", pid],
        ["explain", pid, "--json"],
        ["explain", other["payment_id"], "--json"],
        ["explain", "--failed"],
        ["explain", "--failed", "--json", "--since", when],
        ["explain", "no-such-payment"],
        ["whatif", pid, "--channel", "bank_card"],
        ["whatif", pid, "--channel", "jiebei", "--json"],
        ["timeline", "--payment", pid],
        ["timeline", "--payment", pid, "--json"],
        ["timeline", "--account", account, "--json"],
        ["timeline", "--account", "nobody"],
        ["state", "--account", account],
        ["state", "--account", account, "--json"],
        ["state", "--account", account, "--at", str(position), "--json"],
        ["state", "--account", account, "--as-of", when, "--json"],
        ["state", "--account", "nobody"],
        ["audit", "--stream", f"payment-{pid}"],
        ["audit", "--type", "PaymentDeclined", "--type", "ChannelStatusChanged", "--json"],
        ["audit", "--since", when, "--until", when, "--json"],
        ["audit", "--correlation", f"order-{pid[1:]}", "--json"],
        ["audit", "--correlation", "no-such-order"],
        ["audit", "--type", "CreditStatusChanged", "--limit", "3", "--json"],
        ["stats"],
        ["stats", "--json"],
        ["incidents"],
        ["incidents", "--json", "--since", when],
        ["verify"],
        ["verify", "--json"],
        ["warnings"],
        ["warnings", "--json", "--since", when],
    ]


def test_every_reading_command_prints_the_same_on_both(
    capsys: pytest.CaptureFixture[str], stores: Stores
) -> None:
    codes: dict[int, int] = {}
    for argv in _commands(stores):
        code, out = _same(capsys, stores, *argv)
        codes[code] = codes.get(code, 0) + 1
        if code == 0:
            assert out.strip(), argv
    assert codes == {0: 28, 1: 3}


def _rows(db: str) -> list[StateRow]:
    async def read() -> list[StateRow]:
        async with open_store(db, readonly=True) as store:
            return [r async for page in store.states.scan(NAME) for r in page]

    return anyio.run(read)


def test_rebuild_writes_the_same_rows_on_both(
    capsys: pytest.CaptureFixture[str], stores: Stores
) -> None:
    docs = []
    for db in (stores.sqlite, stores.postgres):
        code, out, err = _call(capsys, "--db", db, "rebuild", "--json")
        assert code == 0, err
        docs.append(json.loads(out))
        code, out, err = _call(capsys, "--db", db, "rebuild")
        assert code == 0, err
        assert f"from {stores.head:,} events" in out
    assert [(d["events"], d["position"]) for d in docs] == [(stores.head, stores.head)] * 2
    sqlite_rows = _rows(stores.sqlite)
    assert len(sqlite_rows) > PAYMENTS
    assert _rows(stores.postgres) == sqlite_rows  # byte for byte, in the same order


def test_simulate_records_the_same_fleet_on_both(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    argv = ["simulate", "--payments", "120", "--seed", "9", "--json"]
    truth = tmp_path / "truth.jsonl"
    with sync_database("payledger_cli") as url:
        code, out, err = _call(capsys, "--db", url, *argv, "--truth", str(truth))
        assert code == 0, err
        on_pg = json.loads(out)
        code, out, err = _call(capsys, "--db", str(tmp_path / "s.db"), *argv)
        assert code == 0, err
        on_sqlite = json.loads(out)
        for doc in (on_pg, on_sqlite):
            del doc["seconds"], doc["events_per_second"]
        assert on_pg == on_sqlite
        assert len(truth.read_text().splitlines()) == on_pg["failed"]
        code, _, err = _call(capsys, "--db", url, *argv)
        assert code == 2
        assert "needs an empty store" in err
        assert url.split("@")[0].split(":")[-1] not in err  # never the password
        code, out, err = _call(capsys, "--db", url, "verify", "--json")
        assert code == 0, err
        assert json.loads(out)["checked"] == on_pg["events"]


def _report(db: str, path: Path, *argv: str) -> bytes:
    """``payledger --db DB report ARGV -o PATH``; returns the file it wrote."""
    code, _, err = cli("--db", db, "report", *argv, "-o", str(path))
    assert code == 0, err
    return path.read_bytes()


def test_report_writes_the_same_page_on_both(stores: Stores, tmp_path: Path) -> None:
    """``report`` on a ``postgresql://`` URL: the pages pass the checks ``test_report.py``
    makes of SQLite's (a payment of the demo's incident, the whole period of the fleet), and
    each is byte for byte the page of the SQLite store holding the same log (a report names
    no store, path or clock: the same events give the same file), as is ``report --json``."""
    with sync_database("payledger_cli") as url:
        incident = str(cases.incident_path("multiple_blockers"))
        code, _, err = cli("--db", url, "import", incident)
        assert code == 0, err
        check_demo_payment_page(url, tmp_path / "payment-pg.html")
        sqlite = demo_store(tmp_path)
        payment = ("--payment", DEMO_PAYMENT)
        assert (tmp_path / "payment-pg.html").read_bytes() == _report(
            sqlite, tmp_path / "payment-sqlite.html", *payment
        )
        assert _report(url, tmp_path / "p-pg.json", *payment, "--json") == _report(
            sqlite, tmp_path / "p-sqlite.json", *payment, "--json"
        )
    check_fleet_page(stores.postgres, tmp_path / "fleet-pg.html")
    fleet = (tmp_path / "fleet-pg.html").read_bytes()
    assert fleet == _report(stores.sqlite, tmp_path / "fleet-sqlite.html")
    assert stores.postgres.split("@")[0].split(":")[-1].encode() not in fleet  # no password
    assert _report(stores.postgres, tmp_path / "f-pg.json", "--json") == _report(
        stores.sqlite, tmp_path / "f-sqlite.json", "--json"
    )


def test_the_store_comes_from_payledger_db_too(
    capsys: pytest.CaptureFixture[str], stores: Stores, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PAYLEDGER_DB", stores.postgres)
    code, out, err = _call(capsys, "stats", "--json")
    assert code == 0, err
    assert json.loads(out)["failed"] == len(stores.failed)
