"""Characters XML 1.0 forbids are removed; everything XML allows, Vietnamese included, stays."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from lxml import etree

from portal_text import is_xml_safe, xml_safe

FORBIDDEN = (
    [chr(c) for c in range(0x20) if c not in (0x09, 0x0A, 0x0D)]
    + [chr(c) for c in range(0xD800, 0xE000, 0x7F)]
    + ["\ufffe", "\uffff"]
)


def test_vietnamese_and_allowed_whitespace_are_kept() -> None:
    text = "Đảng Cộng sản\tViệt Nam\r\nhòa thủy 😀 \u0085\ufffd"
    assert xml_safe(text) == text
    assert is_xml_safe(text)


def test_every_forbidden_character_is_removed() -> None:
    text = "Hội" + "".join(FORBIDDEN) + "nghị"
    assert not is_xml_safe(text)
    assert xml_safe(text) == "Hộinghị"


@given(st.text(alphabet=st.characters(codec=None, min_codepoint=0, max_codepoint=0x10FFFF)))
def test_whatever_remains_makes_well_formed_xml(text: str) -> None:
    root = etree.Element("t")
    root.text = xml_safe(text)  # lxml refuses any character XML forbids
    assert etree.fromstring(etree.tostring(root, encoding="UTF-8")).tag == "t"


def test_a_missing_value_is_the_empty_text() -> None:
    assert xml_safe(None) == ""
    assert xml_safe("") == ""
