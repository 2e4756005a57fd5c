"""The leaves a :class:`ledger.Checkpointer` keeps beside its notes (one ``checkpoints.leaves``
per directory), on memory, SQLite and PostgreSQL: ``verify --checkpoint`` names the first
rewritten position from any of its notes; a crash between the leaves and the note, a killed
process, a cancellation at any await and a second checkpointer on the same directory all leave
a file whose first *size* leaves fold to the newest note; an edited, short or missing file is
refused in one line by ``verify`` (never a verdict of its own) and written afresh by the next
checkpointer only from a store that still folds to the newest note."""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, BinaryIO, Final

import anyio
import anyio.lowlevel
import pytest
from backends import BACKENDS, Backend
from faults import ROOT, wait_until
from hypothesis import given, settings
from hypothesis import strategies as st
from store_contract import opened

import ledger._checkpoint_dir
import ledger.audit
import ledger.leaves
from ledger import Checkpointer, CheckpointError, check_checkpoint, open_store, verify_checkpoint
from ledger.checkpoint import Checkpoint, generate_key, write_keypair
from ledger.checkpointer import NOTE_NAME
from ledger.codec import decode_line, encode_record
from ledger.leaves import LEAF_SIZE, LEAVES_NAME, LeavesError, LeavesWarning, check_leaves
from ledger.store import EventStore
from replay.cli import main

pytestmark = pytest.mark.anyio

KEY: Final = generate_key()
EXAMPLES: Final = {"memory": 40, "sqlite": 15, "postgres": 10}
"""Hypothesis examples per backend (each a new store and directory)."""
_WRAPPED: Final = ("head", "leaf_hashes", "tree_frontier", "tree_nodes", "wait_for_append")
"""The store calls a cancellation may land on."""


async def _fill(store: EventStore, first: int, count: int) -> None:
    for i in range(first, first + count):
        await store.append(f"account-V{i}", [opened(f"V{i}", minutes=i)])


def _notes(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if NOTE_NAME.fullmatch(p.name))


def _note(path: Path) -> Checkpoint:
    return verify_checkpoint(path.read_bytes(), KEY.public_key())


def _assert_usable(directory: Path, size: int | None = None, *, clean: bool = True) -> Checkpoint:
    """Every note whole and signed, the leaves file's first *size* leaves folding to each
    note's root, and (``clean``) no temporary file left; returns the newest note's
    checkpoint (of ``size`` events, with no leaf past them, when ``size`` is given)."""
    if clean:
        assert not [p.name for p in directory.iterdir() if p.name.endswith(".partial")]
    notes = [_note(p) for p in _notes(directory)]
    assert notes, "no note"
    for note in notes:
        check_leaves(directory / LEAVES_NAME, note.size, note.root_hash)
    newest = notes[-1]
    if size is not None:
        assert newest.size == size
        assert (directory / LEAVES_NAME).stat().st_size == size * LEAF_SIZE
    return newest


async def _signed_run(store: EventStore, directory: Path, batches: list[int]) -> None:
    """A checkpointer every 7 events while ``batches`` of appends come in, and a note after
    each batch (a service signing on demand besides)."""
    checkpointer = Checkpointer(store, KEY, every_events=7, every_seconds=None, directory=directory)
    async with anyio.create_task_group() as tg:
        await tg.start(checkpointer.run)
        first = await store.head() + 1
        for count in batches:
            await _fill(store, first, count)
            first += count
            await checkpointer.sign_now()
        tg.cancel_scope.cancel()


async def _forged(store: EventStore, line: int) -> list[bytes]:
    """The store's export with the event at ``line`` changed (its holder)."""
    lines = [encode_record(rec) async for rec in store.read_all()]
    edited = lines[line - 1].replace(b'"holder_ref":"h-1"', b'"holder_ref":"h-2"')
    assert edited != lines[line - 1]
    lines[line - 1] = edited
    return lines


@asynccontextmanager
async def _imported(backend: Backend, lines: list[bytes]) -> AsyncIterator[tuple[str, EventStore]]:
    async with backend.place() as place, place.open() as store:
        await store.import_events([decode_line(line, n) for n, line in enumerate(lines, 1)])
        yield place.target, store


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


