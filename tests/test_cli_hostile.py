"""The command line under a hostile user (issues 11 and 12): every error is one line on stderr,
outputs never clobber a store or leave a partial file, bad option values are refused before
anything is read or written, and output off a terminal is never wrapped, cut or split."""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import sqlite3
import stat
import subprocess
import sys
import threading
import tomllib
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest

import fixtures
from ledger import open_store
from ledger.errors import LedgerError, NotFoundError
from replay import commands
from replay.cli import build_parser, main
from replay.output import check_output
from replay.render import render_failed_table
from replay.terminal import OutputConsole

REPO = Path(__file__).resolve().parent.parent

Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]) -> Run:
    """Run ``payledger`` in-process, stdout and stderr captured (not terminals)."""

    def runner(*argv: str) -> tuple[int, str, str]:
        capsys.readouterr()
        try:
            code = main(list(argv))
        except SystemExit as e:
            code = int(e.code or 0)
        out, err = capsys.readouterr()
        return code, out, err

    return runner


def _store(tmp_path: Path, run: Run, *names: str, db: str = "ledger.db") -> str:
    path = str(tmp_path / db)
    for name in names:
        code, _, err = run("--db", path, "import", str(fixtures.incident_path(name)))
        assert code == 0, err
    return path


def _head(db: str) -> tuple[int, str]:
    async def read() -> tuple[int, str]:
        async with open_store(db, readonly=True) as store:
            report = await store.verify()
        assert report.ok
        return report.head_position, report.head_hash

    return anyio.run(read)


def _names(folder: Path) -> list[str]:
    """The files of ``folder``, less the companions SQLite keeps beside a store."""
    return sorted(p.name for p in folder.iterdir() if not p.name.endswith(("-wal", "-shm")))


def _one_line(err: str, *words: str) -> None:
    """``err`` is exactly one ``payledger: ...`` line holding every word."""
    assert err.startswith("payledger: "), err
    assert err.endswith("\n"), err
    assert err.count("\n") == 1, err
    assert "Traceback" not in err
    for word in words:
        assert word in err, (word, err)


# --- codec findings through the CLI ----------------------------------------------------------


def test_a_deeply_nested_import_is_one_line_and_leaves_no_store(tmp_path: Path, run: Run) -> None:
    """It was a RecursionError traceback, and the import left an empty store behind."""
    line = (
        '{"stream": "account-A1", "type": "AccountOpened", "occurred_at": "2026-03-01T09:00:00Z",'
        ' "data": {"account_id": "A1", "holder_ref": ' + "[" * 1000 + "]" * 1000 + "}}\n"
    )
    source = tmp_path / "deep.jsonl"
    source.write_text(line)
    db = tmp_path / "new.db"
    code, out, err = run("--db", str(db), "import", str(source))
    assert (code, out) == (2, "")
    _one_line(err, "deep.jsonl:1:", "nested")
    assert not db.exists()


def test_importing_the_same_file_twice_adds_nothing(tmp_path: Path, run: Run) -> None:
    lines = [
        json.dumps(
            {
                "stream": "account-A1",
                "type": "AccountOpened",
                "occurred_at": "2026-03-01T09:00:00Z",
                "data": {"account_id": "A1", "holder_ref": "H1"},
            }
        )
    ]
    source = tmp_path / "no-ids.jsonl"
    source.write_text("\n".join(lines) + "\n")
    db = str(tmp_path / "l.db")
    assert run("--db", db, "import", str(source))[0] == 0
    assert run("--db", db, "import", str(source))[0] == 0
    assert _head(db)[0] == 1


# --- outputs never clobber a store -----------------------------------------------------------


def _export_targets(tmp_path: Path, db: str) -> dict[str, str]:
    other = _copy_store(db, tmp_path / "other.db")
    (tmp_path / "link.db").symlink_to(db)
    os.link(db, tmp_path / "hard.db")
    return {
        "same": db,
        "relative": os.path.relpath(db),
        "dotted": str(tmp_path / "." / "ledger.db"),
        "symlink": str(tmp_path / "link.db"),
        "hard-link": str(tmp_path / "hard.db"),
        "wal": db + "-wal",
        "shm": db + "-shm",
        "journal": db + "-journal",
        "another-store": other,
        "another-wal": other + "-wal",
    }


