"""The report's HTML comes from an autoescaping template: every element is closed, and no field
of the content can inject markup (text, attributes, table cells, code, captions)."""

from __future__ import annotations

from html.parser import HTMLParser

from lrkit.pipeline import Card, Figure, ReportContent, Section, render_html, render_markdown

VOID = {"meta", "img", "br", "hr", "link", "input"}
EVIL = '"><script>alert(1)</script><b x="'


class _Balance(HTMLParser):
    """Records every start tag and checks each end tag closes the innermost open element."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs += attrs
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
        else:
            self.stack.pop()


def _content(text: str) -> ReportContent:
    figure = Figure("plot", b"\x89PNG", alt=text, caption=text)
    return ReportContent(
        title=text,
        subtitle=text,
        cards=(Card(text, text, text, "good"),),
        headline=text,
        headline_tone="warn",
        sections=(
            Section(text, paragraphs=(text,), figure=figure, headers=(text, "b"),
                    rows=((text, "1"), ("x", text)), code=text, anchor=text, highlight=(0,)),
            Section("second", figure=Figure("other", b"\x89PNG", alt="o")),
        ),
        notes=(text,),
        footer=text,
    )


def _parse(page: str) -> _Balance:
    parser = _Balance()
    parser.feed(page)
    parser.close()
    return parser


def test_every_element_is_closed_including_the_table_header_row() -> None:
    parser = _parse(render_html(_content("plain")))
    assert parser.errors == [] and parser.stack == []
    assert "<thead><tr><th>plain</th><th>b</th></tr></thead>" in render_html(_content("plain"))


def test_no_field_can_inject_markup() -> None:
    page = render_html(_content(EVIL))
    parser = _parse(page)
    assert parser.errors == [] and parser.stack == []
    assert "script" not in parser.tags and "b" not in parser.tags
    # the text survives as text: in attributes (alt, id, href) it is the attribute's value
    assert ("alt", EVIL) in parser.attrs and ("id", EVIL) in parser.attrs
    assert ("href", "#" + EVIL) in parser.attrs
    assert page.count("&lt;script&gt;") >= 10


def test_markdown_escapes_with_backslashes_not_html_entities() -> None:
    text = render_markdown(_content("a | <b>"))
    assert "# a \\| \\<b\\>" in text and "&lt;" not in text
    assert "| **a \\| \\<b\\>** | **1** |" in text
