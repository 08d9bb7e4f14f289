"""The ``lrkit auto`` report: one self-contained HTML page and a markdown summary.

The page needs no network: CSS is inline, fonts are the system's, and every plot is a PNG
embedded as base64. The markdown summary (``report.md``) links the same plots as PNG files next
to it. Rendering is pure string building from a :class:`ReportContent`; the pipeline decides
what goes in it.
"""

from __future__ import annotations

import base64
import html
import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

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


_CSS = """
:root { --fg:#1f2328; --muted:#59636e; --line:#d1d9e0; --bg:#f6f8fa; --card:#ffffff;
  --accent:#0969da; --good:#1a7f37; --warn:#9a6700; --bad:#cf222e; }
* { box-sizing: border-box; }
body { margin:0; background:var(--bg); color:var(--fg);
  font: 15px/1.55 -apple-system, BlinkMacSystemFont, "Segoe UI", Roboto, "Helvetica Neue",
  Arial, "Noto Sans", "Liberation Sans", sans-serif; }
main { max-width: 980px; margin: 0 auto; padding: 32px 20px 56px; }
header h1 { font-size: 26px; margin: 0 0 4px; letter-spacing: -0.01em; }
header p { margin: 0; color: var(--muted); }
.headline { margin: 22px 0 14px; padding: 14px 18px; border-radius: 10px; background: var(--card);
  border: 1px solid var(--line); border-left: 6px solid var(--accent); font-size: 16px; }
.headline.good { border-left-color: var(--good); }
.headline.warn { border-left-color: var(--warn); }
.headline.bad { border-left-color: var(--bad); }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(200px, 1fr)); gap: 12px; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 10px;
  padding: 12px 16px; }
.card .label { font-size: 12px; text-transform: uppercase; letter-spacing: .06em;
  color: var(--muted); }
.card .value { font-size: 22px; font-weight: 650; margin: 2px 0; word-break: break-word;
  font-variant-numeric: tabular-nums; }
.card .detail { font-size: 13px; color: var(--muted); }
.card.good .value { color: var(--good); } .card.warn .value { color: var(--warn); }
.card.bad .value { color: var(--bad); }
section { background: var(--card); border: 1px solid var(--line); border-radius: 10px;
  padding: 18px 22px; margin-top: 18px; }
section h2 { font-size: 18px; margin: 0 0 10px; }
figure { margin: 8px 0 4px; } figure img { max-width: 100%; height: auto; display: block;
  margin: 0 auto; } figcaption { color: var(--muted); font-size: 13px; text-align: center; }
table { border-collapse: collapse; width: 100%; font-size: 14px; margin-top: 8px; }
th, td { text-align: left; padding: 6px 8px; border-bottom: 1px solid var(--line);
  vertical-align: top; }
th { color: var(--muted); font-weight: 600; font-size: 12px; text-transform: uppercase;
  letter-spacing: .04em; }
pre { background: #0d1117; color: #e6edf3; padding: 14px 16px; border-radius: 8px;
  overflow-x: auto; font: 13px/1.5 ui-monospace, SFMono-Regular, Menlo, Consolas,
  "Liberation Mono", monospace; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, "Liberation Mono", monospace; }
.notes li { margin: 4px 0; }
.glance { display: grid; grid-template-columns: repeat(auto-fit, minmax(220px, 1fr));
  gap: 12px; margin-top: 12px; }
.glance a { display: block; background: var(--card); border: 1px solid var(--line);
  border-radius: 10px; padding: 8px; color: var(--fg); text-decoration: none; }
.glance a:hover { border-color: var(--accent); }
.glance img { width: 100%; height: 130px; object-fit: contain; display: block; }
.glance span { display: block; font-size: 13px; font-weight: 600; margin-top: 4px;
  text-align: center; }
tr.chosen td { font-weight: 650; background: #ddf4ff; }
footer { color: var(--muted); font-size: 12px; margin-top: 28px; text-align: center; }
"""


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def _img_src(figure: Figure) -> str:
    return "data:image/png;base64," + base64.b64encode(figure.png).decode("ascii")