async def test_a_checkpointer_note_names_the_first_rewritten_position(
    backend: Backend, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    notes = tmp_path / "notes"
    notes.mkdir()
    _, public = write_keypair(tmp_path / "k", KEY)
    async with backend.store() as store:
        await _signed_run(store, notes, [3, 9, 1, 14, 13])
        newest = _assert_usable(notes, 40)
        lines = await _forged(store, 23)
        assert (await check_checkpoint(store, newest, note_file=_notes(notes)[-1])).ok
    assert len(_notes(notes)) >= 4
    async with _imported(backend, lines) as (target, forged):
        assert (await forged.verify()).ok  # every chain hash recomputed
        for path in _notes(notes):
            note = _note(path)
            report = await check_checkpoint(forged, note, note_file=path)
            if note.size < 23:
                assert report.ok, report
                continue
            assert (report.ok, report.first_bad_position, report.leaves) == (False, 23, "used")
            assert report.leaves_file == str(notes / LEAVES_NAME)
        if backend.kind == "memory":
            return
        argv = ["--db", target, "verify", "--checkpoint", str(_notes(notes)[-1])]
        argv += ["--public-key", str(public)]
        code, out, err = await anyio.to_thread.run_sync(functools.partial(_cli, capsys, *argv))
        assert code == 1, err
        assert "NOT EXTENDED" in out
        assert "the event at position 23 is not the one it signed" in out


async def test_a_crash_between_the_leaves_and_the_note_is_cut_off_at_the_next_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The leaves appended and synced, then the note's write fails: the next start cuts off the
    leaves no note signs (and a leaf half written), clears the temporary files, and goes on."""
    real = ledger._checkpoint_dir.write_note

    def crash(directory: Path, size: int, note: str) -> Path:
        raise OSError(28, "No space left on device")

    async with Backend("memory").store() as store:
        await _fill(store, 1, 10)
        assert await Checkpointer(store, KEY, directory=tmp_path).sign_now() is not None
        await _fill(store, 11, 5)
        monkeypatch.setattr(ledger._checkpoint_dir, "write_note", crash)
        with pytest.raises(OSError, match="No space"):
            await Checkpointer(store, KEY, directory=tmp_path).sign_now()
        leaves = tmp_path / LEAVES_NAME
        assert leaves.stat().st_size == 15 * LEAF_SIZE  # synced, yet no note signs them
        assert [_note(p).size for p in _notes(tmp_path)] == [10]
        with leaves.open("ab") as f:
            f.write(b"\x07" * 17)  # and a leaf half written
        _assert_usable(tmp_path)  # verify can use it as it is
        (tmp_path / f".checkpoint-{15:020d}.0badf00d.partial").write_text("payledger\n15\n")
        monkeypatch.setattr(ledger._checkpoint_dir, "write_note", real)
        # the next start, with nothing new to sign (the store as the note signed it)
        lines = [encode_record(rec) async for rec in store.read_all()][:10]
        async with _imported(Backend("memory"), lines) as (_, restored):
            # no LeavesWarning (an error under the test settings): the file's prefix was sound
            assert await Checkpointer(restored, KEY, directory=tmp_path).sign_now() is None
        _assert_usable(tmp_path, 10)  # what followed the prefix is cut off, the debris gone
        await _fill(store, 16, 2)
        again = Checkpointer(store, KEY, directory=tmp_path)
        signed = await again.sign_now()
        assert signed is not None
        assert signed.checkpoint.size == 17
        _assert_usable(tmp_path, 17)
        for path in _notes(tmp_path):
            assert (await check_checkpoint(store, _note(path), note_file=path)).ok


async def test_an_edited_short_or_missing_leaves_file_is_refused_and_rebuilt_only_from_the_log(
    backend: Backend, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    notes = tmp_path / "notes"
    notes.mkdir()
    leaves = notes / LEAVES_NAME
    _, public = write_keypair(tmp_path / "k", KEY)
    async with backend.store() as store:
        await _signed_run(store, notes, [20])
        signed = _notes(notes)
        newest_path = signed[-1]
        newest = _assert_usable(notes, 20)
        genuine = leaves.read_bytes()
        lines = await _forged(store, 9)
        edited = bytearray(genuine)
        edited[5 * LEAF_SIZE] ^= 1
        leaves.write_bytes(bytes(edited))
        # the genuine log is not made to look forged: the leaves are not needed
        assert (await check_checkpoint(store, newest, note_file=newest_path)).ok
        async with _imported(backend, lines) as (target, forged):
            report = await check_checkpoint(forged, newest, note_file=newest_path)
            assert (report.ok, report.first_bad_position, report.leaves) == (
                False,
                None,
                "refused",
            )
            assert report.reason is not None
            assert "\n" not in report.reason
            assert "do not fold to the checkpoint's root" in report.reason
            leaves.write_bytes(genuine[: 12 * LEAF_SIZE])
            short = await check_checkpoint(forged, newest, note_file=newest_path)
            assert (short.first_bad_position, short.leaves) == (None, "refused")
            assert short.reason is not None
            assert "holds 12 leaves, fewer than the 20 the checkpoint signs" in short.reason
            if backend.kind != "memory":
                argv = ["--db", target, "verify", "--checkpoint", str(newest_path)]
                argv += ["--public-key", str(public)]
                code, out, _ = await anyio.to_thread.run_sync(
                    functools.partial(_cli, capsys, *argv)
                )
                assert code == 1
                line = next(x for x in out.splitlines() if x.startswith("NOT EXTENDED"))
                assert "the leaves file is set aside" in line
                assert "fewer than the 20" in line
            # a checkpointer on the forged log rebuilds nothing and signs nothing
            leaves.write_bytes(bytes(edited))
            with pytest.raises(CheckpointError, match="does not extend the checkpoint of 20"):
                await Checkpointer(forged, KEY, directory=notes).sign_now()
            assert leaves.read_bytes() == bytes(edited)
            assert _notes(notes) == signed
        # on the genuine log, it says so and writes the file afresh
        with pytest.warns(LeavesWarning, match="do not fold to the newest note's root"):
            assert await Checkpointer(store, KEY, directory=notes).sign_now() is None
        assert leaves.read_bytes() == genuine
        leaves.unlink()
        await _fill(store, 21, 3)
        with pytest.warns(LeavesWarning, match="is missing: written afresh"):
            await Checkpointer(store, KEY, directory=notes).sign_now()
        _assert_usable(notes, 23)


def test_leaves_files_longer_than_the_checkpoint_serve_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--leaves`` (or ``NOTE.leaves``) may hold more leaves than the note signs: its first
    *size* are checked and used, the rest is not read."""
    key, public = write_keypair(tmp_path / "k", KEY)
    db, forged_db = str(tmp_path / "s.db"), str(tmp_path / "f.db")
    old, new = tmp_path / "old.note", tmp_path / "new.note"

    async def grow(first: int, count: int) -> list[bytes]:
        async with open_store(db) as store:
            await _fill(store, first, count)
            return await _forged(store, 4)

    async def forge(lines: list[bytes]) -> None:
        async with open_store(forged_db) as forged:
            await forged.import_events([decode_line(x, n) for n, x in enumerate(lines, 1)])

    anyio.run(grow, 1, 12)
    assert _cli(capsys, "--db", db, "checkpoint", "--key", str(key), "-o", str(old))[0] == 0
    lines = anyio.run(grow, 13, 8)
    assert _cli(capsys, "--db", db, "checkpoint", "--key", str(key), "-o", str(new))[0] == 0
    anyio.run(forge, lines)
    Path(f"{old}.leaves").unlink()
    verify = ["--db", forged_db, "verify", "--checkpoint", str(old), "--public-key", str(public)]
    code, out, _ = _cli(capsys, *verify)
    assert code == 1
    assert "cannot be named without a leaves file" in out
    code, out, _ = _cli(capsys, *verify, "--leaves", f"{new}.leaves")
    assert code == 1
    assert "the event at position 4 is not the one it signed" in out
    Path(f"{new}.leaves").rename(f"{old}.leaves")  # 20 leaves beside a note of 12
    code, out, _ = _cli(capsys, *verify, "--json")
    assert code == 1
    assert '"first_bad_position":4' in out.replace(" ", "")
    with pytest.raises(LeavesError, match="holds 20 leaves, fewer than the 21"):
        check_leaves(f"{old}.leaves", 21, b"\0" * 32)


async def test_two_checkpointers_on_one_directory_take_turns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two service instances signing into one directory. One is held after appending its
    leaves, before syncing them; the other, with more events to sign, waits for the
    directory's lock (without it, it would append past the first's leaves, which would then
    cut the file back under its note) and goes on from the first one's note."""
    held, release = threading.Event(), threading.Event()
    real = ledger._checkpoint_dir.LeavesLog._finish

    def finish(f: BinaryIO) -> None:
        if not held.is_set():
            held.set()
            release.wait(30)
        real(f)

    monkeypatch.setattr(ledger._checkpoint_dir.LeavesLog, "_finish", staticmethod(finish))
    async with Backend("memory").store() as store:
        await _fill(store, 1, 10)
        first, second = (Checkpointer(store, KEY, directory=tmp_path) for _ in range(2))
        done: list[int] = []

        async def sign(checkpointer: Checkpointer) -> None:
            signed = await checkpointer.sign_now()
            assert signed is not None
            done.append(signed.checkpoint.size)

        async with anyio.create_task_group() as tg:
            tg.start_soon(sign, first)
            try:
                await anyio.to_thread.run_sync(held.wait, 30)
                await _fill(store, 11, 5)
                tg.start_soon(sign, second)
                await anyio.sleep(0.2)
                assert done == []  # the second waits for the directory
            finally:
                release.set()
        assert done == [10, 15]
        _assert_usable(tmp_path, 15)
        # and side by side, each signing after every event
        await _fill(store, 16, 5)
        one, two = (
            Checkpointer(store, KEY, every_events=1, every_seconds=None, directory=tmp_path)
            for _ in range(2)
        )
        async with anyio.create_task_group() as tg:
            await tg.start(one.run)
            await tg.start(two.run)
            for i in range(21, 60, 3):
                await _fill(store, i, 3)
                await anyio.lowlevel.checkpoint()
            await one.sign_now()
            await two.sign_now()
            tg.cancel_scope.cancel()
        _assert_usable(tmp_path, 59)


