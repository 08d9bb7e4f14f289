"""The ``lrkit auto`` report: one self-contained HTML page and a markdown summary.

The page needs no network: CSS is inline, fonts are the system's, and every plot is a PNG
embedded as base64. The markdown summary (``report.md``) links the same plots as PNG files next
to it. The layout lives in jinja2 templates (``templates/``; the HTML one autoescaped) filled
from a :class:`ReportContent`; the pipeline decides what goes in it.
"""

from __future__ import annotations

import base64
import functools
import json
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import jinja2

from lrkit._files import write_files

__all__ = [
    "Card",
    "Figure",
    "ReportContent",
    "Section",
    "render_html",
    "render_markdown",
    "write_report",
]

logger = logging.getLogger(__name__)

Tone = Literal["neutral", "good", "warn", "bad"]


@dataclass(frozen=True)
class Card:
    """One tile of the summary card: a label, a big value and a small line under it."""

    label: str
    value: str
    detail: str = ""
    tone: Tone = "neutral"


@dataclass(frozen=True)
class Figure:
    """A plot: ``png`` bytes, saved as ``<name>.png`` next to the markdown."""

    name: str
    png: bytes
    alt: str
    caption: str = ""


@dataclass(frozen=True)
class Section:
    """A titled block: paragraphs, an optional figure, an optional table, optional code."""

    title: str
    paragraphs: tuple[str, ...] = ()
    figure: Figure | None = None
    headers: tuple[str, ...] = ()
    rows: tuple[tuple[str, ...], ...] = ()
    code: str | None = None
    anchor: str = ""
    #: indices of ``rows`` to emphasise (e.g. the rule whose answer was used)
    highlight: tuple[int, ...] = ()


@dataclass(frozen=True)
class ReportContent:
    """Everything a report shows, already as text (the renderers only lay it out)."""

    title: str
    subtitle: str
    cards: tuple[Card, ...]
    headline: str
    headline_tone: Tone
    sections: tuple[Section, ...]
    notes: tuple[str, ...] = ()
    data: dict[str, Any] = field(default_factory=dict)
    #: one line under the page (e.g. how long each stage took)
    footer: str = ""

    @property
    def figures(self) -> list[Figure]:
        return [s.figure for s in self.sections if s.figure is not None]


@functools.cache
def _environment(markup: bool) -> jinja2.Environment:
    """The templates in ``templates/``: HTML autoescaped (every value is text), markdown not."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader(__package__ or "lrkit.pipeline", "templates"),
        autoescape=markup,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    env.filters["data_uri"] = _data_uri
    env.filters["md_row"] = _md_row
    env.filters["md"] = _md
    env.filters["fence"] = _fence
    env.filters["md_rule"] = lambda cells: "|" + "---|" * len(list(cells))
    env.filters["blank"] = lambda _: ""
    env.filters["rstrip"] = str.rstrip
    return env


def _data_uri(figure: Figure) -> str:
    return "data:image/png;base64," + base64.b64encode(figure.png).decode("ascii")


def _md_row(cells: Iterable[str], bold: bool = False) -> str:
    """One markdown table row, every cell literal text (:func:`_md`) on one line."""
    texts = [_md(cell) for cell in cells]
    if bold:
        texts = [f"**{text}**" if text else text for text in texts]
    return "| " + " | ".join(texts) + " |"


# every character that can start markdown syntax inside a line (emphasis, code, links, raw HTML
# and autolinks, entities, tables, strike-through) is escaped with a backslash (CommonMark 2.4)
_MD_INLINE = re.compile(r"([\\`*_\[\]<>|~&])")
# at the start of a line: a heading, list item, thematic break or setext underline
_MD_LINE_START = re.compile(r"^(#{1,6}|[-+]|\d{1,9}[.)])(?=\s|$)|^(=+|-+)\s*$")


def _md(text: object, *, starts_line: bool = False) -> str:
    """Any text (class names and messages from user objects too) as literal markdown.

    The text renders as itself, on one line: no raw HTML, link, emphasis or code span in it
    survives, nor (``starts_line``: it begins a line or a list item) a block construct.
    """
    flat = " ".join(str(text).splitlines()).strip()
    escaped = _MD_INLINE.sub(r"\\\1", flat)
    if starts_line:
        escaped = _MD_LINE_START.sub(_escape_marker, escaped, count=1)
    return escaped


def _escape_marker(match: re.Match[str]) -> str:
    """``\\#``, ``\\-``, ``\\+``, ``\\=``; ``1\\.`` (a backslash before a digit escapes nothing)."""
    marker = match.group(0)
    if marker[0].isdigit():
        return marker[:-1] + "\\" + marker[-1]
    return "\\" + marker


def _fence(code: str) -> str:
    """A code fence longer than any run of backticks in ``code`` (it cannot be closed early)."""
    longest = max((len(m) for m in re.findall(r"`+", code)), default=0)
    return "`" * max(3, longest + 1)


def render_html(content: ReportContent) -> str:
    """The report as one self-contained HTML page (inline CSS, base64 images, no scripts).

    Laid out by ``templates/report.html.j2`` with autoescaping: every string of ``content``
    appears as text, never as markup.

    Example:
        >>> page = render_html(ReportContent("a <b>", "", (), "ok & done", "good", ()))
        >>> "<title>a &lt;b&gt;</title>" in page, "ok &amp; done" in page
        (True, True)
    """
    return _environment(markup=True).get_template("report.html.j2").render(c=content)


def render_markdown(content: ReportContent) -> str:
    """The report as markdown; figures are linked as ``<name>.png`` next to the file.

    Example:
        >>> print(render_markdown(ReportContent("lr", "demo", (), "keep it", "good", ())))
        # lr
        <BLANKLINE>
        _demo_
        <BLANKLINE>
        > keep it
        <BLANKLINE>
        |  |
        |
        |  |
        |  |
        <BLANKLINE>
    """
    text = _environment(markup=False).get_template("report.md.j2").render(c=content)
    return text.rstrip("\n") + "\n"


def write_report(content: ReportContent, out: str | Path) -> dict[str, Path]:
    """Write ``report.html``, ``report.md``, the PNGs and ``result.json`` into ``out``.

    Returns the paths by kind (``html``, ``markdown``, ``json``, and one per figure name).
    The directory is created when missing; files of an earlier report are overwritten.
    """
    directory = Path(out)
    if directory.exists() and not directory.is_dir():
        raise ValueError(f"out must be a directory, but got out={str(directory)!r} (a file)")
    paths: dict[str, Path] = {fig.name: directory / f"{fig.name}.png" for fig in content.figures}
    paths["html"] = directory / "report.html"
    paths["markdown"] = directory / "report.md"
    paths["json"] = directory / "result.json"
    files: dict[Path, bytes | str] = {paths[fig.name]: fig.png for fig in content.figures}
    files[paths["html"]] = render_html(content)
    files[paths["markdown"]] = render_markdown(content)
    files[paths["json"]] = json.dumps(content.data, indent=2, default=str)
    # the whole report or nothing: a full disk leaves no partial file (and no new folder)
    created = [p for p in (directory, *directory.parents) if not p.exists()]
    directory.mkdir(parents=True, exist_ok=True)
    try:
        write_files(files)
    except BaseException:
        for folder in created:  # deepest first; only while still empty
            try:
                folder.rmdir()
            except OSError:
                break
        raise
    logger.info("report written to %s", paths["html"])
    return paths