def _copy_store(db: str, target: Path) -> str:
    source = sqlite3.connect(db)
    copy = sqlite3.connect(target)
    try:
        source.backup(copy)
    finally:
        copy.close()
        source.close()
    return str(target)


@pytest.mark.parametrize(
    "which",
    [
        "same",
        "relative",
        "dotted",
        "symlink",
        "hard-link",
        "wal",
        "shm",
        "journal",
        "another-store",
        "another-wal",
    ],
)
def test_export_never_writes_onto_a_store(tmp_path: Path, run: Run, which: str) -> None:
    """`export s.db` replaced the store with its own export."""
    db = _store(tmp_path, run, "credit_suspended_overdue")
    target = _export_targets(tmp_path, db)[which]
    before = _head(db)
    other = tmp_path / "other.db"
    other_before = _head(str(other))
    code, out, err = run("--db", db, "export", target)
    assert (code, out) == (2, "")
    _one_line(err, "refusing to overwrite")
    assert _head(db) == before
    assert _head(str(other)) == other_before
    assert not list(tmp_path.glob("*.partial")) + list(tmp_path.glob(".*.partial"))


def test_export_refuses_a_directory_and_leaves_nothing(tmp_path: Path, run: Run) -> None:
    """`export DIR` left DIR.partial behind."""
    db = _store(tmp_path, run, "credit_suspended_overdue")
    folder = tmp_path / "out"
    folder.mkdir()
    code, out, err = run("--db", db, "export", str(folder))
    assert (code, out) == (2, "")
    _one_line(err, "is a directory")
    assert _names(tmp_path) == ["ledger.db", "out"]
    assert list(folder.iterdir()) == []


def test_export_into_a_missing_directory_is_one_line(tmp_path: Path, run: Run) -> None:
    db = _store(tmp_path, run, "credit_suspended_overdue")
    code, _, err = run("--db", db, "export", str(tmp_path / "missing" / "x.jsonl"))
    assert code == 2
    _one_line(err, "no such directory")
    assert ".partial" not in err


