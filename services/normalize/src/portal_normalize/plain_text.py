"""An article's text: NFC with one tone-mark placement, plain text from safe HTML, cut at a word."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import nh3
from lxml import etree
from lxml.html import HtmlElement

from portal_normalize import simple_html
from portal_normalize.markup_rules import ALLOWED_TAGS, drop_control
from portal_text import (
    needs_tone_placement,
    normalize_tone_placement,
    xml_safe,
)

SUMMARY_CHARS = 300


_TAG_OR_TEXT = re.compile(r'(<(?:[^>"]|"[^"]*")*>)')


# Runs of spaces that become one plain space; a single plain space already is one, and is
# left alone (matching it only to write it back would cost a step per word).
_SPACES = re.compile("[\t\r\f\v\u00a0\u200b][ \t\r\f\v\u00a0\u200b]*| [ \t\r\f\v\u00a0\u200b]+")


_ODD_SPACES = "\t\r\f\v\u00a0\u200b"


def _collapse_spaces(text: str) -> str:
    """``_SPACES.sub(" ", text)``. It can only match at an odd space or at two plain spaces, so
    text without either (most text) is returned as it is after a few substring checks, which
    cost a fraction of the regular expression's scan."""
    if "  " not in text and not any(c in text for c in _ODD_SPACES):
        return text
    return _SPACES.sub(" ", text)


# --- text -----------------------------------------------------------------------------------


def normalize_text(text: str) -> str:
    """NFC with the portal's one tone-mark placement."""
    return normalize_tone_placement(text)


def normalize_html_text(safe_html: str) -> str:
    """Tone placement in text nodes only (never inside tags: URLs stay byte for byte)."""
    if not needs_tone_placement(safe_html):
        return safe_html  # clean NFC text with one tone placement already: nothing to do
    parts = _TAG_OR_TEXT.split(safe_html)
    return "".join(p if p.startswith("<") else normalize_text(p) for p in parts)


_BLOCKS = frozenset(ALLOWED_TAGS - {"br", "strong", "em", "b", "i", "u", "a", "img", "th", "td"})


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCKS:
            self.parts.append("\n\n")
        elif tag == "br":
            self.parts.append("\n")
        elif tag in ("td", "th"):
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in _BLOCKS:
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def html_to_text(fragment: str) -> str:
    """Plain text of safe HTML: one paragraph per block, spaces collapsed."""
    parser = _TextExtractor()
    simple_html.feed(parser, fragment)
    return _plain("".join(parser.parts))


def tree_to_text(root: HtmlElement) -> str:
    """``html_to_text`` of the markup ``root``'s content serialises to (what its children
    write; the body is parsed into a tree anyway, so its text costs no second parse)."""
    parts: list[str] = [root.text] if root.text else []
    for event, el in etree.iterwalk(root, events=("start", "end")):
        if el is root:
            continue
        tag = el.tag
        if event == "start":
            if not isinstance(tag, str):
                continue  # a comment or an instruction: no text of its own
            if tag in _BLOCKS:
                parts.append("\n\n")
            elif tag == "br":
                parts.append("\n")
            elif tag in ("td", "th"):
                parts.append(" ")
            if el.text:
                parts.append(el.text)
            continue
        if tag in _BLOCKS:
            parts.append("\n\n")
        if el.tail:
            parts.append(el.tail)
    return _plain("".join(parts))


def _plain(text: str) -> str:
    lines = [line.strip() for line in _collapse_spaces(text).split("\n")]
    out: list[str] = []
    for line in lines:
        if line or (out and out[-1]):
            out.append(line)
    joined = "\n".join(out)
    if "\n\n\n" in joined:
        joined = re.sub(r"\n{3,}", "\n\n", joined)
    return xml_safe(joined.strip())


# Every tag removed (script and style with their content). Built once: ``nh3.clean`` with
# options builds its sanitiser anew at each call, several times the cost of cleaning a title.
INLINE_CLEANER = nh3.Cleaner(tags=set(), clean_content_tags={"script", "style"})


def inline_text(raw: str) -> str:
    """One line of plain text from a field that may carry markup or entities (titles)."""
    text = html_to_text(INLINE_CLEANER.clean(drop_control(raw)))
    return normalize_text(_collapse_spaces(text.replace("\n", " ")).strip())


def cut_at_word(text: str, limit: int = SUMMARY_CHARS) -> str:
    """At most ``limit`` characters ending at a word boundary, with an ellipsis if cut."""
    text = _collapse_spaces(text.replace("\n", " ")).strip()
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    if " " in cut and not text[limit - 1].isspace():
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(" ,;:.-–—") + "…"
