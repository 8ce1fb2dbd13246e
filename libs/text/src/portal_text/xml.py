"""Characters XML 1.0 forbids: text that may end up in a feed, sitemap or page loses them.

XML 1.0 allows tab, line feed, carriage return and U+0020..U+D7FF, U+E000..U+FFFD,
U+10000..U+10FFFF. Everything else (C0 controls, lone surrogates that JSON can carry, U+FFFE,
U+FFFF) makes a document ill-formed, and an XML writer either refuses it or writes a document
readers reject, whether it arrived raw or as a numeric character reference.
"""

from __future__ import annotations

import re

XML_FORBIDDEN = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_safe(text: str | None) -> str:
    """``text`` without the characters XML 1.0 forbids (decode entities before calling); a
    missing value is the empty text (a feed is never broken by one incomplete row)."""
    return XML_FORBIDDEN.sub("", text) if text else ""


def is_xml_safe(text: str) -> bool:
    return XML_FORBIDDEN.search(text) is None
