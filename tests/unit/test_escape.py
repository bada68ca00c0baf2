"""Text from outside in the job summary: shown as text, never as markup (rendered like GitHub)."""

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from lanmirror.cmd.escape import code, markdown_cell

MD = MarkdownIt("gfm-like")  # tables, strikethrough and linkify, as github.com renders summaries


def render_cell(text: str) -> str:
    return MD.render(f"| a |\n|---|\n| {markdown_cell(text)} |\n")


@pytest.mark.parametrize("text", [
    "[click](https://evil.example/x)", "![i](http://evil.example/p.png)", "www.evil.example",
    "https://evil.example/path", "mail@evil.example", "<img src=x onerror=alert(1)>", "**bold** _it_ ~~s~~",
    "`code`", "a | b", "line\nbreak", "\\[escaped\\](x)",
])
def test_outside_text_renders_without_markup(text):
    html = render_cell(text)
    cell = html.split("<td>", 1)[1].split("</td>", 1)[0]
    assert "<" not in cell.replace("&lt;", "")  # no tag at all in the cell: no a, img, strong, code, s
    assert "<tr>" in html.split("<tbody>", 1)[1]  # one row: the text did not break the table


@given(st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=60))
@example("0.AC")  # a bare domain: the linkifier found it once (a dot before a letter is now escaped)
@example("gpu-1.evil.example/x")
def test_any_printable_text_stays_one_inert_cell(text):
    html = render_cell(text)
    body = html.split("<tbody>", 1)[1]
    assert body.count("<td>") == 1
    cell = body.split("<td>", 1)[1].split("</td>", 1)[0]
    assert "<" not in cell.replace("&lt;", "")


def test_our_own_code_spans_pass_through():
    assert "<code>sha256:abc</code>" in render_cell(code("sha256:abc"))  # type: ignore[arg-type]