def test_a_failed_export_keeps_the_old_file_and_leaves_no_partial(
    tmp_path: Path, run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = _store(tmp_path, run, "credit_suspended_overdue")
    target = tmp_path / "events.jsonl"
    target.write_text("the old export\n")
    written: list[int] = []

    def failing(record: object) -> bytes:
        written.append(1)
        if len(written) == 3:
            raise OSError(28, "No space left on device")
        return b"{}\n"

    monkeypatch.setattr("replay.commands.exporting.encode_record", failing)
    code, out, err = run("--db", db, "export", str(target))
    assert (code, out) == (2, "")
    _one_line(err, "No space left on device")
    assert target.read_text() == "the old export\n"
    assert _names(tmp_path) == ["events.jsonl", "ledger.db"]


def test_export_writes_a_fifo_directly(tmp_path: Path, run: Run) -> None:
    """`export FIFO` replaced the pipe with a regular file."""
    db = _store(tmp_path, run, "credit_suspended_overdue")
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received: list[bytes] = []
    # Our own end keeps the pipe open whatever the export does, so the reader never hangs:
    # it reads until the export has closed its end and we close ours.
    ours = os.open(fifo, os.O_RDWR)

    def reader() -> None:
        with open(fifo, "rb") as handle:
            received.append(handle.read())

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        code, _, err = run("--db", db, "export", str(fifo))
    finally:
        os.close(ours)
        thread.join()
    assert code == 0, err
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert len(received[0].splitlines()) == _head(db)[0]
    assert _names(tmp_path) == ["ledger.db", "pipe"]


def test_devices_and_stdout_are_streams() -> None:
    for path in ("/dev/null", "/dev/full"):
        assert check_output(path, option="export").kind == "stream"
    assert check_output("-", option="export").kind == "stdout"
    assert check_output("/dev/stdout", option="export").kind == "stdout"


def test_export_replaces_a_file_keeping_its_mode_and_its_symlink(tmp_path: Path, run: Run) -> None:
    db = _store(tmp_path, run, "credit_suspended_overdue")
    target = tmp_path / "events.jsonl"
    target.write_text("old\n")
    target.chmod(0o640)
    link = tmp_path / "latest.jsonl"
    link.symlink_to(target)
    assert run("--db", db, "export", str(link))[0] == 0
    assert link.is_symlink()
    assert len(target.read_text().splitlines()) == _head(db)[0]
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert _names(tmp_path) == ["events.jsonl", "latest.jsonl", "ledger.db"]


def test_simulate_truth_never_overwrites_the_store(tmp_path: Path, run: Run) -> None:
    """`simulate --truth s.db` replaced the store with the truth file."""
    db = str(tmp_path / "sim.db")
    code, out, err = run("--db", db, "simulate", "--payments", "5", "--truth", db)
    assert (code, out) == (2, "")
    _one_line(err, "--truth", "refusing to overwrite the store")
    assert not Path(db).exists()


@pytest.mark.parametrize("truth", ["missing/t.jsonl", "folder"])
def test_simulate_checks_the_truth_path_before_filling_the_store(
    tmp_path: Path, run: Run, truth: str
) -> None:
    """`--truth missing-dir/t.jsonl` failed only after simulating into the store."""
    (tmp_path / "folder").mkdir()
    db = tmp_path / "sim.db"
    code, out, err = run(
        "--db", str(db), "simulate", "--payments", "5", "--truth", str(tmp_path / truth)
    )
    assert (code, out) == (2, "")
    _one_line(err, "--truth")
    assert not db.exists()


def test_simulate_writes_the_truth_once_complete(tmp_path: Path, run: Run) -> None:
    db = str(tmp_path / "sim.db")
    truth = tmp_path / "truth.jsonl"
    code, out, err = run(
        "--db", db, "simulate", "--payments", "40", "--truth", str(truth), "--json"
    )
    assert code == 0, err
    assert len(truth.read_text().splitlines()) == json.loads(out)["failed"]
    assert [name for name in _names(tmp_path) if "partial" in name] == []


# --- option values are checked before anything is read or written ----------------------------


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (("audit", "--limit", "-1"), ["--limit", "at least 1"]),
        (("audit", "--limit", "0"), ["--limit", "at least 1"]),
        (("audit", "--limit", "many"), ["--limit", "not a whole number"]),
        (("audit", "--type", "Nope"), ["--type", "not an event type"]),
        (("audit", "--type", ""), ["--type", "not an event type"]),
        (("audit", "--stream", ""), ["--stream", "must not be empty"]),
        (("audit", "--correlation", ""), ["--correlation", "must not be empty"]),
        (("audit", "--since", "2026-03-01T09:00:00"), ["--since", "no time zone"]),
        (("audit", "--until", "2026-03-01T09:00:00"), ["--until", "no time zone"]),
        (("explain", "--failed", "--since", "2026-03-01T09:00"), ["--since", "no time zone"]),
        (("explain", ""), ["PAYMENT_ID", "must not be empty"]),
        (("warnings", "--since", "2026-03-01T09:00:00"), ["--since", "no time zone"]),
        (("state", "--account", "A1", "--as-of", "2026-03-01T09:00:00"), ["--as-of", "zone"]),
        (("state", "--account", "A1", "--at", "-1"), ["--at", "not a position"]),
        (("state", "--account", ""), ["--account", "must not be empty"]),
        (("timeline", "--payment", ""), ["--payment", "must not be empty"]),
        (("timeline", "--account", ""), ["--account", "must not be empty"]),
        (("whatif", "P1", "--channel", ""), ["--channel", "must not be empty"]),
        (("whatif", "P1", "--channel", "bank_card", "--attempt", "0"), ["--attempt"]),
        (("simulate", "--payments", "0"), ["--payments", "at least 1"]),
        (("simulate", "--payments", "5", "--concurrency", "0"), ["--concurrency"]),
        (("explain",), ["PAYMENT_ID or --failed"]),
        (("timeline",), ["--payment", "--account"]),
        (("nonsense",), ["invalid choice"]),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, tuple) else None,
)
def test_bad_option_values_are_one_line_before_the_store_is_touched(
    tmp_path: Path, run: Run, argv: tuple[str, ...], words: list[str]
) -> None:
    db = tmp_path / "never.db"  # does not exist: a check that opened it would say so instead
    code, out, err = run("--db", str(db), *argv)
    assert (code, out) == (2, "")
    _one_line(err, *words)
    assert not db.exists()


