"""``payledger --db P verify``: check everything the other commands trust.

1. The log: the file's own integrity (SQLite's check, or the database's), gap-free positions,
   gap-free stream versions, the hash chain, the head.
2. The persisted projections: every row against a fold of the log up to their checkpoint, so an
   edited row is named (nothing answers from those rows: this says whether they can be given to
   anyone who reads them directly).

Exit 0 when both hold; 1 (a finding) naming the first bad position or row otherwise.
"""

from __future__ import annotations

import argparse
from typing import Any

import msgspec
from rich.markup import escape

from ledger.records import IntegrityReport
from projections.check import ProjectionReport, check_projections

from ..render import plural
from ._common import add_command, console, open_db, print_json


class VerifyDocument(msgspec.Struct, frozen=True, kw_only=True):
    """``verify --json``: the log's report, its keys at the top, and the projections'."""

    ok: bool
    checked: int
    head_position: int
    head_hash: str
    first_bad_position: int | None
    reason: str | None
    damaged: str | None
    projections: ProjectionReport | None
    """``None`` when the log itself failed (its projections are not compared then)."""


def register(sub: Any) -> None:
    add_command(
        sub,
        "verify",
        "check the store's integrity: the file, gap-free positions and versions, the hash "
        "chain, and the persisted projections against a fold of the log",
        run,
    )


def _log_line(report: IntegrityReport) -> str:
    if report.ok:
        positions = f"positions 1-{report.head_position}" if report.head_position else "no events"
        return (
            f"[green]ok[/green]: {plural(report.checked, 'event')}, {positions} gap-free, "
            f"hash chain intact\nhead {report.head_hash}"
        )
    where = (
        f"first bad position {report.first_bad_position}"
        if report.first_bad_position is not None
        else "damage no position can be tied to"
    )
    label = "DAMAGED" if report.damaged else "ALTERED"
    return (
        f"[red]{label}[/red]: {where}: {escape(report.reason or 'unknown reason')} "
        f"({plural(report.checked, 'event')} checked before it)"
    )


def _projection_line(report: ProjectionReport) -> str:
    if report.ok:
        if report.rows == 0:
            return f"projections: {escape(report.reason or 'none persisted')}"
        return (
            f"[green]ok[/green]: projections: {plural(report.rows, 'row')} agree with the log "
            f"up to position {report.checkpoint}"
        )
    what = f"row {report.kind} {report.key!r}" if report.kind is not None else "the projections"
    return (
        f"[red]ALTERED[/red]: projection {escape(what)} (position {report.position}): "
        f"{escape(report.reason or 'differs')}; `payledger rebuild` folds them again from the log"
    )


async def run(args: argparse.Namespace) -> int:
    async with open_db(args) as store:
        report = await store.verify()
        projections = await check_projections(store) if report.ok else None
    ok = report.ok and (projections is None or projections.ok)
    if args.json:
        print_json(
            VerifyDocument(
                ok=ok,
                checked=report.checked,
                head_position=report.head_position,
                head_hash=report.head_hash,
                first_bad_position=report.first_bad_position,
                reason=report.reason,
                damaged=report.damaged,
                projections=projections,
            )
        )
    else:
        console.print(_log_line(report))
        if projections is not None:
            console.print(_projection_line(projections))
    return 0 if ok else 1
