"""Reading a store handed over as evidence, and a full disk.

Evidence is a store file of mode 0444 in a directory of mode 0555: every reading command works
on it and writes nothing (no ``-shm``, no ``-wal``), as root too. Root ignores permission bits,
so the store reads a file or directory without write bits as immutable by design (checked as
root directly), and a read-only bind mount, which stops root too, is tested as well.

A full disk (a 2 MiB tmpfs) refuses a write whole with one line saying the disk is full; what
was acknowledged stays, `verify` and the other reading commands work while it is full, and
appends work again once space is freed.
"""

from __future__ import annotations

import contextlib
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import anyio
import pytest
from faults import ROOT, cli, is_root, listing, readonly_bind_mount, tmpfs, write_source
from store_contract import T0, collect

from ledger import DiskFullError, ImportItem, open_store
from ledger.events import ChannelStatusChanged

root_only = pytest.mark.skipif(not is_root(), reason="mounts need root (CI runs as root)")


def _ids(source: Path) -> tuple[str, str]:
    """A payment id and its account id from the source."""
    import json

    for line in source.read_text().splitlines():
        doc = json.loads(line)
        if doc["type"] == "PaymentRequested":
            return doc["data"]["payment_id"], doc["data"]["account_id"]
    raise AssertionError("no payment in the source")


def _readers(payment: str, account: str) -> list[list[str]]:
    return [
        ["verify"],
        ["export"],
        ["explain", payment],
        ["state", "--account", account],
        ["timeline", "--payment", payment],
        ["audit", "--type", "PaymentDeclined"],
        ["stats"],
    ]


@contextmanager
def _evidence(directory: Path) -> Iterator[None]:
    """File 0444, directory 0555 (restored afterwards, so pytest can clean up)."""
    (directory / "ledger.db").chmod(0o444)
    directory.chmod(0o555)
    try:
        yield
    finally:
        directory.chmod(0o755)


@pytest.mark.parametrize("place", ["permission-bits", "read-only-mount"])
def test_reading_commands_work_on_evidence_and_write_nothing(tmp_path: Path, place: str) -> None:
    """verify, export, explain, state, timeline, audit and stats all exit 0 on a 0444 store
    in a 0555 directory (and through a read-only bind mount) and leave the directory exactly
    as it was: no file created, none changed."""
    if place == "read-only-mount" and not is_root():
        pytest.skip("a bind mount needs root (CI runs as root)")
    evidence = tmp_path / "evidence"
    evidence.mkdir()
    source = tmp_path / "in.jsonl"
    write_source(source, 2_000)
    assert cli("--db", str(evidence / "ledger.db"), "import", str(source))[0] == 0
    payment, account = _ids(source)
    with _evidence(evidence):
        before = listing(evidence)
        content = (evidence / "ledger.db").read_bytes()
        if place == "read-only-mount":
            with readonly_bind_mount(evidence, tmp_path / "mounted") as mounted:
                for argv in _readers(payment, account):
                    code, _, err = cli("--db", str(mounted / "ledger.db"), *argv)
                    assert code == 0, (argv, err)
        else:
            for argv in _readers(payment, account):
                code, _, err = cli("--db", str(evidence / "ledger.db"), *argv)
                assert code == 0, (argv, err)
        assert listing(evidence) == before, "a reading command wrote beside the evidence"
        assert (evidence / "ledger.db").read_bytes() == content
        assert stat.S_IMODE((evidence / "ledger.db").stat().st_mode) == 0o444


_CRASH = """
import os, sys, anyio
from datetime import datetime, UTC
from ledger import open_store
from ledger.events import AccountOpened

async def main():
    async with open_store(sys.argv[1]) as store:
        await store.append("account-LATE", [AccountOpened(
            account_id="LATE", holder_ref="h", occurred_at=datetime(2026, 3, 1, tzinfo=UTC))])
        os._exit(0)  # a crash: the event stays in the write-ahead log

anyio.run(main)
"""


@pytest.mark.parametrize("place", ["permission-bits", "read-only-mount"])
def test_events_only_in_the_write_ahead_log_are_never_left_out(tmp_path: Path, place: str) -> None:
    """Evidence copied after a crash, its last event only in the -wal and no -shm beside it:
    reading it needs a -shm, which may not (permission bits, root included) or cannot (a
    read-only mount) be made there. Either the event is read, or one clear line says why not
    (exit 2): never an answer that silently leaves it out, and nothing is written."""
    if place == "read-only-mount" and not is_root():
        pytest.skip("a bind mount needs root (CI runs as root)")
    evidence = tmp_path / "evidence"
    evidence.mkdir()
    db = evidence / "ledger.db"
    assert cli("--db", str(db), "import", "--no-project", str(_source(tmp_path, 50)))[0] == 0
    script = tmp_path / "crash.py"
    script.write_text(_CRASH)
    subprocess.run(
        [sys.executable, str(script), str(db)],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=True,
    )
    (evidence / "ledger.db-shm").unlink()
    assert (evidence / "ledger.db-wal").stat().st_size > 0
    with _evidence(evidence):
        before = listing(evidence)
        if place == "read-only-mount":
            with readonly_bind_mount(evidence, tmp_path / "mounted") as mounted:
                code, out, err = cli("--db", str(mounted / "ledger.db"), "verify", "--json")
        else:
            code, out, err = cli("--db", str(db), "verify", "--json")
        assert listing(evidence) == before, "a reading command wrote beside the evidence"
    if code == 0:
        assert '"head_position":51' in out, "the event in the write-ahead log was left out"
    else:
        assert code == 2
        assert "-shm" in err
        assert len(err.strip().splitlines()) == 1


