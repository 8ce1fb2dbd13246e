"""Vietnamese folding, tone placement and slugs."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portal_text import (
    ascii_fold,
    fold,
    has_vietnamese_diacritics,
    normalize_tone_placement,
    slugify,
)


def test_fold_handles_d_with_stroke() -> None:
    assert fold("Đảng Cộng sản Việt Nam") == "Dang Cong san Viet Nam"
    assert fold("đường lối") == "duong loi"


@pytest.mark.parametrize(
    ("given_text", "expected"),
    [
        ("hoà bình", "hòa bình"),
        ("Thuỷ lợi", "Thủy lợi"),
        ("khoẻ mạnh", "khỏe mạnh"),
        ("quý báu", "quý báu"),  # qu + y: the mark stays on y
        ("hoàng hôn", "hoàng hôn"),  # closed rhyme: unchanged
        ("thuyền", "thuyền"),
        ("HOÀ", "HÒA"),
    ],
)
def test_tone_placement_is_one_style(given_text: str, expected: str) -> None:
    assert normalize_tone_placement(given_text) == expected


def test_tone_placement_normalizes_nfd_input() -> None:
    nfd = unicodedata.normalize("NFD", "Hội nghị hoà giải")
    assert normalize_tone_placement(nfd) == "Hội nghị hòa giải"


def test_both_placements_fold_alike() -> None:
    assert fold("hoà") == fold("hòa") == "hoa"


def test_diacritics_detection() -> None:
    assert has_vietnamese_diacritics("Tôi góp ý")
    assert has_vietnamese_diacritics("đi")
    assert not has_vietnamese_diacritics("Toi gop y ve van kien")


def test_slug() -> None:
    assert slugify("Hội nghị lần thứ 8 Ban Chấp hành Trung ương Đảng") == (
        "hoi-nghi-lan-thu-8-ban-chap-hanh-trung-uong-dang"
    )
    assert len(slugify("Đảng " * 100)) <= 80


@given(st.text())
def test_fold_is_idempotent_and_ascii_letters_survive(text: str) -> None:
    assert fold(fold(text)) == fold(text)


@given(st.text())
def test_tone_placement_is_idempotent(text: str) -> None:
    once = normalize_tone_placement(text)
    assert normalize_tone_placement(once) == once


# The fast paths give exactly what the definitions give, on Vietnamese-heavy and on any text.
_VIETNAMESE_LETTERS = (
    "aàáảãạăằắẳẵặâầấẩẫậeèéẻẽẹêềếểễệiìíỉĩịoòóỏõọôồốổỗộơờớởỡợuùúủũụưừứửữựyỳýỷỹỵđqkgh \t\n,.-'’"
)
_VIETNAMESE_TEXT = st.text(
    alphabet=st.sampled_from(_VIETNAMESE_LETTERS + _VIETNAMESE_LETTERS.upper() + "\u0300\u0301")
)


@given(st.one_of(_VIETNAMESE_TEXT, st.text()))
def test_fold_by_table_is_fold_by_decomposition(text: str) -> None:
    from portal_text.vietnamese import _fold_by_decomposition

    assert fold(text) == _fold_by_decomposition(text)


@given(st.one_of(_VIETNAMESE_TEXT, st.text()))
def test_ascii_fold_is_fold_when_it_gives_one(text: str) -> None:
    folded = ascii_fold(text)
    if folded is not None:
        assert folded.decode("ascii") == fold(text)
    elif text.isascii():
        pytest.fail("ASCII text always folds to ASCII")


def test_ascii_fold_reads_vietnamese_and_leaves_other_letters_to_fold() -> None:
    assert ascii_fold("Đảng Cộng sản, hoà bình: 2025!") == b"Dang Cong san, hoa binh: 2025!"
    assert ascii_fold("Bjørn") is None  # ø is a letter of its own, not o with a mark
    assert ascii_fold("“trích dẫn”") is None  # kept by fold, and not ASCII


@given(st.one_of(_VIETNAMESE_TEXT, st.text()))
def test_tone_placement_looks_only_where_it_can_change(text: str) -> None:
    from portal_text.vietnamese import _normalize_tone_placement_every_word

    assert normalize_tone_placement(text) == _normalize_tone_placement_every_word(text)


@given(st.one_of(_VIETNAMESE_TEXT, st.text()))
def test_text_said_not_to_need_tone_placement_is_left_as_it_is(text: str) -> None:
    from portal_text import needs_tone_placement

    if not needs_tone_placement(text):
        assert normalize_tone_placement(text) == text
    assert not needs_tone_placement(normalize_tone_placement("Hòa bình, thủy lợi, khỏe"))


def test_written_with_diacritics_needs_a_share_of_marked_words() -> None:
    from portal_text import written_with_diacritics

    assert written_with_diacritics("Tôi muốn hỏi về thủ tục cấp giấy chứng nhận")
    assert not written_with_diacritics("Toi muon hoi ve thu tuc cap giay chung nhan")
    # One marked word among many is not enough; a short text needs just one.
    assert not written_with_diacritics("Toi muon hoi ve Đảng va chinh sach dat dai o dia phuong")
    assert written_with_diacritics("Đúng!")
    assert not written_with_diacritics("OK") and not written_with_diacritics("12345 !!!")
    assert written_with_diacritics("Ho\u0300a bi\u0300nh")  # decomposed (NFD) counts the same