@pytest.mark.parametrize("backend", BACKENDS, indirect=True)
def test_cancelled_at_any_await_the_leaves_prefix_folds_to_the_newest_note(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The checkpointer and the appends beside it cancelled at the n-th call to the store
    that hypothesis chooses (pages of a few leaves, so a cancellation lands between them):
    only whole notes, the leaves file's prefix folds to the newest, and a new checkpointer goes
    on with no warning."""
    monkeypatch.setattr(ledger._checkpoint_dir, "PAGE", 3)

    @settings(max_examples=EXAMPLES[backend.kind], deadline=None)
    @given(
        cancel_at=st.integers(1, 40),
        every=st.integers(1, 9),
        batches=st.lists(st.integers(1, 12), min_size=1, max_size=5),
    )
    def check(cancel_at: int, every: int, batches: list[int]) -> None:
        async def go() -> None:
            with tempfile.TemporaryDirectory(prefix="payledger-cp-") as tmp:
                directory = Path(tmp)
                async with backend.place() as place, place.open() as store:
                    await _fill(store, 1, 4)
                    await _cancelled(store, directory, cancel_at, every, batches)
                    if _notes(directory):
                        _assert_usable(directory)
                    signed = await Checkpointer(store, KEY, directory=directory).sign_now()
                    head = await store.head()
                    assert signed is None or signed.checkpoint.size == head
                    _assert_usable(directory, head)

        anyio.run(go, backend="asyncio")

    check()


async def _cancelled(
    store: EventStore, directory: Path, cancel_at: int, every: int, batches: list[int]
) -> None:
    calls = 0
    with anyio.CancelScope() as scope, anyio.fail_after(60):

        def counted(name: str) -> Callable[..., Awaitable[Any]]:
            real = getattr(store, name)

            async def call(*args: Any, **kwargs: Any) -> Any:
                nonlocal calls
                calls += 1
                if calls == cancel_at:
                    scope.cancel()
                    await anyio.lowlevel.checkpoint()
                return await real(*args, **kwargs)

            return call

        for name in _WRAPPED:
            setattr(store, name, counted(name))
        try:
            checkpointer = Checkpointer(
                store, KEY, every_events=every, every_seconds=None, directory=directory
            )
            async with anyio.create_task_group() as tg:
                await tg.start(checkpointer.run)
                first = 5
                for count in batches:
                    await _fill(store, first, count)
                    first += count
                    for _ in range(count):  # the checkpointer's turn
                        await anyio.lowlevel.checkpoint()
                await checkpointer.sign_now()
                tg.cancel_scope.cancel()
        finally:
            for name in _WRAPPED:
                delattr(store, name)


_CHILD: Final = textwrap.dedent(
    """
    import sys
    from datetime import UTC, datetime

    import anyio

    from ledger import Checkpointer, open_store
    from ledger.checkpoint import load_private_key
    from ledger.events import AccountOpened

    async def main(db, key, directory):
        async with open_store(db) as store:
            checkpointer = Checkpointer(
                store, load_private_key(key), every_events=1, every_seconds=None,
                directory=directory,
            )
            async with anyio.create_task_group() as tg:
                await tg.start(checkpointer.run)
                i = await store.head()
                while True:
                    i += 1
                    opened = AccountOpened(
                        account_id=f"K{i}", holder_ref="h", occurred_at=datetime.now(UTC)
                    )
                    await store.append(f"account-K{i}", [opened])
                    await anyio.sleep(0)

    anyio.run(main, *sys.argv[1:])
    """
)


@pytest.mark.slow
def test_a_killed_checkpointer_leaves_whole_notes_and_a_usable_prefix(tmp_path: Path) -> None:
    """SIGKILL at moments spread over the run, three times over the same store and directory:
    every note whole, the leaves file's prefix folds to the newest, and the next start goes
    on with no warning."""
    key, _ = write_keypair(tmp_path / "k", KEY)
    db, notes, child = tmp_path / "s.db", tmp_path / "notes", tmp_path / "child.py"
    notes.mkdir()
    child.write_text(_CHILD)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for delay in (0.05, 0.2, 0.4):
        before = len(_notes(notes))
        proc = subprocess.Popen(
            [sys.executable, str(child), str(db), str(key), str(notes)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            wait_until(lambda: len(_notes(notes)) > before + 1, "the child's notes")  # noqa: B023
            time.sleep(delay)
        finally:
            os.kill(proc.pid, signal.SIGKILL)
            _, err = proc.communicate(timeout=30)
        assert b"Traceback" not in err, err.decode()
        _assert_usable(notes, clean=False)  # a temporary file may be left: the next start clears it

    async def resume() -> None:
        async with open_store(str(db)) as store:
            await Checkpointer(store, KEY, directory=notes).sign_now()
            _assert_usable(notes, await store.head())
            for path in _notes(notes):
                assert (await check_checkpoint(store, _note(path), note_file=path)).ok

    anyio.run(resume)


async def test_a_leaves_file_changed_in_place_after_its_check_names_no_position(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The leaves are checked to fold to the signed root, then read again to compare: a file
    changed in place between the two (its writer racing the verifier, or a file system that
    serves other bytes on a second read) must not name a position. Here the forged log's chain
    hashes 9 to 14 are written over the genuine ones after the check: comparing them would
    name 15, hiding that the log was rewritten from 9."""
    notes = tmp_path / "notes"
    notes.mkdir()
    leaves = notes / LEAVES_NAME
    async with Backend("memory").store() as store:
        await _signed_run(store, notes, [20])
        newest = _assert_usable(notes, 20)
        newest_path = _notes(notes)[-1]
        genuine = leaves.read_bytes()
        lines = await _forged(store, 9)
    async with _imported(Backend("memory"), lines) as (_, forged):
        forged_leaves = await forged.leaf_hashes(9, 14)
        real_open = ledger.leaves.open_leaves

        def open_then_overwrite(path: Any, size: int, root: bytes) -> BinaryIO:
            checked = real_open(path, size, root)
            with open(path, "r+b") as f:  # the same file, changed in place
                f.seek(8 * LEAF_SIZE)
                f.write(b"".join(forged_leaves))
            return checked

        monkeypatch.setattr(ledger.audit, "open_leaves", open_then_overwrite)
        report = await check_checkpoint(forged, newest, note_file=newest_path)
        assert (report.ok, report.first_bad_position, report.leaves) == (False, None, "refused")
        assert report.reason is not None
        assert "\n" not in report.reason
        assert "changed while it was read" in report.reason
        # the genuine file, left as it is, names 9
        monkeypatch.setattr(ledger.audit, "open_leaves", real_open)
        leaves.write_bytes(genuine)
        report = await check_checkpoint(forged, newest, note_file=newest_path)
        assert (report.first_bad_position, report.leaves) == (9, "used")


async def test_a_leaves_file_that_is_not_a_regular_file_is_set_aside_at_once(
    tmp_path: Path,
) -> None:
    """A FIFO named ``checkpoints.leaves`` beside the notes (or given as ``--leaves``) would
    hold ``verify`` on a forged log until something writes to it: it is set aside at once."""
    notes = tmp_path / "notes"
    notes.mkdir()
    async with Backend("memory").store() as store:
        await _signed_run(store, notes, [6])
        newest, newest_path = _assert_usable(notes, 6), _notes(notes)[-1]
        lines = await _forged(store, 3)
    (notes / LEAVES_NAME).unlink()
    os.mkfifo(notes / LEAVES_NAME)
    unblock = threading.Timer(5, lambda: (notes / LEAVES_NAME).open("wb").close())
    unblock.start()  # lets a reader blocked in open() go on, so that this fails, not hangs
    try:
        async with _imported(Backend("memory"), lines) as (_, forged):
            started = time.monotonic()
            report = await check_checkpoint(forged, newest, note_file=newest_path)
            assert time.monotonic() - started < 4
            for given in (notes / LEAVES_NAME, notes):
                also = await check_checkpoint(forged, newest, leaves=given)
                assert also.leaves == "refused"
                assert also.reason is not None
                assert f"the leaves file {given} is not a regular file" in also.reason
    finally:
        unblock.cancel()
    assert (report.ok, report.first_bad_position, report.leaves) == (False, None, "refused")
    assert report.reason is not None
    assert "is not a regular file" in report.reason
