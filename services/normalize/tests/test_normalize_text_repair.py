"""Vietnamese text repair: legacy encodings, mojibake, NFD; correct text never changed."""

from __future__ import annotations

import gzip
import json
import re
import unicodedata
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portal_normalize import text_repair
from portal_normalize.text_repair import (
    VIETNAMESE_LETTERS,
    Encoding,
    Hint,
    RepairLog,
    describe,
    font_hint,
    is_vietnamese_syllable,
    repair_html,
    repair_text,
    undo_utf8_mojibake,
    worth_a_look,
    worth_a_look_each,
)
from portal_text import normalize_tone_placement
from portal_text.legacy_tables import TCVN_C0, TCVN_HIGH, VISCII_C0, VISCII_HIGH, VNI

CORPUS = Path(__file__).parent / "corpus"
CHARMAPS = Path("/usr/share/i18n/charmaps")


def load(name: str) -> list[dict[str, str]]:
    # split on "\n" only: the samples hold C1 controls such as U+0085 (NEL)
    lines = (CORPUS / f"{name}.jsonl").read_text(encoding="utf-8").split("\n")
    return [json.loads(line) for line in lines if line.strip()]


def final(text: str) -> str:
    """What normalize outputs after the repair: NFC with the portal's tone placement."""
    return normalize_tone_placement(text)


# --- the corpus: every form comes out as correct NFC text ------------------------------------

FORMS = {
    "tcvn3": Encoding.TCVN3,
    "vni": Encoding.VNI,
    "viscii": Encoding.VISCII,
    "windows_1258": Encoding.WINDOWS_1258,
    "utf8_mojibake": Encoding.UTF8_MOJIBAKE,
}


@pytest.mark.parametrize(
    ("form", "sample"),
    [(form, sample) for form in FORMS for sample in load(form)],
    ids=lambda v: v if isinstance(v, str) else v["sent"][:30],
)
def test_each_corpus_sample_comes_out_as_correct_text(form: str, sample: dict[str, str]) -> None:
    log = RepairLog()
    repaired = repair_text(sample["sent"], "body", log)
    assert final(repaired) == final(sample["expected"])
    assert log.encodings == [FORMS[form]]
    assert not log.unknown


@pytest.mark.parametrize("sample", load("utf8_mojibake_lossy"), ids=lambda s: s["sent"][:30])
def test_lossy_mojibake_is_repaired_where_one_reading_is_possible(sample: dict[str, str]) -> None:
    """A lost byte can leave two real words ("bền"/"bọn"): never a wrong guess, only a gap."""
    repaired = final(repair_text(sample["sent"], "body", RepairLog())).split(" ")
    expected = final(sample["expected"]).split(" ")
    sent = sample["sent"].split(" ")  # a no-break space is part of a garbled "à"
    assert len(repaired) == len(expected) == len(sent)
    wrong = [(r, s) for r, e, s in zip(repaired, expected, sent, strict=True) if r != e]
    assert all(r == s for r, s in wrong), wrong  # what is not repaired is left as it came
    assert len(wrong) <= 1


@pytest.mark.parametrize("sample", load("nfd"), ids=lambda s: s["form"] + s["sent"][:20])
def test_nfd_and_windows_1258_combining_marks_become_nfc(sample: dict[str, str]) -> None:
    log = RepairLog()
    repaired = repair_text(sample["sent"], "body", log)
    assert final(repaired) == unicodedata.normalize("NFC", final(sample["expected"]))
    assert log.encodings == []  # nothing to decode: NFC does it


def test_the_report_names_the_encoding_and_where_it_was() -> None:
    log = RepairLog()
    repair_text(load("tcvn3")[0]["sent"], "title", log)
    repair_text(load("utf8_mojibake")[3]["sent"], "summary", log)  # UTF-8 read twice
    messages = dict(describe(log))
    assert "title" in messages["encoding_tcvn3"]
    assert "TCVN3" in messages["encoding_tcvn3"]
    assert "twice" in messages["encoding_utf8_mojibake"]
    assert "summary" in messages["encoding_utf8_mojibake"]


# --- run by run in HTML, fonts as signals ----------------------------------------------------


