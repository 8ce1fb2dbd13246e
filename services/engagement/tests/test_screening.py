"""Screening of public submissions: pure logic, no infrastructure."""

from __future__ import annotations

import pytest

from portal_engagement.screening import (
    DEFAULT_WORD_LIST,
    FLAG_BANNED,
    FLAG_BANNED_VARIANT,
    FLAG_LINK,
    FLAG_SUSPECT,
    TextField,
    WordList,
    clean_text,
    load_word_list,
    screen,
    written_with_diacritics,
)

WORDS = WordList.from_mapping({"banned": ["đéo", "vãi lồn", "vcl"], "suspect": ["phản động"]})
GOOD = "Tôi muốn hỏi về thủ tục cấp giấy chứng nhận quyền sử dụng đất lần đầu."


def test_real_vietnamese_passes_and_unaccented_is_refused() -> None:
    assert written_with_diacritics(GOOD)
    assert not written_with_diacritics("Toi muon hoi ve thu tuc cap giay chung nhan")
    # One copied proper name does not make a text written with diacritics.
    assert not written_with_diacritics("Toi muon hoi ve Đảng va chinh sach dat dai o dia phuong")
    assert written_with_diacritics("Đúng!")
    assert not written_with_diacritics("OK")
    assert not written_with_diacritics("12345 !!!")


def test_no_diacritics_error_names_the_main_field_and_says_why() -> None:
    result = screen(
        [
            TextField("title", "BHXH", min_chars=3, multiline=False),
            TextField("body", "Cho toi hoi ve bao hiem xa hoi mot lan", min_chars=10),
        ],
        WORDS,
    )
    assert not result.accepted
    [problem] = result.problems
    assert problem.field == "body"
    assert problem.code == "no_diacritics"
    assert "diacritics" in problem.message and "tiếng Việt có dấu" in problem.message


def test_an_acronym_title_is_fine_when_the_body_has_diacritics() -> None:
    result = screen(
        [TextField("title", "BHXH", min_chars=3, multiline=False), TextField("body", GOOD)],
        WORDS,
    )
    assert result.accepted, result.problems
    assert result.flags == []
    assert not result.held


def test_too_short_after_cleaning() -> None:
    result = screen([TextField("body", "  Ừ   \u200b ", min_chars=10)], WORDS)
    assert [p.code for p in result.problems] == ["too_short"]
    assert "at least 10" in result.problems[0].message


def test_banned_words_hold_the_submission_whatever_the_case_or_tone_placement() -> None:
    result = screen([TextField("body", f"{GOOD} Cái ĐÉO gì thế, vcl.")], WORDS)
    assert result.accepted
    assert f"{FLAG_BANNED}:đéo" in result.flags
    assert f"{FLAG_BANNED}:vcl" in result.flags
    assert result.held


def test_a_banned_phrase_matches_whole_words_only() -> None:
    assert screen([TextField("body", f"{GOOD} vãi lồn")], WORDS).held
    # "lồn" alone is not the phrase; "đéo" inside another word is not the word.
    assert not screen([TextField("body", f"{GOOD} vãi cả nhà")], WORDS).held


def test_suspect_words_flag_without_holding() -> None:
    result = screen([TextField("body", f"Cần đấu tranh với luận điệu phản động. {GOOD}")], WORDS)
    assert result.flags == [f"{FLAG_SUSPECT}:phản động"]
    assert not result.held


@pytest.mark.parametrize(
    "text",
    [
        "Xem thêm tại https://example.com/bai-viet nhé các bạn",
        "Mời vào www.vay-tien.vn để được hỗ trợ",
        "Liên hệ qua bit.ly/abc để biết thêm chi tiết",
    ],
)
def test_links_are_held_for_review(text: str) -> None:
    result = screen([TextField("body", text)], WORDS)
    assert result.accepted
    assert any(f.startswith(f"{FLAG_LINK}:") for f in result.flags)
    assert result.held


def test_legal_references_are_not_links() -> None:
    result = screen([TextField("body", f"Theo Nghị định 15/2020/NĐ-CP và TP.HCM. {GOOD}")], WORDS)
    assert result.flags == []


