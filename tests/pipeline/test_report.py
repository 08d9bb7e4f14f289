"""The report renderers: self-contained HTML, markdown + PNGs, and the page in a real browser."""

from __future__ import annotations

import base64
import io
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from lrkit.pipeline import Card, Figure, ReportContent, Section, render_html, write_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _png(width: float = 4.0, height: float = 2.5) -> bytes:
    from matplotlib.figure import Figure as MplFigure

    fig = MplFigure(figsize=(width, height))
    ax = fig.subplots()
    ax.plot([1, 2, 3], [3, 1, 2])
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=50)
    return buf.getvalue()


def _content(title: str = "lrkit auto: <demo> & co") -> ReportContent:
    return ReportContent(
        title=title,
        subtitle="digits - adam + mlp",
        cards=(
            Card("Learning rate", "3e-03", "range test", "good"),
            Card("Diagnosis", "healthy", "keep going", "good"),
        ),
        headline="Use adam with lr 3e-03 <b>now</b>",
        headline_tone="good",
        sections=(
            Section("Recommendation", paragraphs=("a | b",), code="x = 1 < 2\n"),
            Section(
                "Range test",
                figure=Figure("range_test", _png(), "range", "caption"),
                headers=("rule", "lr"),
                rows=(("lrkit", "3e-03"), ("valley", "1e-03")),
            ),
            Section("Schedule", figure=Figure("schedule", _png(5, 2), "schedule")),
        ),
        notes=("a note",),
        data={"lr": 3e-3},
    )


def test_html_is_self_contained_and_escaped() -> None:
    html = render_html(_content())
    assert html.startswith("<!DOCTYPE html>")
    assert "<title>lrkit auto: &lt;demo&gt; &amp; co</title>" in html
    assert "&lt;b&gt;now&lt;/b&gt;" in html and "<b>now</b>" not in html
    assert "x = 1 &lt; 2" in html
    # nothing fetched from anywhere: no external URLs, scripts, stylesheets or fonts
    assert not re.search(r"(src|href)=\"(?!data:)", html)
    assert "<script" not in html and "<link" not in html and "@import" not in html
    assert "http://" not in html and "https://" not in html
    images = re.findall(r'<img src="data:image/png;base64,([^"]+)"', html)
    assert len(images) == 4  # two thumbnails at the top, then the two plots in their sections
    assert images[:2] == images[2:]
    assert all(base64.b64decode(img).startswith(PNG_MAGIC) for img in images)


def test_write_report_files(tmp_path: Path) -> None:
    content = _content()
    paths = write_report(content, tmp_path / "out")
    assert set(paths) == {"html", "markdown", "json", "range_test", "schedule"}
    assert paths["range_test"].read_bytes() == content.sections[1].figure.png  # type: ignore[union-attr]
    md = paths["markdown"].read_text()
    assert "![range](range_test.png)" in md and "![schedule](schedule.png)" in md
    assert "| lrkit | 3e-03 |" in md and "| rule | lr |" in md
    assert "```python\nx = 1 < 2\n```" in md
    assert json.loads(paths["json"].read_text()) == {"lr": 3e-3}
    for name in ("range_test", "schedule"):
        assert f"({name}.png)" in md and (tmp_path / "out" / f"{name}.png").is_file()


def test_highlighted_rows_and_footer(tmp_path: Path) -> None:
    base = _content()
    table = Section("Rules", headers=("rule", "lr"), rows=(("a", "1"), ("b", "2")), highlight=(1,))
    content = ReportContent(
        title=base.title,
        subtitle=base.subtitle,
        cards=base.cards,
        headline=base.headline,
        headline_tone=base.headline_tone,
        sections=(table,),
        footer="range test 0.5 s <fast>",
    )
    html = render_html(content)
    assert "<tr><td>a</td><td>1</td></tr>" in html
    assert '<tr class="chosen"><td>b</td><td>2</td></tr>' in html
    assert "range test 0.5 s &lt;fast&gt;<br>" in html
    md = write_report(content, tmp_path)["markdown"].read_text()
    assert "| a | 1 |" in md and "| **b** | **2** |" in md
    assert "_range test 0.5 s \\<fast\\>_" in md  # escaped: markdown keeps no raw HTML