def text_of(html: str) -> str:
    text = re.sub(r"<(?:p|h1|/p|/h1)>", " ", html)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", text)).strip()


def test_mixed_runs_are_repaired_run_by_run() -> None:
    html = (
        "<p>Tin mới: <font face='.VnTime'>§¶ng bé tØnh Qu¶ng Ng·i</font> và "
        '<span style="font-family: VNI-Times, serif">Ñaûng uûy khoái</span> '
        "cùng <b>Hội đồng nhân dân</b> họp phiên thường kỳ.</p>"
        "<p>Äáº£ng viÃªn gÆ°Æ¡ng máº«u.</p>"
    )
    log = RepairLog()
    out = repair_html(html, "body", log)
    assert text_of(out) == (
        "Tin mới: Đảng bộ tỉnh Quảng Ngãi và Đảng ủy khối cùng Hội đồng nhân dân họp phiên "
        "thường kỳ. Đảng viên gương mẫu."
    )
    assert "<b>Hội đồng nhân dân</b>" in out  # markup stays where it was
    assert set(log.encodings) == {Encoding.TCVN3, Encoding.VNI, Encoding.UTF8_MOJIBAKE}


def test_a_run_split_by_inline_markup_is_one_run() -> None:
    log = RepairLog()
    out = repair_html(
        "<p><font face='.VnTime'>Héi <b>nghÞ</b> lÇn thø <i>t¸m</i></font></p>", "body", log
    )
    assert text_of(out) == "Hội nghị lần thứ tám"


def test_the_capitals_font_gives_capitals() -> None:
    log = RepairLog()
    out = repair_html(
        '<h1><font face=".VnTimeH">®¹i héi ®¹i biÓu toµn quèc</font></h1>', "body", log
    )
    assert text_of(out) == "ĐẠI HỘI ĐẠI BIỂU TOÀN QUỐC"


def test_a_font_name_decides_a_short_ambiguous_run() -> None:
    # "Thuû" reads "Thủ" in VNI and "Thuỷ" in TCVN3: alone, only the font can tell.
    log = RepairLog()
    assert repair_text("Thuû", "title", log) == "Thuû"
    assert repair_text("Thuû", "title", RepairLog(), Hint(Encoding.VNI)) == "Thủ"
    assert repair_text("Thuû", "title", RepairLog(), Hint(Encoding.TCVN3)) == "Thuỷ"
    # With more words the text decides by itself.
    assert repair_text("Thuû töôùng", "title", RepairLog()) == "Thủ tướng"


def test_a_legacy_font_over_correct_unicode_changes_nothing() -> None:
    html = '<p><font face=".VnTime">Hội nghị Trung ương lần thứ tám</font> Tô Lâm</p>'
    assert (
        text_of(repair_html(html, "body", RepairLog())) == "Hội nghị Trung ương lần thứ tám Tô Lâm"
    )


def test_alt_text_is_repaired_and_entities_are_decoded() -> None:
    log = RepairLog()
    out = repair_html(
        '<img src="a.jpg" alt="¶nh minh häa"><p>&#167;&#182;ng bé tØnh</p>', "body", log
    )
    assert 'alt="Ảnh minh họa"' in unicodedata.normalize("NFC", out) or 'alt="ảnh minh họa"' in out
    assert "Đảng bộ tỉnh" in out


def test_a_repeated_tag_is_repaired_in_each_place() -> None:
    # Start tags are kept once re-emitted; an alt text to repair is a run in each place.
    font = '<font face=".VnTime">'
    html = (
        f'{font}<img src="a.jpg" alt="¶nh"></font><p>{font}<img src="a.jpg" alt="¶nh"></font></p>'
    )
    out = unicodedata.normalize("NFC", repair_html(html + html, "body", RepairLog()))
    assert out.count('alt="ảnh"') == 4
    assert out.count(font) == 4