def _source(tmp_path: Path, events: int) -> Path:
    source = tmp_path / f"in-{events}.jsonl"
    write_source(source, events)
    return source


def _bulky(n: int) -> ChannelStatusChanged:
    return ChannelStatusChanged(
        channel="huabei",
        status="degraded",
        reason=f"{n:06d}" + "r" * 3_000,
        occurred_at=T0 + timedelta(seconds=n),
    )


@root_only
def test_a_full_disk_refuses_whole_says_so_and_reads_still_work(tmp_path: Path) -> None:
    """On a 2 MiB file system: appends until the disk is full. The failing append raises
    DiskFullError whose one-line message says the disk is full; every acknowledged append is
    stored and nothing of the failed one; `verify`, `export` and `stats` work while the disk is
    full; `import` says the disk is full (exit 2); after space is freed appends work again."""
    with tmpfs(tmp_path / "small", "2m") as small:
        db = small / "ledger.db"
        filler = small / "filler"
        filler.write_bytes(b"\0" * 256 * 1024)
        acked: list[int] = []

        async def fill() -> str:
            async with open_store(db) as store:
                for n in range(2_000):
                    try:
                        result = await store.append("channel-huabei", [_bulky(n)])
                    except DiskFullError as e:
                        message = str(e)
                        break
                    acked.extend(result.positions)
                else:
                    raise AssertionError("the disk never filled up")
                assert await store.head() == len(acked)
                assert [r.position for r in await collect(store.read_all())] == acked
                assert (await store.verify()).ok
                return message

        message = anyio.run(fill, backend="asyncio")
        assert "the disk is full" in message
        assert "\n" not in message
        assert acked == list(range(1, len(acked) + 1))
        for argv in (["verify"], ["export"], ["stats"]):
            code, _, err = cli("--db", str(db), *argv)
            assert code == 0, (argv, err)
        code, _, err = cli("--db", str(db), "import", "--no-project", str(_source(tmp_path, 400)))
        assert code == 2
        assert "the disk is full" in err
        assert len(err.strip().splitlines()) == 1
        filler.unlink()

        async def after() -> None:
            async with open_store(db) as store:
                assert await store.head() == len(acked)
                result = await store.append("channel-huabei", [_bulky(9_999)])
                assert result.positions == (len(acked) + 1,)
                assert (await store.verify()).ok

        anyio.run(after, backend="asyncio")


@root_only
def test_an_import_that_fills_the_disk_stores_nothing(tmp_path: Path) -> None:
    """An import larger than the space left fails whole with DiskFullError: the store is as it
    was before it, and verifies."""
    with tmpfs(tmp_path / "small", "2m") as small:
        db = small / "ledger.db"

        async def go() -> None:
            async with open_store(db) as store:
                await store.append("channel-huabei", [_bulky(0)])
                items = (
                    ImportItem(stream="channel-huabei", event=_bulky(n), line=n)
                    for n in range(1, 2_000)
                )
                with pytest.raises(DiskFullError, match="the disk is full"):
                    await store.import_events(items)
                assert await store.head() == 1
                assert (await store.verify()).ok

        anyio.run(go, backend="asyncio")


def _fill(path: Path) -> None:
    """Write ``path`` until the file system has no space left."""
    with path.open("wb", buffering=0) as f, contextlib.suppress(OSError):
        while True:
            f.write(b"\0" * 4096)


@root_only
def test_a_disk_filled_by_others_leaves_the_store_readable(tmp_path: Path) -> None:
    """A store closed cleanly, then its disk filled by another file: `verify`, `export` and
    `stats` still work (nothing needs to be written to read it); an append says the disk is
    full (not "disk I/O error") and stores nothing; once space is freed, appends work."""
    disk_filled_by_others(tmp_path)


def disk_filled_by_others(tmp_path: Path) -> None:
    """The check of :func:`test_a_disk_filled_by_others_leaves_the_store_readable`."""
    with tmpfs(tmp_path / "small", "2m") as small:
        db = small / "ledger.db"

        async def build() -> None:
            async with open_store(db) as store:
                for n in range(20):
                    await store.append("channel-huabei", [_bulky(n)])

        anyio.run(build, backend="asyncio")
        _fill(small / "filler")
        for argv in (["verify"], ["export"], ["stats"]):
            code, _, err = cli("--db", str(db), *argv)
            assert code == 0, (argv, err)

        async def append() -> None:
            async with open_store(db) as store:
                await store.append("channel-huabei", [_bulky(20)])

        with pytest.raises(DiskFullError, match="the disk is full"):
            anyio.run(append, backend="asyncio")
        (small / "filler").unlink()
        anyio.run(append, backend="asyncio")
        code, out, _ = cli("--db", str(db), "verify", "--json")
        assert code == 0
        assert '"head_position":21' in out
