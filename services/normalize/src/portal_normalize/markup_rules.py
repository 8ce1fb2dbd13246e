"""What published markup may hold: the tag, attribute and URL-scheme allow-lists, and no character XML forbids."""

from __future__ import annotations

import re

# --- the allow-list -------------------------------------------------------------------------

_TEXT_TAGS = {"h2", "h3", "h4", "h5", "h6", "p", "br", "strong", "em", "b", "i", "u"}


_BLOCK_TAGS = {"blockquote", "ul", "ol", "li", "figure", "figcaption"}


_TABLE_TAGS = {"table", "caption", "thead", "tbody", "tfoot", "tr", "th", "td"}


# iframe: only allow-listed video players survive (their src is rewritten to the canonical
# player URL; any other src is removed, and then the iframe).
ALLOWED_TAGS: frozenset[str] = frozenset(
    _TEXT_TAGS | _BLOCK_TAGS | _TABLE_TAGS | {"a", "img", "iframe"}
)


ALLOWED_ATTRIBUTES: dict[str, set[str]] = {
    "a": {"href"},
    "img": {"src", "alt"},
    "iframe": {"src"},
    "th": {"colspan", "rowspan"},
    "td": {"colspan", "rowspan"},
}


# Elements whose content is dropped with them (code, styles, embedded documents, vector
# graphics that can carry handlers); other disallowed elements keep their text.
_CODE_TAGS = {"script", "style", "noscript", "template", "xml", "head", "title"}


_EMBED_TAGS = {"frame", "frameset", "object", "embed", "applet", "svg", "math"}


_MEDIA_FORM_TAGS = {"canvas", "audio", "video", "form", "select", "textarea", "button"}


DROP_WITH_CONTENT: frozenset[str] = frozenset(_CODE_TAGS | _EMBED_TAGS | _MEDIA_FORM_TAGS)


LINK_SCHEMES = frozenset({"http", "https", "mailto"})


IMAGE_SCHEMES = frozenset({"http", "https"})


LINK_REL = "noopener noreferrer nofollow"


# Characters XML 1.0 forbids, and DEL: left by no repair (legacy encodings are repaired first).
_CONTROL = re.compile("[^\t\n\r\u0020-\u007e\u0080-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


_CHAR_REF = re.compile(r"&#(?:[xX]([0-9a-fA-F]{1,8})|([0-9]{1,10}));?")


def _drop_forbidden_ref(m: re.Match[str]) -> str:
    code = int(m.group(1), 16) if m.group(1) else int(m.group(2))
    return "" if code > 0x10FFFF or _CONTROL.match(chr(code)) else m.group(0)


def drop_forbidden_refs(raw: str) -> str:
    """``raw`` markup without numeric character references to characters XML forbids (an
    HTML parser would decode them to the character, or to U+FFFD for NUL and surrogates)."""
    return _CHAR_REF.sub(_drop_forbidden_ref, raw) if "&#" in raw else raw


def drop_control(raw: str) -> str:
    """``raw`` markup without the characters XML forbids, raw or as references. Only after
    the encoding repair: C0 bytes are letters in TCVN3 and VISCII."""
    return drop_forbidden_refs(_CONTROL.sub("", raw))