@pytest.mark.parametrize(
    ("family", "hint"),
    [
        (".VnTime", Hint(Encoding.TCVN3)),
        ("'.VnTimeH', serif", Hint(Encoding.TCVN3, upper=True)),
        (".VnArial NarrowH", Hint(Encoding.TCVN3, upper=True)),
        ("VNI-Times", Hint(Encoding.VNI)),
        ("VNI-Helve-Condense", Hint(Encoding.VNI)),
        ("VISCII Times", Hint(Encoding.VISCII)),
        ("Times New Roman, .VnTime", Hint(None)),
        ("Arial", Hint(None)),
    ],
)
def test_font_names(family: str, hint: Hint) -> None:
    assert font_hint(family) == hint


def test_a_garbled_text_in_an_unknown_encoding_is_reported() -> None:
    # VPS, an encoding we do not convert: several garbled words stay and are reported.
    log = RepairLog()
    sent = "Ð¶ng C×ng s¶n Vi¿t Nam l¤nh ð¸o toàn di¿n"
    repair_text(sent, "body", log)
    assert log.unknown["body"] >= 1


def test_replacement_characters_are_counted() -> None:
    log = RepairLog()
    repair_text("Thông báo k\ufffdt quả", "title", log)
    assert log.replacement_chars["title"] == 1


def test_eth_used_for_d_with_stroke_is_fixed_only_in_vietnamese_words() -> None:
    log = RepairLog()
    assert repair_text("ÐẢNG ủy Ðà Nẵng; Ðorđević", "title", log) == "ĐẢNG ủy Đà Nẵng; Ðorđević"


# --- correct Unicode never changes -----------------------------------------------------------

REAL_WORDS = sorted(
    {w.strip('.,;:!?()“”"-–') for s in load("tcvn3") + load("vni") for w in s["expected"].split()}
    - {""}
)
OTHER_TOKENS = [
    "25°C",
    "©",
    "2024",
    "±0,5%",
    "«Tô",
    "Lâm»",
    "Müller",
    "Köln",
    "São",
    "Paulo",
    "François",
    "España",
    "Zürich",
    "Ñoño",
    "café",
    "Café",
    "naïve",
    "Schröder",
    "Bjørn",
    "Łódź",
    "§2",
    "½",
    "“",
    "”",
    "–",
    "…",
    "(TTXVN)",
    "Ê",
    "Đê",
    "Ông",
    "Ê-đê",
    "K'Ho",
    "COVID-19",
    "www.dangcongsan.vn",
    "UBND",
    "€",
    "™",
    "•",
    "Đắk",
    "Lắk",
    "Pleiku",
    "H'Mông",
]
_WORD = st.sampled_from(REAL_WORDS)
_CASED = st.one_of(_WORD, _WORD.map(str.upper), _WORD.map(str.capitalize))
_TOKEN = st.one_of(_CASED, _CASED, _CASED, st.sampled_from(OTHER_TOKENS))
_SEP = st.sampled_from([" ", " ", " ", ", ", ". ", "; ", ": ", " - ", "\n", "\u00a0"])


@st.composite
def vietnamese_text(draw: st.DrawFn) -> str:
    tokens = draw(st.lists(_TOKEN, min_size=1, max_size=40))
    seps = draw(st.lists(_SEP, min_size=len(tokens), max_size=len(tokens)))
    return "".join(t + s for t, s in zip(tokens, seps, strict=True)).strip()


@settings(max_examples=600, deadline=None)
@given(vietnamese_text())
def test_correct_unicode_passes_unchanged(text: str) -> None:
    log = RepairLog()
    assert repair_text(text, "body", log) == text
    assert log.encodings == []


@settings(max_examples=300, deadline=None)
@given(vietnamese_text(), st.sampled_from([".VnTime", "VNI-Times", "VISCII", ".VnTimeH"]))
def test_correct_unicode_under_a_legacy_font_passes_unchanged(text: str, font: str) -> None:
    """A partner that converted its text but kept the old font name loses nothing."""
    html = f'<p><font face="{font}">{text.replace("&", "&amp;").replace("<", "&lt;")}</font></p>'
    out = repair_html(html, "body", RepairLog())
    assert out == html or text_of(out) == text_of(html.replace("&amp;", "&").replace("&lt;", "<"))