def test_audit_accepts_a_date_as_its_midnight_utc(tmp_path: Path, run: Run) -> None:
    db = _store(tmp_path, run, "credit_suspended_overdue")
    code, out, _ = run(
        "--db", db, "audit", "--since", "2026-02-28", "--until", "2026-02-28T23:59:59Z", "--json"
    )
    assert code == 0
    assert [json.loads(line)["position"] for line in out.splitlines()] == [12, 13, 14]


def test_whatif_refuses_a_channel_nobody_knows(tmp_path: Path, run: Run) -> None:
    """An unknown channel passed every check: "nope would have passed every check"."""
    db = _store(tmp_path, run, "policy_bank_card_only")
    code, out, err = run("--db", db, "whatif", "P-20260301-0007", "--channel", "nope")
    assert (code, out) == (2, "")
    _one_line(err, "--channel", "'nope'")
    assert run("--db", db, "whatif", "P-20260301-0007", "--channel", "balance")[0] == 0


def test_every_option_has_help_that_points_nowhere_internal() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.choices and isinstance(a.choices, dict))
    assert isinstance(sub.choices, dict)
    missing: list[str] = []
    for name, command in sub.choices.items():
        for action in command._actions:
            text = action.help or ""
            where = f"{name} {'/'.join(action.option_strings) or action.dest}"
            if not text.strip():
                missing.append(where)
            assert "CONTRACT" not in text, where
            assert ".md" not in text, where
        assert command.description, name
        assert "CONTRACT" not in command.description, name
    assert missing == []
    assert commands.__name__ == "replay.commands"


# --- errors are one line ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "code", "words"),
    [
        (OSError(13, "Permission denied"), 2, ["payledger: Permission denied"]),
        (FileNotFoundError(2, "No such file", "x.jsonl"), 2, ["x.jsonl: No such file"]),
        (LedgerError("a message\nspread over\r\nlines"), 2, ["a message spread over lines"]),
        (LedgerError(), 2, ["LedgerError"]),
        (NotFoundError("no payment 'P'"), 1, ["no payment 'P'"]),
        (ExceptionGroup("task group", [LedgerError("inside a task group")]), 2, ["inside"]),
    ],
    ids=["oserror", "oserror-file", "multiline", "empty", "not-found", "group"],
)
def test_errors_reaching_the_cli_are_one_line(
    run: Run, monkeypatch: pytest.MonkeyPatch, error: BaseException, code: int, words: list[str]
) -> None:
    async def fail(args: object) -> int:
        raise error

    monkeypatch.setattr("replay.commands.verify.run", fail)
    got, out, err = run("--db", "x.db", "verify")
    assert (got, out) == (code, "")
    _one_line(err, *words)
    assert "payledger: :" not in err


# --- nothing is wrapped, cut or split off a terminal -----------------------------------------


def test_verify_finding_is_one_line_when_piped(tmp_path: Path, run: Run) -> None:
    db = _store(tmp_path, run, "credit_suspended_overdue")
    conn = sqlite3.connect(db)
    try:
        conn.execute("DROP TRIGGER IF EXISTS events_no_update")
        conn.execute(
            "UPDATE events SET data = replace(data, '3000000', '3000001') WHERE position = 4"
        )
        conn.commit()
    finally:
        conn.close()
    code, out, _ = run("--db", db, "verify")
    assert code == 1
    (line,) = out.splitlines()
    assert line.startswith("ALTERED: first bad position 4: ")
    assert line.endswith("checked before it)")


