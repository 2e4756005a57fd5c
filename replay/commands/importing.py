"""``payledger --db P import FILE``: append every event of a JSON Lines file, atomically.

All or nothing, also when interrupted: a Ctrl-C (or any cancellation) before the import's
``COMMIT`` rolls it back, one during or after it leaves it committed, and the command says which
on one line and exits 130.

An import into a path where no store exists builds the new store in a private file beside it
(``.<name>.<random>.importing``), its projections caught up there too, and links it into place,
complete, only once both are done; a failed or interrupted import leaves no file behind, and
deletes nothing at the path. Nobody else can see that file, so it is written without a
write-ahead log and without waiting for the disk (each page once: ``SQLiteEventStore.open``'s
``private``), then fsynced before the link. If another process made a store at the path
meanwhile, the events go into that store instead (one more import, all or nothing, against
what it holds).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import uuid
from collections.abc import AsyncIterator
from typing import Any, BinaryIO

import anyio

from ledger import ImportItem, ImportResult, SQLiteEventStore, open_store
from ledger.codec import read_lines
from ledger.errors import FormatError, StoreError
from projections import Projector

from ..render import plural
from ._common import add_command, console, err_console, print_json, require_db

EXIT_INTERRUPTED = 130


def register(sub: Any) -> None:
    parser = add_command(
        sub, "import", "append every event of a JSON Lines file atomically ('-': stdin)", run
    )
    parser.add_argument(
        "file",
        metavar="FILE",
        help="a JSON Lines file of events ('-': standard input); lines without an event_id get "
        "ids derived from the line, so importing the same file again adds nothing",
    )
    parser.add_argument(
        "--no-project",
        action="store_true",
        help="append only; leave the projection tables to a later `rebuild` or catch-up",
    )


class _Outcome:
    """What the import has done so far, for the report of an interruption."""

    committed: ImportResult | None = None
    projected = False


def _is_file(db: str) -> bool:
    return db != ":memory:" and "://" not in db


def _interrupted() -> bool:
    """Whether this command's task was asked to stop (Ctrl-C cancels it) while it finished."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def _fsync(path: str, *, directory: bool = False) -> None:
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    try:
        os.fsync(fd)
    except OSError:
        if not directory:
            raise
    finally:
        os.close(fd)


def _link(source: str, target: str) -> None:
    """A hard link: never replaces a file, fails if ``target`` is taken."""
    os.link(source, target)


async def _records_as_items(path: str) -> AsyncIterator[ImportItem]:
    async with open_store(path, readonly=True) as store:
        async for rec in store.read_all():
            yield ImportItem(
                stream=rec.stream,
                event=rec.event,
                event_id=rec.event_id,
                correlation_id=rec.correlation_id,
                causation_id=rec.causation_id,
                recorded_at=rec.recorded_at,
                line=rec.position,
                source=path,
            )


async def _import_new(db: str, items: Any, outcome: _Outcome, project: bool) -> ImportResult:
    """Import into a private new store (with its projections when ``project``), then link it
    to ``db`` (see the module docstring)."""
    target = await anyio.Path(db).absolute()
    directory, name = str(target.parent), target.name
    private = os.path.join(directory, f".{name}.{uuid.uuid4().hex[:12]}.importing")
    try:
        built = await SQLiteEventStore.open(private, private=True)
        try:
            result = await built.import_events(items)
            if project:
                async with Projector.open(built) as projector:
                    await projector.catch_up()
        finally:
            with anyio.CancelScope(shield=True):
                await built.aclose()
        if await anyio.Path(private + "-wal").exists():
            raise StoreError(f"{db}: the new store could not be written whole")
        await anyio.to_thread.run_sync(_fsync, private)
        try:
            _link(private, db)
        except OSError:  # taken meanwhile, or no hard links here: import into the store there
            async with open_store(db) as store:
                result = await store.import_events(_records_as_items(private))
            outcome.committed = result
        else:  # in the store at its path from the link on: said so before anything is awaited
            outcome.committed, outcome.projected = result, project
            await anyio.to_thread.run_sync(lambda: _fsync(directory, directory=True))
        return result
    finally:
        with anyio.CancelScope(shield=True):
            for suffix in ("", "-wal", "-shm"):
                await anyio.Path(private + suffix).unlink(missing_ok=True)


async def _import(
    args: argparse.Namespace, db: str, handle: BinaryIO, source: str, outcome: _Outcome
) -> ImportResult:
    items = read_lines(handle, source, derive_ids=True)
    if _is_file(db) and not await anyio.Path(db).exists():
        result = await _import_new(db, items, outcome, not args.no_project)
    else:
        async with open_store(db) as store:
            result = await store.import_events(items)
            outcome.committed = result
    if not args.no_project and not outcome.projected:
        # Bring the persisted read models up to date (on every backend).
        async with open_store(db) as store, Projector.open(store) as projector:
            await projector.catch_up()
        outcome.projected = True
    return result


def _report_interruption(outcome: _Outcome, source: str) -> int:
    result = outcome.committed
    if result is None:
        err_console.print(
            f"payledger: interrupted; nothing of {source} was imported "
            "(the import was rolled back: the store is as it was)",
            soft_wrap=True,
        )
        return EXIT_INTERRUPTED
    where = (
        f" (positions {result.first_position}-{result.last_position})" if result.appended else ""
    )
    projections = (
        "the projections are up to date"
        if outcome.projected
        else "the projections were not brought up to date (`payledger rebuild` does it)"
    )
    err_console.print(
        f"payledger: interrupted; the import of {source} was committed: "
        f"{plural(result.appended, 'event')} appended{where}, {result.skipped} already stored; "
        f"{projections}",
        soft_wrap=True,
    )
    return EXIT_INTERRUPTED


async def run(args: argparse.Namespace) -> int:
    source = "<stdin>" if args.file == "-" else args.file
    # Open the input before the store, so that a missing file leaves no new store behind.
    if args.file == "-":
        handle: BinaryIO = sys.stdin.buffer
    else:
        try:
            handle = open(args.file, "rb")  # noqa: SIM115, ASYNC230 - streamed in the import
        except OSError as e:
            raise FormatError(0, f"cannot read the file: {e.strerror}", source=source) from e
    db = require_db(args)
    outcome = _Outcome()
    try:
        try:
            result = await _import(args, db, handle, source, outcome)
        finally:
            if handle is not sys.stdin.buffer:
                handle.close()
    except anyio.get_cancelled_exc_class():  # Ctrl-C: the store is as before or as after
        return _report_interruption(outcome, source)
    if _interrupted():  # Ctrl-C while the commit was finishing: it finished
        return _report_interruption(outcome, source)
    if args.json:
        print_json(result)
    else:
        console.print(
            f"imported {plural(result.appended, 'event')}"
            + (
                f" (positions {result.first_position}-{result.last_position})"
                if result.appended
                else ""
            )
            + (f", skipped {result.skipped} already stored" if result.skipped else "")
        )
    return 0
