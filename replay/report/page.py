"""The report's HTML document: its shell (a Content-Security-Policy that lets the page fetch
nothing, inline CSS with a print stylesheet, no script, no external font) and the small pieces
every section uses. Every value that comes from the log goes through :func:`esc` (or
:func:`text`): it is hostile input.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from datetime import datetime
from typing import Final

from causes.wording import money

__all__ = [
    "CATEGORY_COLOUR",
    "CSP",
    "LONG_TEXT",
    "amounts",
    "category_pill",
    "document",
    "esc",
    "moment",
    "position_link",
    "position_links",
    "table",
    "text",
]

CSP: Final = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
"""Nothing may be fetched, nothing run: only the inline stylesheet and inline images."""
LONG_TEXT: Final = 2000
"""Characters of one value shown before the rest is left out (and said so)."""
CATEGORY_COLOUR: Final[dict[str, str]] = {
    "channel_policy": "#b3589a",
    "system": "#0072b2",
    "credit": "#d55e00",
    "user_action": "#009e73",
    "unknown": "#7a7a7a",
}
"""One colour per root-cause category, told apart also by colour-blind readers."""
_WORD: Final = 40
"""A word longer than this may be broken anywhere (a table cell keeps its width)."""
_CONTROL: Final = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")

_STYLE: Final = """
:root { --ink: #1d2330; --muted: #5b6475; --line: #d8dce4; --soft: #f4f6f9; --accent: #2456a6;
  --bad: #b42318; --good: #1a7f37; --warn: #9a6700; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--ink); background: #fff; font: 14px/1.45 system-ui, -apple-system,
  "Segoe UI", Roboto, "Noto Sans", "Liberation Sans", "DejaVu Sans", sans-serif; }
