"""Simple markup fed to an html.parser handler by one regular expression: the same calls."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from portal_normalize import simple_html

PIECES = [
    "<p>", "</p>", '<P CLASS="x">', "<br>", "<br/>", "<br />", "<img src=\"a&amp;b\" alt=''>",
    "<a href='x' target>", "</A>", "<o:p>", "</o:p>", "Đảng Cộng sản", " ", "\n", "&amp;",
    "&nbsp;", "&#7843;", "&", "<", ">", "<!-- c -->", "<script>x<p></script>",
    '<div\nclass="a"\tid="b">', '<font face=".VnTime">', '<td colspan="2">', "</ td>", "< p>",
    "<p class=x>", '<p a="1"b="2">', '<p a = "1">', '<iframe src="y"></iframe>', "<?pi>",
    "<!DOCTYPE html>", "&am", "&lt;p&gt;", '<p title="a>b">', "<x-y z>", "</h1 >", "<p/>",
    "<textarea><b></textarea>", 'x="1">',
]  # fmt: skip


class Recorder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.calls: list[tuple[Any, ...]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.calls.append(("start", tag, attrs))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.calls.append(("startend", tag, attrs))

    def handle_endtag(self, tag: str) -> None:
        self.calls.append(("end", tag))

    def handle_data(self, data: str) -> None:
        # Text may come in several calls: what a handler sees is their concatenation.
        if self.calls and self.calls[-1][0] == "data":
            self.calls[-1] = ("data", self.calls[-1][1] + data)
        else:
            self.calls.append(("data", data))

    def handle_comment(self, data: str) -> None:
        self.calls.append(("comment", data))

    def handle_decl(self, decl: str) -> None:
        self.calls.append(("decl", decl))

    def handle_pi(self, data: str) -> None:
        self.calls.append(("pi", data))


def by_html_parser(markup: str) -> list[tuple[Any, ...]]:
    parser = Recorder()
    parser.feed(markup)
    parser.close()
    return parser.calls


def by_simple_html(markup: str) -> list[tuple[Any, ...]]:
    parser = Recorder()
    simple_html.feed(parser, markup)
    return parser.calls


def test_simple_markup_gives_tags_attributes_and_text_without_html_parser() -> None:
    markup = '<p class="a">Đảng &amp; <a href="/x?a=1&amp;b=2" target>dân</a><br/></p>'

    class Refusing(Recorder):
        def feed(self, data: str) -> None:
            raise AssertionError("simple markup went to html.parser")

    parser = Refusing()
    simple_html.feed(parser, markup)
    assert (
        parser.calls
        == by_html_parser(markup)
        == [
            ("start", "p", [("class", "a")]),
            ("data", "Đảng & "),
            ("start", "a", [("href", "/x?a=1&b=2"), ("target", None)]),
            ("data", "dân"),
            ("end", "a"),
            ("startend", "br", []),
            ("end", "p"),
        ]
    )


@given(st.lists(st.sampled_from(PIECES), max_size=12).map("".join))
def test_any_markup_gives_the_calls_html_parser_gives(markup: str) -> None:
    assert by_simple_html(markup) == by_html_parser(markup)


@given(st.text(alphabet=st.sampled_from("<>/=\"' &;#abpx1\n\x00Đ")))
def test_arbitrary_text_gives_the_calls_html_parser_gives(markup: str) -> None:
    assert by_simple_html(markup) == by_html_parser(markup)


def _start_tags(calls: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    return [c for c in calls if c[0] in ("start", "startend")]


@given(st.lists(st.sampled_from(PIECES), max_size=12).map("".join))
def test_start_tags_only_gives_the_start_tags_html_parser_gives(markup: str) -> None:
    parser = Recorder()
    simple_html.feed(parser, markup, start_tags_only=True)
    assert _start_tags(parser.calls) == _start_tags(by_html_parser(markup))


def test_start_tags_only_passes_no_text_or_end_tag_of_simple_markup() -> None:
    markup = '<p class="a">Đảng &amp; <a href="/x">dân</a><br/></p>tail'
    parser = Recorder()
    simple_html.feed(parser, markup, start_tags_only=True)
    assert parser.calls == [
        ("start", "p", [("class", "a")]),
        ("start", "a", [("href", "/x")]),
        ("startend", "br", []),
    ]
