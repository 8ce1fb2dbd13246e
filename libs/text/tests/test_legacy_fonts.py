"""Text typed in a legacy font decoded by the encoding the font's name says."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from portal_text import legacy_encodings
from portal_text.legacy_encodings import (
    NO_HINT,
    VNI_DIGRAPHS,
    Encoding,
    Hint,
    could_be_font_bytes,
    decode_in_font,
    decode_pieces_in_font,
    font_hint,
    has_evidence,
)

SENTENCE = "Đảng bộ tỉnh tổ chức hội nghị"
TCVN3 = "§¶ng bé tØnh tæ chøc héi nghÞ"  # as Word shows it under .VnTime
VNI = "Ñaûng boä tænh toå chöùc hoäi nghò"  # as Word shows it under VNI-Times


def test_font_names_give_their_encoding() -> None:
    assert font_hint(".VnTime") == Hint(Encoding.TCVN3)
    assert font_hint(".VnTimeH") == Hint(Encoding.TCVN3, upper=True)
    assert font_hint("VNI-Times") == Hint(Encoding.VNI)
    assert font_hint("Times New Roman") == NO_HINT


def test_text_is_decoded_by_its_font_and_left_alone_in_a_unicode_font() -> None:
    assert decode_in_font(TCVN3, font_hint(".VnTime")) == SENTENCE
    assert decode_in_font(VNI, font_hint("VNI-Times")) == SENTENCE
    assert decode_in_font("§¶ng", font_hint(".VnTimeH")) == "ĐẢNG"
    assert decode_in_font(TCVN3, font_hint("Times New Roman")) == TCVN3


def test_a_vni_mark_split_from_its_letter_goes_back_to_it() -> None:
    pieces = ["Ña", "ûng boä"]  # the editor split "Ñaûng" between "a" and its mark "û"
    assert decode_pieces_in_font(pieces, font_hint("VNI-Times")) == ["Đả", "ng bộ"]


def test_unicode_vietnamese_cannot_be_font_bytes() -> None:
    assert could_be_font_bytes(TCVN3)
    assert not could_be_font_bytes(SENTENCE)


_DIGRAPH_ALPHABET = "".join(sorted({c for row in VNI_DIGRAPHS for part in row for c in part}))


@given(st.text(alphabet=_DIGRAPH_ALPHABET + "bnst ươấ", max_size=40))
def test_a_vni_digraph_is_evidence_exactly_when_the_text_holds_one_of_its_pairs(
    text: str,
) -> None:
    pairs = {v + m for vowels, marks in VNI_DIGRAPHS for v in vowels for m in marks}
    holds_pair = any(text[i : i + 2] in pairs for i in range(len(text) - 1))
    assert (legacy_encodings._VNI_DIGRAPH.search(text) is not None) == holds_pair


def test_real_vietnamese_pairs_are_not_vni_digraphs() -> None:
    assert has_evidence("Tuyên truyền về quê hương, giá cả và hoá học tuần này") is False
    assert has_evidence("saùch") is True
    assert has_evidence("Tuyeân") is True