# Runs as a page sends them: clean Vietnamese, VNI and TCVN3 words, UTF-8 mojibake, signs
# of an encoding on their own, and the characters the check stops at in any order.
_SUSPECT_TOKEN = st.sampled_from(
    ["BAÙO", "caùc", "Toång", "nhö", "Ñaûng", "§¶ng", "ÐaÒng", "Ä\x90áº£ng", "hoà", "quá",
     "toàn", "giáo", "Tuyeân", "saùch", "\ufffd", "\x01", "ôù", "İù", "Âº"]
)  # fmt: skip
_RUN = st.one_of(
    vietnamese_text(),
    st.lists(st.one_of(_CASED, _SUSPECT_TOKEN), max_size=12).map(" ".join),
    st.text(
        alphabet="aeouyôÔöÖùûõâáàãêéèúÙÛÕÂÁÀÃÊÉÈÚÃÄÅ\x80\x90\x9d€‚§Ö\ufffd\x01 \n\t-", max_size=12
    ),
)


@settings(max_examples=400, deadline=None)
@given(st.lists(_RUN, max_size=8))
def test_runs_checked_together_are_checked_as_each_alone(runs: list[str]) -> None:
    """One scan of a body's runs decides for each run what a scan of that run alone would."""
    assert worth_a_look_each(runs) == [worth_a_look(r) for r in runs]


def test_what_is_worth_a_look() -> None:
    assert not worth_a_look("Hội nghị lần thứ tám, hoà bình và quá trình toàn diện")
    assert worth_a_look("§¶ng bé tØnh")  # TCVN3
    assert worth_a_look("Ä\x90áº£ng")  # UTF-8 read as Windows-1252
    assert worth_a_look("BAÙO caùc")  # VNI spellings no Vietnamese word has
    # Words with a vowel + mark pair that are not syllables: two count, one is too little.
    assert worth_a_look("hoàx hoàz")
    assert not worth_a_look("hoàx hoà bình")
    assert worth_a_look_each(["hoà bình", "BAÙO caùc", "", "Ñaûng"]) == [False, True, False, True]


_VIET_SENTENCE = st.lists(_CASED, min_size=6, max_size=30).map(" ".join)


@settings(max_examples=200, deadline=None)
@given(_VIET_SENTENCE)
def test_utf8_mojibake_round_trips(text: str) -> None:
    sent = text.encode("utf-8").decode("latin-1")
    assert repair_text(sent, "body", RepairLog()) == text


@settings(max_examples=300, deadline=None)
@given(_VIET_SENTENCE)
def test_lossy_mojibake_never_guesses_wrong(text: str) -> None:
    """With the undefined bytes dropped, each word comes back right or stays as it came."""
    sent = text.encode("utf-8").decode("cp1252", errors="ignore")
    repaired = repair_text(sent, "body", RepairLog()).split(" ")
    for out, want, came in zip(repaired, text.split(" "), sent.split(" "), strict=True):
        assert out in (want, came)


def _as_vni(text: str) -> str:
    spelling = {letter: s for s, letter in VNI.items()}
    return "".join(spelling.get(c, c) for c in text)


def _distinct_accented(text: str) -> int:
    return len({w.lower() for w in text.split() if not w.isascii()})


@settings(max_examples=200, deadline=None)
@given(_VIET_SENTENCE.filter(lambda t: _distinct_accented(t) >= 5))
def test_vni_round_trips(text: str) -> None:
    assert final(repair_text(_as_vni(text), "body", RepairLog())) == final(text)


@settings(max_examples=300, deadline=None)
@given(st.lists(_CASED, min_size=1, max_size=4).map(" ".join))
def test_short_vni_comes_back_right_or_as_it_came(text: str) -> None:
    """A few words can read as valid Vietnamese in VNI and as sent ("moà" is "mòa"): then the
    text is left alone, never turned into a third reading."""
    sent = _as_vni(text)
    assert final(repair_text(sent, "body", RepairLog())) in (final(text), final(sent))


def test_a_tie_between_encodings_goes_to_the_everyday_reading() -> None:
    # VNI reads "Tổng như như", VISCII "Toăng nhỏ nhỏ": both valid syllables, one is everyday.
    assert repair_text("19/9 Toång nhö nhö", "body", RepairLog()) == "19/9 Tổng như như"


# --- the tables against their definitions ----------------------------------------------------


