"""A store appears at its path whole or not at all, and nothing deletes or replaces a store
another process may be using: many processes creating one store at once, an import that fails
into a new path while another process uses it, projections that never create a file."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import anyio
import pytest
from faults import ROOT, spawn_cli, wait_until, write_source
from store_contract import collect, opened, requested

from ledger import StoreError, open_store
from projections import Projector

_OPENER = """
import os, sys, time, anyio
from datetime import datetime, UTC
from ledger import open_store
from ledger.events import AccountOpened

directory, me, rounds, flags = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
T = datetime(2026, 3, 1, tzinfo=UTC)

async def main():
    for r in range(rounds):
        while not os.path.exists(os.path.join(flags, f"go{r}")):
            time.sleep(0.0005)  # spin: every process starts the round at once
        async with open_store(os.path.join(directory, f"round{r}.db")) as store:
            await store.append(f"account-{me}", [AccountOpened(
                account_id=me, holder_ref="h", occurred_at=T)])
        open(os.path.join(flags, f"done{r}-{me}"), "w").close()

anyio.run(main)
"""


@pytest.mark.slow
def test_many_processes_create_one_store_at_once(tmp_path: Path) -> None:
    """8 processes open the same new store path, round after round (a barrier starts each
    round), each then appending one event: every open succeeds (never "not a payledger
    store", never busy at once), every store ends with exactly 8 events, verifies, and no
    private file is left behind."""
    race_to_create(tmp_path, processes=8, rounds=25)


def race_to_create(tmp_path: Path, *, processes: int, rounds: int) -> None:
    """The creation race of :func:`test_many_processes_create_one_store_at_once`."""
    script = tmp_path / "opener.py"
    script.write_text(_OPENER)
    flags = tmp_path / "flags"
    flags.mkdir()
    stores = tmp_path / "stores"
    stores.mkdir()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(stores), f"P{i}", str(rounds), str(flags)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for i in range(processes)
    ]
    for r in range(rounds):  # a barrier per round: the processes race on each new path
        (flags / f"go{r}").touch()
        wait_until(
            lambda r=r: (
                len(list(flags.glob(f"done{r}-*"))) == processes
                or any(p.poll() is not None for p in procs)
            ),
            f"round {r}",
            limit=120,
        )
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err.decode()

    async def check(path: Path) -> None:
        async with open_store(path, readonly=True) as store:
            assert await store.head() == processes, path
            assert (await store.verify()).ok

    for r in range(rounds):
        anyio.run(check, stores / f"round{r}.db", backend="asyncio")
    leftovers = [p.name for p in stores.iterdir() if p.name.startswith(".")]
    assert leftovers == [], "private files of store creation were left behind"


def test_a_stray_write_ahead_log_blocks_creation(tmp_path: Path) -> None:
    """A -wal left by a store that was deleted would be replayed into a new store at the same
    path: creation refuses, and creates nothing."""
    path = tmp_path / "ledger.db"
    (tmp_path / "ledger.db-wal").write_bytes(b"\x37\x7f\x06\x82" + bytes(28))

    async def go() -> None:
        async with open_store(path):
            pass

    with pytest.raises(StoreError, match="-wal"):
        anyio.run(go, backend="asyncio")
    assert not path.exists()


@pytest.mark.slow
def test_a_failed_import_never_deletes_a_store_another_process_uses(tmp_path: Path) -> None:
    """`payledger import` into a path with no store, reading slowly from stdin; meanwhile
    another process opens the (new) store there and appends; then the import meets a bad line
    and fails. The other process's acknowledged append survives: the failed import deleted
    nothing, and left no file of its own."""
    failed_import_beside_another_writer(tmp_path)


def failed_import_beside_another_writer(tmp_path: Path) -> None:
    """The clean-up race: see the test that calls it."""
    db = tmp_path / "new.db"
    source = tmp_path / "in.jsonl"
    write_source(source, 200)
    lines = source.read_bytes().splitlines(keepends=True)
    proc = spawn_cli("--db", str(db), "import", "-", stdin=subprocess.PIPE)
    assert proc.stdin is not None
    proc.stdin.write(b"".join(lines[:100]))
    proc.stdin.flush()
    # the import has begun once it has a file of its own in the directory (or at the path)
    wait_until(
        lambda: any(p.name != "in.jsonl" for p in tmp_path.iterdir()) or proc.poll() is not None,
        "the import to start",
    )
    time.sleep(0.2)  # (not asserted on: the outcome is the same whenever the append lands)

    async def append() -> int:
        async with open_store(db) as store:
            result = await store.append("account-OTHER", [opened("OTHER")])
            return result.positions[0]

    position = anyio.run(append, backend="asyncio")
    _, err = proc.communicate(b"".join(lines[100:]) + b'{"stream": "payment-X"\n', timeout=120)
    assert proc.returncode == 2, err.decode()
    assert db.exists(), "the failed import deleted a store another process had appended to"

    async def check() -> None:
        async with open_store(db, readonly=True) as store:
            records = await collect(store.read_all())
            assert [(r.position, r.stream) for r in records] == [(position, "account-OTHER")]
            assert (await store.verify()).ok

    anyio.run(check, backend="asyncio")
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


@pytest.mark.anyio
async def test_projections_never_create_a_file(tmp_path: Path) -> None:
    """The projector opens nothing of its own: it writes through the store's connections
    (:mod:`ledger.states`). A store moved (or deleted) while open is caught up where it is, no
    file appears at the old path, and a foreign database put at that path is left alone."""
    db = tmp_path / "ledger.db"
    async with open_store(db) as store:
        await store.append("payment-P1", [requested("P1")])
        db.rename(tmp_path / "moved.db")
        async with Projector.open(store) as projector:
            assert await projector.catch_up() == 1
        assert not db.exists(), "the projector created a file at the store's path"
        conn = sqlite3.connect(db)
        conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY)")
        conn.commit()
        conn.close()
        async with Projector.open(store) as projector:
            await projector.rebuild()
    conn = sqlite3.connect(db)
    try:
        names = [n for (n,) in conn.execute("SELECT name FROM sqlite_master")]
    finally:
        conn.close()
    assert names == ["customers"], "the projector made tables in a foreign database"


def test_a_failed_import_into_a_new_path_leaves_no_file(tmp_path: Path) -> None:
    """The import builds a new store privately and links it into place only once it has
    committed: a bad line leaves nothing at the path, nor beside it."""
    db = tmp_path / "new.db"
    source = tmp_path / "in.jsonl"
    write_source(source, 50)
    source.write_bytes(source.read_bytes() + b"{not json\n")
    proc = spawn_cli("--db", str(db), "import", str(source))
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2
    assert f"{source}:51" in err.decode()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl"]


def test_an_import_whose_new_path_is_taken_meanwhile_goes_into_that_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """If another process makes a store at the path while `payledger import` builds its new
    store privately, the link fails (it never replaces a file) and the events go into the
    store that is there, after what it holds; no private file is left."""
    from ledger._sqlite.schema import create_store_file
    from replay.cli import main
    from replay.commands import importing

    db = tmp_path / "new.db"
    source = tmp_path / "in.jsonl"
    write_source(source, 30)

    def taken(src: str, dst: str) -> None:
        create_store_file(dst)  # another process won the path, and appended
        other = threading.Thread(target=anyio.run, args=(_append_other, Path(dst)))
        other.start()
        other.join()
        os.link(src, dst)  # raises FileExistsError, as a link to a taken path does

    monkeypatch.setattr(importing, "_link", taken)
    assert main(["--db", str(db), "import", "--no-project", str(source)]) == 0
    assert "imported 30 events (positions 2-31)" in capsys.readouterr().out

    async def check() -> None:
        async with open_store(db, readonly=True) as store:
            records = await collect(store.read_all())
            assert records[0].stream == "account-OTHER"
            assert len(records) == 31
            assert (await store.verify()).ok

    anyio.run(check, backend="asyncio")
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


async def _append_other(db: Path) -> None:
    async with open_store(db) as store:
        await store.append("account-OTHER", [opened("OTHER")])