def test_write_report_refuses_a_file(tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_text("x")
    with pytest.raises(ValueError, match="out must be a directory"):
        write_report(_content(), target)


@pytest.mark.browser
def test_page_renders_in_chromium(
    tmp_path: Path, chromium_probe: Callable[[Path], dict[str, Any]]
) -> None:
    paths = write_report(_content(), tmp_path)
    probe = chromium_probe(paths["html"])
    assert probe["errors"] == [] and probe["console"] == []
    assert probe["resources"] == []  # nothing loaded over the network
    assert len(probe["images"]) == 4
    # dpi 50: 4 x 2.5 in -> 200 x 125 px, 5 x 2 in -> 250 x 100 px (thumbnails, then sections)
    assert [(i["w"], i["h"]) for i in probe["images"]] == [(200, 125), (250, 100)] * 2
    assert all(i["complete"] and i["shown_w"] > 0 and i["shown_h"] > 0 for i in probe["images"])


@pytest.mark.browser
def test_probe_catches_broken_pages(
    tmp_path: Path, chromium_probe: Callable[[Path], dict[str, Any]]
) -> None:
    # the check can fail: a missing image, a script error and a console error are all seen
    page = tmp_path / "broken.html"
    page.write_text(
        "<!DOCTYPE html><html><head><title>x</title></head><body>"
        '<img src="missing.png" alt="gone"><script>console.error("boom"); nope();</script>'
        "</body></html>"
    )
    probe = chromium_probe(page)
    assert probe["images"][0]["w"] == 0
    assert any("missing.png" in e for e in probe["errors"])
    assert any("boom" in e for e in probe["errors"])
    assert any("nope" in e for e in probe["errors"])
    assert probe["console"]


HOSTILE = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "**bold** and _em_ and `code`",
    "[click](javascript:alert(1)) ![img](http://x/y.png) <http://x.y>",
    "# heading",
    "- item",
    "1. item",
    "=====",
    "a | b | c",
    "&lt;b&gt; &amp; &#60;",
    "line one\nline two\r\n# not a heading",
    "~~strike~~ \\ backslash",
]


def _text_of(html: str) -> str:
    import html as html_lib

    return html_lib.unescape(re.sub(r"<[^>]+>", "", html))


def _report_with(text: str) -> ReportContent:
    return ReportContent(
        title=f"lrkit auto: {text}",
        subtitle=text,
        cards=(Card(text, text, text),),
        headline=f"Use {text} at 1e-3",
        headline_tone="good",
        sections=(
            Section(
                text,
                paragraphs=(text, f"x {text}"),
                figure=Figure("range_test", b"", text, text),
                headers=("what", "value"),
                rows=((text, "1"), ("2", text)),
                highlight=(0,),
                code=f"opt = {text!r}\n```\n",
            ),
        ),
        notes=(text,),
        footer=text,
    )


def _structure(md: str) -> list[str]:
    """The markdown's syntax tree, without the words (text tokens)."""
    from markdown_it import MarkdownIt

    tokens = MarkdownIt("commonmark").enable(["table", "strikethrough"]).parse(md)
    kinds = []
    for t in tokens:
        kinds.append(t.type)
        kinds += [c.type for c in t.children or [] if c.type not in ("text", "text_special")]
    return kinds


@pytest.mark.parametrize("hostile", HOSTILE)
def test_markdown_renders_user_text_literally(hostile: str) -> None:
    from markdown_it import MarkdownIt

    from lrkit.pipeline import render_markdown

    content = _report_with(hostile)
    md = render_markdown(content)
    # the same tree as for plain words: no HTML, link, image, emphasis, list, heading or
    # table cell comes from the text
    assert _structure(md) == _structure(render_markdown(_report_with("plain words")))
    html = MarkdownIt("commonmark").enable("table").render(md)
    flat = " ".join(hostile.splitlines()).strip()
    # every field shows exactly the text itself (on one line): not what it would mean as
    # markdown, and no stray backslash
    paragraphs = [_text_of(p) for p in re.findall(r"<p>(.*?)</p>", html, re.S)]
    assert flat in paragraphs and f"x {flat}" in paragraphs, (flat, paragraphs)
    assert f"Use {flat} at 1e-3" in paragraphs  # the headline (in a quote)
    cells = [_text_of(c) for c in re.findall(r"<t[dh]>(.*?)</t[dh]>", html, re.S)]
    assert cells.count(flat) == 3 + 2, (flat, cells)  # the card's 3 cells, 2 in the table
    items = [_text_of(i) for i in re.findall(r"<li>(.*?)</li>", html, re.S)]
    assert items == [flat], items
    headings = [_text_of(h) for h in re.findall(r"<h[12]>(.*?)</h[12]>", html, re.S)]
    assert headings == [f"lrkit auto: {flat}", flat, "Notes"], headings
    code = content.sections[0].code
    assert code is not None and f"{_text_of(html)}".count(code.rstrip()) == 1