def _charmap(name: str) -> dict[int, str]:
    path = CHARMAPS / f"{name}.gz"
    assert path.is_file(), f"{path} is missing: Debian's locales package has it (system-deps)"
    table: dict[int, str] = {}
    with gzip.open(path, "rt", encoding="ascii") as f:
        for line in f:
            m = re.match(r"^<U([0-9A-F]{4})>\s+/x([0-9a-f]{2})\s", line)
            if m:
                table.setdefault(int(m.group(2), 16), chr(int(m.group(1), 16)))
    return table


# glibc's charmaps are the independent definition of both encodings (deploy/system-deps.sh).
@pytest.mark.parametrize(
    ("name", "high", "c0"),
    [("TCVN5712-1", TCVN_HIGH, TCVN_C0), ("VISCII", VISCII_HIGH, VISCII_C0)],
)
def test_tables_match_the_glibc_charmaps(name: str, high: str, c0: dict[int, str]) -> None:
    charmap = _charmap(name)
    assert {b: high[b - 0x80] for b in range(0x80, 0x100)} == {
        b: charmap[b] for b in range(0x80, 0x100)
    }
    assert c0 == {b: ch for b, ch in charmap.items() if b < 0x20 and ord(ch) != b}


def test_every_vietnamese_letter_has_one_spelling_in_each_table() -> None:
    letters = {c for c in VIETNAMESE_LETTERS if not c.isascii()}
    assert len(letters) == 134
    assert set(VNI.values()) == letters
    assert len(VNI) == len(set(VNI.values()))  # one spelling per letter
    assert set(VISCII_HIGH) | set(VISCII_C0.values()) >= letters
    # TCVN3 (VN1) has every small letter and the capitals without tone marks.
    tcvn = {unicodedata.normalize("NFC", c) for c in TCVN_HIGH} | set(TCVN_C0.values())
    assert {c for c in letters if c.islower()} <= tcvn


def test_every_letter_survives_each_single_byte_round_trip() -> None:
    tables = {
        Encoding.VISCII: text_repair._VISCII_TABLE,
        Encoding.TCVN3: text_repair._TCVN_VN1_TABLE,
    }
    for high, c0, encoding in (
        (VISCII_HIGH, VISCII_C0, Encoding.VISCII),
        (TCVN_HIGH, TCVN_C0, Encoding.TCVN3),
    ):
        reverse = {ch: bytes([0x80 + i]) for i, ch in enumerate(high)} | {
            ch: bytes([b]) for b, ch in c0.items()
        }
        for letter in sorted(reverse):
            if letter not in VIETNAMESE_LETTERS or letter.isascii():
                continue
            raw = b"Ng" + reverse[letter]
            shown = "".join(bytes([b]).decode("cp1252", errors="ignore") or chr(b) for b in raw)
            # The full table (TCVN VN1 capitals at 0x80..0x9F included).
            assert text_repair._decode_charmap(shown, tables[encoding]) == f"Ng{letter}"


@pytest.mark.parametrize(
    "word",
    [
        "Nghiêng",
        "quyết",
        "Đảng",
        "khuya",
        "khuỷu",
        "người",
        "rượu",
        "giữa",
        "gì",
        "oạp",
        "thuở",
        "xoong",
        "boong",
        "quýt",
        "HUỲNH",
        "yêu",
        "ấy",
        "ơi",
        "ừ",
        "uống",
        "tuần",
        "khuấy",
        "ngoẹo",
    ],
)
def test_real_syllables_are_valid(word: str) -> None:
    assert is_vietnamese_syllable(word)


@pytest.mark.parametrize(
    "word", ["ngă", "viöt", "héi", "thñ", "cåc", "tàc", "online", "ậờng", "đăk", "aa", ""]
)
def test_garbled_or_foreign_words_are_not_syllables(word: str) -> None:
    assert not is_vietnamese_syllable(word)


def test_correct_latin1_lookalikes_of_utf8_stay() -> None:
    # "Ê»" is valid UTF-8 for U+02BB: a Vietnamese word before a closing guillemet must stay.
    assert undo_utf8_mojibake("«KÊ»") == ("«KÊ»", 0)