header.top { background: #16233a; color: #fff; padding: 18px 32px 14px; }
header.top h1 { margin: 0 0 4px; font-size: 22px; font-weight: 600; overflow-wrap: anywhere; }
header.top p { margin: 0; color: #c9d3e6; }
nav { position: sticky; top: 0; z-index: 2; background: #fff; border-bottom: 1px solid var(--line);
  padding: 8px 32px; }
nav a { margin-right: 18px; color: var(--accent); text-decoration: none; font-weight: 500; }
main { padding: 8px 32px 48px; max-width: 1320px; }
section { margin-top: 26px; }
h2 { font-size: 18px; margin: 0 0 10px; padding-bottom: 4px; border-bottom: 2px solid var(--line); }
h3 { font-size: 15px; margin: 16px 0 6px; }
p { margin: 6px 0; }
a { color: var(--accent); }
code, .mono { font-family: "DejaVu Sans Mono", "Liberation Mono", Menlo, Consolas, monospace;
  font-size: 12.5px; }
.muted { color: var(--muted); }
.facts { display: grid; grid-template-columns: repeat(auto-fill, minmax(240px, 1fr)); gap: 10px;
  margin: 14px 0; }
.fact { border: 1px solid var(--line); border-radius: 6px; padding: 8px 12px;
  background: var(--soft); }
.fact .label { color: var(--muted); font-size: 12px; text-transform: uppercase;
  letter-spacing: .03em; }
.fact .value { font-size: 16px; font-weight: 600; overflow-wrap: anywhere; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; margin: 6px 0 12px; }
th, td { text-align: left; vertical-align: top; padding: 5px 8px;
  border-bottom: 1px solid var(--line); overflow-wrap: break-word; }
th { background: var(--soft); font-weight: 600; font-size: 12.5px; white-space: nowrap; }
.brk { word-break: break-all; }
td.num, th.num { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
td.nowrap { white-space: nowrap; overflow-wrap: normal; }
tr.evidence td { background: #fff1ec; }
tr.evidence td:first-child { box-shadow: inset 4px 0 0 var(--bad); }
tr.moment td { background: #eef4ff; }
tr:target td { outline: 2px solid var(--accent); outline-offset: -2px; }
.pill { display: inline-block; padding: 1px 8px; border-radius: 10px; color: #fff; font-size: 12px;
  font-weight: 600; white-space: nowrap; }
.verdict { border: 1px solid var(--line); border-left: 6px solid var(--bad); border-radius: 6px;
  padding: 10px 16px; margin: 12px 0; }
.verdict.ok { border-left-color: var(--good); }
.verdict.pending { border-left-color: var(--warn); }
.remedy { color: var(--good); font-weight: 600; }
.pass { color: var(--good); font-weight: 600; }
.fail { color: var(--bad); font-weight: 600; }
.na { color: var(--muted); }
.tops { display: grid; grid-template-columns: repeat(auto-fit, minmax(300px, 1fr)); gap: 0 24px; }
td.words { min-width: 18em; }
.bar { height: 10px; background: var(--accent); border-radius: 2px; min-width: 1px; }
.legend span { margin-right: 14px; white-space: nowrap; }
.swatch { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 4px; }
.cut { color: var(--muted); font-style: italic; }
svg { display: block; max-width: none; }
svg text { font: 11px system-ui, "Liberation Sans", "DejaVu Sans", sans-serif; fill: var(--ink); }
svg .lane-label { font-weight: 600; }
svg a:hover circle, svg a:focus circle { stroke: var(--accent); stroke-width: 3; }
footer { margin-top: 40px; padding: 0 32px 24px; color: var(--muted); font-size: 12px; }
@media print {
  @page { margin: 14mm; }
  body { font-size: 10.5pt; }
  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  nav, details { display: none; }
  header.top { background: #fff; color: #000; border-bottom: 2px solid #000; padding: 0 0 6px; }
  header.top p { color: #333; }
  main { padding: 0; max-width: none; }
  .scroll { overflow: visible; }
  svg { max-width: 100%; height: auto; }
  a { color: inherit; text-decoration: none; }
  tr, .fact, .verdict { break-inside: avoid; }
  h2, h3 { break-after: avoid; }
}
"""


def esc(value: object) -> str:
    """``value`` as HTML text or attribute content: markup characters and quotes escaped,
    control characters replaced, and cut at :data:`LONG_TEXT` characters (:func:`text` says
    where it cut; an attribute need not)."""
    raw = str(value)
    if len(raw) > LONG_TEXT:
        raw = raw[: LONG_TEXT - 1] + "…"
    return html.escape(_CONTROL.sub("\ufffd", raw), quote=True)


def text(value: object, limit: int = LONG_TEXT) -> str:
    """:func:`esc`, and a value longer than ``limit`` characters cut there (saying how much
    was left out)."""
    raw = str(value)
    shown = esc(raw[:limit])
    if any(len(word) > _WORD for word in raw[:limit].split()):
        shown = f'<span class="brk">{shown}</span>'  # break a long word anywhere
    if len(raw) <= limit:
        return shown
    rest = len(raw) - limit
    return f'{shown}<span class="cut">… ({rest:,} more characters)</span>'


def _cut(value: str, limit: int) -> str:
    return value if len(value) <= limit else value[: limit - 1] + "…"


def moment(at: datetime | None) -> str:
    """A moment as RFC 3339 UTC to the second (``-`` for none)."""
    return "-" if at is None else at.strftime("%Y-%m-%dT%H:%M:%SZ")


def category_pill(category: str) -> str:
    """A root-cause category in its colour."""
    colour = CATEGORY_COLOUR.get(category, CATEGORY_COLOUR["unknown"])
    return (
        f'<span class="pill cat" data-category="{esc(category)}" '
        f'style="background:{colour}">{esc(category)}</span>'
    )


def amounts(by_currency: Mapping[str, int]) -> str:
    """``1,566.00 CNY, 12.00 USD`` (``-`` for none)."""
    return esc(", ".join(money(v, c) for c, v in by_currency.items()) or "-")


def position_link(position: int, anchors: AbstractSet[int] | None = None) -> str:
    """``#13``, linked to the timeline's row when ``anchors`` holds it (or is ``None``)."""
    p = int(position)
    if anchors is None or p in anchors:
        return f'<a class="pos" href="#pos-{p}" data-position="{p}">#{p}</a>'
    return f'<span class="pos" data-position="{p}" title="not on this timeline">#{p}</span>'


def position_links(positions: Sequence[int], anchors: AbstractSet[int] | None = None) -> str:
    """:func:`position_link` for each position (``none`` for no position)."""
    if not positions:
        return '<span class="muted">none</span>'
    return ", ".join(position_link(p, anchors) for p in positions)


def table(
    headers: Sequence[str],
    rows: Iterable[str],
    *,
    numeric: Sequence[int] = (),
    cls: str = "",
) -> str:
    """A table: ``headers`` (plain words, escaped here), ``rows`` (ready ``<tr>`` markup);
    columns listed in ``numeric`` are right-aligned."""
    head = "".join(
        f'<th{" class=num" if i in numeric else ""} scope="col">{esc(h)}</th>'
        for i, h in enumerate(headers)
    )
    body = "\n".join(rows)
    klass = f' class="{esc(cls)}"' if cls else ""
    return (
        f'<div class="scroll"><table{klass}><thead><tr>{head}</tr></thead>'
        f"<tbody>\n{body}\n</tbody></table></div>"
    )


def document(*, title: str, subtitle: str, nav: Sequence[tuple[str, str]], body: str) -> str:
    """The whole page: ``title`` and ``subtitle`` are escaped here; ``nav`` is (anchor, words)
    pairs; ``body`` is ready markup."""
    links = "".join(f'<a href="#{esc(anchor)}">{esc(words)}</a>' for anchor, words in nav)
    title, subtitle = _cut(title, 300), _cut(subtitle, 600)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="referrer" content="no-referrer">\n'
        f"<title>{esc(title)}</title>\n"
        f"<style>{_STYLE}</style>\n"
        "</head><body>\n"
        f'<header class="top"><h1>{esc(title)}</h1><p>{esc(subtitle)}</p></header>\n'
        f"<nav>{links}</nav>\n"
        f"<main>\n{body}\n</main>\n"
        "<footer>Made by <code>payledger report</code> from the ledger alone: this file loads "
        "nothing from any network and runs no script.</footer>\n"
        "</body></html>\n"
    )