def test_explain_failed_prints_each_summary_whole(tmp_path: Path, run: Run) -> None:
    """The summary column was cut to a few characters a line, dropping some."""
    db = _store(tmp_path, run, "noisy_neighbours")
    code, out, _ = run("--db", db, "explain", "--failed", "--json")
    (doc,) = [json.loads(line) for line in out.splitlines()]
    summary = doc["root_cause"]["summary"]
    assert len(summary) > 80
    code, out, _ = run("--db", db, "explain", "--failed")
    assert code == 0
    assert summary in out
    assert any(doc["payment_id"] in line and summary in line for line in out.splitlines())


def test_timeline_keeps_values_on_one_line(tmp_path: Path, run: Run) -> None:
    """`car_loan_down_payment` was split over two lines."""
    db = _store(tmp_path, run, "credit_suspended_overdue")
    code, out, _ = run("--db", db, "timeline", "--payment", "P-20260301-0007")
    assert code == 0
    requested = next(line for line in out.splitlines() if "PaymentRequested" in line)
    assert "scenario=car_loan_down_payment" in requested
    assert "amount=30,000.00 CNY" in requested


def test_demo_prints_whole_titles(run: Run) -> None:
    code, out, _ = run("demo")
    assert code == 0
    lines = out.splitlines()
    for entry in fixtures.index():
        title = f"{entry.get('title', entry['name'])}  ({entry['name']})"
        assert any(title in line for line in lines), title


