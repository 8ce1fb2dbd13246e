"""Feeding an ``html.parser`` handler fast: simple markup is tokenised by one regular expression.

Most markup normalize reads is simple: tags with double- or single-quoted attributes, text
without a stray ``<``, no comments, no script or style (what the sanitiser and the tree
serialiser write, and what most partners send). For such markup the handler receives exactly
the calls ``HTMLParser.feed`` followed by ``close`` would make (start tags with lowercased names
and unescaped attribute values, end tags, unescaped text), at the cost of one scan. Anything
else (comments, declarations, raw-text elements, unquoted attributes, a ``<`` that opens no
tag) goes to ``html.parser`` itself.
"""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

_NAME = r"[a-zA-Z][-.:a-zA-Z0-9_]*"
_SPACE = r"[ \t\n\r\f]"
_ATTRIBUTE = rf"""{_SPACE}+[a-zA-Z_:][-.:a-zA-Z0-9_]*(?:="[^"<>]*"|='[^'<>]*')?"""
_TAG = re.compile(rf"<({_NAME})((?:{_ATTRIBUTE})*){_SPACE}*(/?)>|</({_NAME})>")
_ATTRIBUTES = re.compile(
    rf"""{_SPACE}+([a-zA-Z_:][-.:a-zA-Z0-9_]*)(?:="([^"<>]*)"|='([^'<>]*)')?"""
)

# Elements whose content html.parser reads as raw text (in any Python version): left to it.
_RAW_TEXT = frozenset(
    {"script", "style", "textarea", "title", "xmp", "iframe", "noembed", "noframes",
     "noscript", "plaintext"}
)  # fmt: skip
# Where a tag of one of them may start: every such tag of ``_TAG`` is found (a tag name ends
# where the name characters end), and a false alarm only sends the markup to html.parser.
_RAW_TEXT_TAG = re.compile(
    rf"</?(?:{'|'.join(sorted(_RAW_TEXT))})(?![-.:a-zA-Z0-9_])", re.ASCII | re.IGNORECASE
)


def _simple_tags(markup: str) -> list[re.Match[str]] | None:
    """Every tag of simple markup, in order; None when the markup is not simple."""
    tags = list(_TAG.finditer(markup)) if "\x00" not in markup else None
    if tags is None or markup.count("<") != len(tags) or _RAW_TEXT_TAG.search(markup):
        return None
    return tags


def start_tags(markup: str) -> list[str] | None:
    """The text of each start tag of simple markup, in order (``feed`` of one of them alone
    makes the call ``feed`` of the markup makes for it); None when the markup is not simple."""
    tags = _simple_tags(markup)
    return None if tags is None else [m.group(0) for m in tags if m.group(4) is None]


def feed(parser: HTMLParser, markup: str, *, start_tags_only: bool = False) -> None:
    """``parser.feed(markup)`` then ``parser.close()``, for a parser converting charrefs.

    ``start_tags_only``: the parser handles start tags and nothing else, so the text and end
    tags of simple markup are not passed to it."""
    tags = _simple_tags(markup)
    if tags is None:
        parser.feed(markup)
        parser.close()
        return
    pos = 0
    for m in tags:
        if m.group(4) is not None:
            if not start_tags_only:
                if m.start() > pos:
                    _data(parser, markup[pos : m.start()])
                parser.handle_endtag(m.group(4).lower())
            pos = m.end()
            continue
        if m.start() > pos and not start_tags_only:
            _data(parser, markup[pos : m.start()])
        pos = m.end()
        attrs = (
            [
                (a.group(1).lower(), _value(a.group(2), a.group(3)))
                for a in _ATTRIBUTES.finditer(m.group(2))
            ]
            if m.group(2)
            else []
        )
        if m.group(3):
            parser.handle_startendtag(m.group(1).lower(), attrs)
        else:
            parser.handle_starttag(m.group(1).lower(), attrs)
    if pos < len(markup) and not start_tags_only:
        _data(parser, markup[pos:])


def _data(parser: HTMLParser, text: str) -> None:
    parser.handle_data(html.unescape(text))


def _value(double: str | None, single: str | None) -> str | None:
    """An attribute's value as html.parser gives it: unescaped, None when there is none."""
    raw = double if double is not None else single
    return None if raw is None else html.unescape(raw)