def render_html(content: ReportContent) -> str:
    """The report as one self-contained HTML page (inline CSS, base64 images, no scripts)."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(content.title)}</title>",
        f"<style>{_CSS}</style></head><body><main>",
        f"<header><h1>{_e(content.title)}</h1><p>{_e(content.subtitle)}</p></header>",
        f'<div class="headline {content.headline_tone}" id="headline">{_e(content.headline)}</div>',
        '<div class="cards" id="summary">',
    ]
    for card in content.cards:
        parts.append(
            f'<div class="card {card.tone}"><div class="label">{_e(card.label)}</div>'
            f'<div class="value">{_e(card.value)}</div>'
            f'<div class="detail">{_e(card.detail)}</div></div>'
        )
    parts.append("</div>")
    glance = [s for s in content.sections if s.figure is not None]
    if len(glance) > 1:
        # the story in one look: every plot as a thumbnail linking to its section
        parts.append('<nav class="glance" aria-label="the plots at a glance">')
        for i, section in enumerate(glance, 1):
            fig = section.figure
            assert fig is not None
            href = f' href="#{_e(section.anchor)}"' if section.anchor else ""
            parts.append(
                f'<a class="thumb"{href}><img src="{_img_src(fig)}" alt="{_e(fig.alt)}">'
                f"<span>{i}. {_e(section.title)}</span></a>"
            )
        parts.append("</nav>")
    for section in content.sections:
        anchor = f' id="{_e(section.anchor)}"' if section.anchor else ""
        parts.append(f"<section{anchor}><h2>{_e(section.title)}</h2>")
        parts.extend(f"<p>{_e(p)}</p>" for p in section.paragraphs)
        if section.figure is not None:
            fig = section.figure
            parts.append(
                f'<figure><img src="{_img_src(fig)}" alt="{_e(fig.alt)}">'
                + (f"<figcaption>{_e(fig.caption)}</figcaption>" if fig.caption else "")
                + "</figure>"
            )
        if section.rows:
            parts.append("<table>")
            if section.headers:
                parts.append("<tr>" + "".join(f"<th>{_e(h)}</th>" for h in section.headers))
            for i, row in enumerate(section.rows):
                cls = ' class="chosen"' if i in section.highlight else ""
                parts.append(f"<tr{cls}>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>")
            parts.append("</table>")
        if section.code is not None:
            parts.append(f"<pre><code>{_e(section.code)}</code></pre>")
        parts.append("</section>")
    if content.notes:
        parts.append('<section id="notes"><h2>Notes</h2><ul class="notes">')
        parts.extend(f"<li>{_e(n)}</li>" for n in content.notes)
        parts.append("</ul></section>")
    footer = _e("Generated by lrkit auto. Every number above is in result.json next to this page.")
    if content.footer:
        footer = f"{_e(content.footer)}<br>{footer}"
    parts.append(f"<footer>{footer}</footer></main></body></html>")
    return "\n".join(parts)


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


def render_markdown(content: ReportContent) -> str:
    """The report as markdown; figures are linked as ``<name>.png`` next to the file."""
    lines = [
        f"# {_md(content.title)}",
        "",
        f"_{_md(content.subtitle)}_",
        "",
        f"> {_md(content.headline, starts_line=True)}",
        "",
    ]
    lines += ["| " + " | ".join(_md(c.label) for c in content.cards) + " |"]
    lines += ["|" + "---|" * len(content.cards)]
    lines += ["| " + " | ".join(f"**{_md(c.value)}**" for c in content.cards) + " |"]
    lines += ["| " + " | ".join(_md(c.detail) for c in content.cards) + " |", ""]
    for section in content.sections:
        lines += [f"## {_md(section.title)}", ""]
        for p in section.paragraphs:
            lines += [_md(p, starts_line=True), ""]
        if section.figure is not None:
            fig = section.figure
            lines += [f"![{_md(fig.alt)}]({fig.name}.png)", ""]
            if fig.caption:
                lines += [f"_{_md(fig.caption)}_", ""]
        if section.rows:
            headers = section.headers or tuple("" for _ in section.rows[0])
            lines += ["| " + " | ".join(_md(h) for h in headers) + " |"]
            lines += ["|" + "---|" * len(headers)]
            lines += [
                "| "
                + " | ".join(
                    f"**{_md(c)}**" if i in section.highlight and c else _md(c) for c in row
                )
                + " |"
                for i, row in enumerate(section.rows)
            ]
            lines += [""]
        if section.code is not None:
            fence = _fence(section.code)
            lines += [f"{fence}python", section.code.rstrip(), fence, ""]
    if content.notes:
        lines += ["## Notes", ""] + [f"- {_md(n, starts_line=True)}" for n in content.notes] + [""]
    if content.footer:
        lines += [f"_{_md(content.footer)}_", ""]
    return "\n".join(lines)


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