def test_display_name_is_screened_for_words_but_not_for_diacritics() -> None:
    result = screen(
        [
            TextField("body", GOOD),
            TextField("display_name", "Nguyen Van A", min_chars=0, diacritics=False),
        ],
        WORDS,
    )
    assert result.accepted and not result.flags
    rude = screen(
        [TextField("body", GOOD), TextField("display_name", "đéo", min_chars=0, diacritics=False)],
        WORDS,
    )
    assert rude.held


def test_clean_text_is_nfc_one_tone_placement_no_controls() -> None:
    decomposed = "Hoa\u0300 bi\u0300nh\u0007  \u202eabc\r\n\r\n\r\n\r\nthuỷ"
    cleaned = clean_text(decomposed, multiline=True)
    assert cleaned == "Hòa bình abc\n\nthủy"
    assert clean_text("a\nb", multiline=False) == "a b"


def test_the_shipped_word_list_loads_and_has_both_kinds() -> None:
    words = load_word_list(DEFAULT_WORD_LIST)
    assert len(words.banned) > 10 and len(words.suspect) > 5
    assert words.find("Đồ óc chó").banned == ["óc chó"]
    # Its abbreviations are read as the words they stand for.
    assert words.find("dmcs").banned_variants == ["đụ mẹ (du me)"]


def test_a_malformed_word_list_is_refused() -> None:
    with pytest.raises(ValueError, match="banned"):
        WordList.from_mapping({"banned": "đéo"})


FOLDING = WordList.from_mapping(
    {
        "banned": ["đéo", "địt", "cặc", "vãi lồn", "đ.m"],
        "suspect": ["phản động"],
        "abbreviations": {"vl": "vãi lồn"},
    }
)


@pytest.mark.parametrize(
    ("written", "variant"),
    [
        ("deo", "đéo (deo)"),  # no diacritics
        ("DEO", "đéo (deo)"),
        ("đ.é.o", None),  # dots inside the word, marks as in the list: the word itself
        ("d.e.o", "đéo (deo)"),
        ("d1t", "địt (d1t)"),  # a digit for a letter
        ("diiiit", "địt (diiiit)"),  # letters repeated
        ("vai lon", "vãi lồn (vai lon)"),  # a phrase, folded word by word
        ("vãi l0n", "vãi lồn (vãi l0n)"),  # half as written, half folded
        ("vl", "vãi lồn (vai lon)"),  # an abbreviation spelled out
        ("d.m", "đ.m (dm)"),
        ("đm", None),
        ("dm", "đ.m (dm)"),
    ],
)
def test_banned_words_written_around_the_list_are_held_as_variants(
    written: str, variant: str | None
) -> None:
    result = screen([TextField("body", f"{GOOD} Cái {written} gì thế.")], FOLDING)
    assert result.accepted  # held for an editor, never refused
    assert result.held
    if variant is None:
        assert any(f.startswith(f"{FLAG_BANNED}:") for f in result.flags), result.flags
    else:
        assert result.flags == [f"{FLAG_BANNED_VARIANT}:{variant}"]


def test_words_written_with_other_marks_are_other_words() -> None:
    # "các" folds like "cặc", "đeo" like "đéo", "vải lộn" like "vãi lồn": all ordinary Vietnamese.
    result = screen(
        [TextField("body", f"Các đồng chí đeo huy hiệu, vải lộn trái. Năm 2026. {GOOD}")],
        FOLDING,
    )
    assert result.accepted and result.flags == []
    assert not result.held


def test_suspect_words_are_flagged_once_folded_too_without_holding() -> None:
    result = screen([TextField("body", f"{GOOD} Luận điệu phan dong.")], FOLDING)
    assert result.flags == [f"{FLAG_SUSPECT}:phản động"]
    assert not result.held


def test_a_malformed_abbreviation_list_is_refused() -> None:
    with pytest.raises(ValueError, match="abbreviations"):
        WordList.from_mapping({"banned": ["đéo"], "abbreviations": ["vl"]})
