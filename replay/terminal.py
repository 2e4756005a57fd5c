"""The terminal side of the replay commands: a console as wide as the terminal on a terminal
and unbounded anywhere else (so ``grep`` finds every value whole), headings, the progress bar
of long passes, and the timestamps given on the command line."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from typing import Any, Final

from rich.cells import cell_len
from rich.console import Console, ConsoleDimensions
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.rule import Rule
from rich.text import Text

from ledger.errors import LedgerError

__all__ = ["OutputConsole", "heading", "on_terminal", "parse_timestamp", "progress_bar"]

# --- consoles ------------------------------------------------------------------------------

_UNBOUNDED: Final = 1_000_000
"""The width of a console that is not a terminal: wider than any line payledger prints."""


class OutputConsole(Console):
    """A rich console as wide as the terminal on a terminal, and unbounded anywhere else.

    ``terminal``: force the decision (tests); by default it is whether the console's file is a
    terminal now (the file is looked up at each print, so a redirected ``sys.stdout`` counts).
    ``$COLUMNS`` and an explicit ``width`` apply on a terminal only.
    """

    def __init__(self, *, terminal: bool | None = None, **options: Any) -> None:
        super().__init__(**options)
        self._on_terminal = terminal

    @property
    def on_terminal(self) -> bool:
        if self._on_terminal is not None:
            return self._on_terminal
        isatty = getattr(self.file, "isatty", None)
        try:
            return bool(isatty is not None and isatty())
        except ValueError:  # a closed file
            return False

    @property
    def size(self) -> ConsoleDimensions:
        dimensions = super().size
        if self.on_terminal:
            return dimensions
        return ConsoleDimensions(_UNBOUNDED, dimensions.height)

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        self._width, self._height = new_size


def on_terminal(console: Console) -> bool:
    """Whether ``console`` writes to a terminal (and so has a width to fit)."""
    if isinstance(console, OutputConsole):
        return console.on_terminal
    return console.is_terminal


def heading(console: Console, title: str = "") -> None:
    """A rule with ``title`` across a terminal; elsewhere the whole title on one line."""
    if not on_terminal(console):
        line = f"── {title} " if title else ""
        console.print(Text(line + "─" * max(3, 80 - cell_len(line))))
    elif cell_len(title) + 4 <= console.width:
        console.print(Rule(Text(title, style="bold")))
    else:  # a rule would cut the title
        console.print(Rule())
        console.print(Text(title, style="bold"))


# --- input ---------------------------------------------------------------------------------


_DATE: Final = re.compile(r"\d{4}-\d{2}-\d{2}")


def parse_timestamp(text: str, option: str) -> datetime:
    """An RFC 3339 timestamp with its zone (``2026-03-01T09:00:00Z``, ``...T17:00:00+08:00``),
    or a date alone (``2026-03-01``: that day's midnight UTC).

    A time without a zone (``2026-03-01T09:00:00``) is refused rather than guessed. Raises
    :class:`~ledger.errors.LedgerError` (exit 2) naming the option for anything else.
    """
    value = text.strip()
    shown = text if len(text) <= 60 else text[:57] + "..."
    try:
        if _DATE.fullmatch(value):
            day = date.fromisoformat(value)
            return datetime(day.year, day.month, day.day, tzinfo=UTC)
        moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
        if moment.tzinfo is None:
            raise LedgerError(
                f"{option}: {shown!r} has no time zone: add Z for UTC (e.g. "
                "2026-03-01T09:00:00Z) or an offset (e.g. 2026-03-01T17:00:00+08:00)"
            )
        return moment.astimezone(UTC)
    except (ValueError, OverflowError) as e:
        raise LedgerError(
            f"{option}: {shown!r} is not an RFC 3339 timestamp (e.g. 2026-03-01T09:00:00Z)"
        ) from e


@contextmanager
def progress_bar(console: Console, total: int, description: str) -> Iterator[Callable[[int], None]]:
    """A transient progress bar on ``console`` (stderr) when it is a terminal; yields a
    callback taking the position reached. Off a terminal the callback does nothing."""
    if not console.is_terminal or total <= 0:
        yield lambda position: None
        return
    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task(description, total=total)
        yield lambda position: progress.update(task, completed=position)