def test_piped_output_ignores_columns_in_a_subprocess(tmp_path: Path, run: Run) -> None:
    db = _store(tmp_path, run, "noisy_neighbours")
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "30"}
    done = subprocess.run(
        [sys.executable, "-m", "replay", "--db", db, "explain", "--failed"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "jiebei available credit 7,000.00 CNY was below the 12,000.00 CNY amount" in done.stdout


def test_on_a_terminal_tables_wrap_but_drop_nothing(tmp_path: Path, run: Run) -> None:
    db = _store(tmp_path, run, "noisy_neighbours", "multiple_blockers")

    async def failed() -> list[object]:
        from replay import explain_failed

        async with open_store(db, readonly=True) as store:
            return [e async for e in explain_failed(store)]

    explanations = anyio.run(failed)
    shown = io.StringIO()
    console = OutputConsole(file=shown, terminal=True, width=60, color_system=None)
    render_failed_table(console, explanations)  # type: ignore[arg-type]
    lines = shown.getvalue().splitlines()
    assert max(len(line) for line in lines) <= 60
    text = "".join(c for c in shown.getvalue() if not c.isspace() and c not in "─│")
    for exp in explanations:
        summary = "".join(exp.root_cause.summary.split())  # type: ignore[attr-defined]
        it = iter(text)
        assert all(c in it for c in summary), summary  # in order, none dropped


# --- money, absent fields, counts ------------------------------------------------------------


def test_warnings_print_money(tmp_path: Path, run: Run) -> None:
    db = _store(tmp_path, run, "noisy_neighbours")
    code, out, _ = run("--db", db, "warnings")
    assert code == 0
    assert "repayment overdue 40 days (3,000.00 CNY)" in out
    assert "minor units" not in out


def test_absent_optional_fields_are_not_printed(tmp_path: Path, run: Run) -> None:
    db = _store(tmp_path, run, "channel_outage_ended")
    code, out, _ = run("--db", db, "audit", "--type", "ChannelStatusChanged")
    assert code == 0
    assert "None" not in out
    assert "status=down" in out


def test_counts_agree_in_number(tmp_path: Path, run: Run) -> None:
    db = _store(tmp_path, run, "credit_suspended_overdue")
    assert run("--db", db, "audit", "--limit", "1")[1].rstrip().endswith("\n1 event")
    assert run("--db", db, "audit", "--limit", "2")[1].rstrip().endswith("\n2 events")
    single = str(tmp_path / "one.db")
    source = tmp_path / "one.jsonl"
    source.write_text(
        fixtures.incident_path("credit_suspended_overdue").read_text().splitlines()[0]
    )
    assert run("--db", single, "import", str(source))[0] == 0
    assert run("--db", single, "verify")[1].startswith("ok: 1 event, positions 1-1 gap-free")
    assert "from 1 event " in run("--db", single, "rebuild")[1]


# --- Ctrl-C ----------------------------------------------------------------------------------

_EARLY_SIGINT = """
import importlib, os, signal, sys

TARGET = sys.argv[1]


class Interrupt:
    def find_spec(self, name, path=None, target=None):
        if name == TARGET:
            os.kill(os.getpid(), signal.SIGINT)
        return None


sys.meta_path.insert(0, Interrupt())
module, function = sys.argv[2].split(":")
sys.argv = ["payledger", "demo"]
run = getattr(importlib.import_module(module), function)
sys.exit(run())
"""


def _console_script() -> str:
    with open(REPO / "pyproject.toml", "rb") as handle:
        return str(tomllib.load(handle)["project"]["scripts"]["payledger"])


@pytest.mark.parametrize("module", ["anyio", "rich.console", "msgspec", "replay.engine"])
def test_ctrl_c_while_starting_is_one_line(module: str) -> None:
    """A SIGINT while the program's modules import printed a KeyboardInterrupt traceback."""
    done = subprocess.run(
        [sys.executable, "-c", _EARLY_SIGINT, module, _console_script()],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        check=False,
    )
    assert done.returncode == 130, done.stderr
    assert done.stderr == "payledger: interrupted\n"
    assert done.stdout == ""


def test_ctrl_c_after_the_command_has_finished_keeps_its_answer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Ctrl-C that lands once the command has done its work and said so, while the event
    loop is being torn down (the default executor's threads joined, the loop closed), leaves
    the command's exit code: no bare "interrupted" over a finished import, no unclosed loop's
    traceback at exit. (Found in CI: an import's late Ctrl-C reported "interrupted".)"""
    original = asyncio.BaseEventLoop.shutdown_default_executor
    landed: list[bool] = []

    async def interrupted(self: asyncio.BaseEventLoop, *args: object) -> None:
        os.kill(os.getpid(), signal.SIGINT)
        await asyncio.sleep(0.01)  # the signal's handler runs here
        landed.append(True)
        await original(self, *args)

    monkeypatch.setattr(asyncio.BaseEventLoop, "shutdown_default_executor", interrupted)
    before = signal.getsignal(signal.SIGINT)
    assert main(["keygen", "-o", str(tmp_path / "k")]) == 0
    assert landed == [True]
    assert (tmp_path / "k.pub").exists()
    assert signal.getsignal(signal.SIGINT) is before


def test_ctrl_c_while_running_is_one_line(tmp_path: Path, run: Run) -> None:
    db = _store(tmp_path, run, "noisy_neighbours")
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import payledger_entry; payledger_entry.run()",
            "--db",
            db,
            "warnings",
            "--follow",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert process.stdout is not None
    assert "repayment_overdue" in process.stdout.readline()  # it runs, and now it waits
    process.send_signal(signal.SIGINT)
    _, err = process.communicate()
    assert process.returncode == 130
    assert err == "payledger: interrupted\n"


_EARLY_SIGINT_MODULE = _EARLY_SIGINT.replace(
    """module, function = sys.argv[2].split(":")
sys.argv = ["payledger", "demo"]
run = getattr(importlib.import_module(module), function)
sys.exit(run())""",
    """import runpy
sys.argv = ["replay", "demo"]
runpy.run_module("replay", run_name="__main__", alter_sys=True)""",
)


@pytest.mark.parametrize("module", ["anyio", "msgspec", "replay.engine"])
def test_ctrl_c_while_python_m_replay_starts_is_one_line(module: str) -> None:
    """``python -m replay`` (the contract's other way to run payledger) takes Ctrl-C from its
    first instant too: ``import replay`` loads nothing of the engine."""
    done = subprocess.run(
        [sys.executable, "-c", _EARLY_SIGINT_MODULE, module],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        check=False,
    )
    assert done.returncode == 130, done.stderr
    assert done.stderr == "payledger: interrupted\n"
