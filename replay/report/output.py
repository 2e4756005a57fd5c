"""Where a report goes: through the one rule for every output path (:mod:`replay.output`):
standard output (``-``), a pipe or a device written directly, or a file written atomically (a
temporary file in the same folder, flushed to disk, then renamed), never onto a store."""

from __future__ import annotations

from ..output import OutputTarget, check_output, open_output

__all__ = ["check_target", "write_output"]


def check_target(target: str, db: str | None) -> OutputTarget:
    """Raise :class:`~ledger.errors.LedgerError` when ``-o target`` could destroy a store or
    cannot be written; before anything is computed."""
    return check_output(target, option="-o", db=db)


def write_output(target: str, content: bytes, db: str | None = None) -> None:
    """Write ``content`` to ``target`` (see the module docstring): a reader never sees half a
    report, and a failure leaves ``target`` as it was."""
    with open_output(check_target(target, db)) as out:
        out.write(content)
