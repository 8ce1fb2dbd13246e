"""Undoing UTF-8 read as Windows-1252 or Latin-1, once or more, with lost bytes put back."""

from __future__ import annotations

import contextlib
import re
import unicodedata
from collections.abc import Iterator

from portal_text.legacy_encodings import (
    BYTE_CHARS,
    COMMON_PUNCTUATION,
    CP1252_TO_BYTE,
    as_bytes,
)
from portal_text.memo import word_cache
from portal_text.vietnamese_words import EDGE_PUNCT, VIETNAMESE_LETTERS, is_vietnamese_syllable

# --- UTF-8 mojibake ---------------------------------------------------------------------------

# Bytes Windows-1252 leaves undefined: decoders drop them or write U+FFFD.
_LOST_BYTES = (0x90, 0x81, 0x8D, 0x8F, 0x9D)


_HOLE = -1


# A UTF-8 lead byte (as Windows-1252/Latin-1 shows it) before a continuation byte or U+FFFD:
# the continuation is searched for and the lead checked by a look-behind (fewer places to stop
# at in clean text). The two classes let another check join this scan (``text_repair``).
MOJIBAKE_LEADS = "\u00c2-\u00f4"
MOJIBAKE_TRAILS = (
    re.escape("".join(chr(b) for b in range(0x80, 0xC0)))
    + re.escape("".join(CP1252_TO_BYTE))
    + "\ufffd"
)
MOJIBAKE_HINT = re.compile(f"[{MOJIBAKE_TRAILS}](?<=[{MOJIBAKE_LEADS}].)")


_MOJIBAKE_SPAN = re.compile("[" + re.escape(BYTE_CHARS) + "\ufffd]+")


_MAX_LAYERS = 3


def _utf8_candidates(seq: list[int], lenient: bool, limit: int = 32) -> list[tuple[str, int]]:
    """Decodings of ``seq`` (bytes, ``_HOLE`` for U+FFFD) as UTF-8, where up to two lost
    continuation bytes are put back (each of the bytes Windows-1252 drops is tried), with the
    number of bytes put back."""
    results: list[tuple[str, int]] = []

    def continuations(j: int, need: int, fills: int) -> Iterator[tuple[list[int], int, int]]:
        if need == 0:
            yield [], j, fills
            return
        nxt = seq[j] if j < len(seq) else None
        if nxt is not None and nxt != _HOLE and 0x80 <= nxt <= 0xBF:
            for rest, k, left in continuations(j + 1, need - 1, fills):
                yield [nxt, *rest], k, left
            return
        if fills == 0:
            return
        lost = (*_LOST_BYTES, 0xA0) if lenient and nxt is None else _LOST_BYTES
        step = 1 if nxt == _HOLE else 0  # a U+FFFD stands for the byte; a dropped one doesn't
        for byte in lost:
            for rest, k, left in continuations(j + step, need - 1, fills - 1):
                yield [byte, *rest], k, left

    def walk(i: int, acc: str, fills: int) -> None:
        if len(results) >= limit:
            return
        if i == len(seq):
            results.append((acc, budget - fills))
            return
        lead = seq[i]
        if lead == _HOLE:
            return
        if lead < 0x80:
            walk(i + 1, acc + chr(lead), fills)
            return
        need = (
            1 if 0xC2 <= lead <= 0xDF else 2 if 0xE0 <= lead <= 0xEF else 3 if lead <= 0xF4 else 0
        )
        if need == 0 or lead < 0xC2:
            return
        for cont, j, left in continuations(i + 1, need, fills):
            try:
                ch = bytes([lead, *cont]).decode("utf-8")
            except UnicodeDecodeError:
                continue
            walk(j, acc + ch, left)

    budget = 2 if len(seq) <= 64 else 0
    walk(0, "", budget)
    return results


def _plausible(text: str) -> bool:
    """Decoded text that reads as language: Latin letters, Vietnamese, common punctuation."""
    for ch in text:
        o = ord(ch)
        if o < 0x80 or ch in VIETNAMESE_LETTERS or ch in COMMON_PUNCTUATION or ch in "«»°·©®":
            continue
        if (0xC0 <= o <= 0x24F or 0x1E00 <= o <= 0x1EFF) and ch.isalpha():
            continue
        if 0x2000 <= o <= 0x206F and unicodedata.category(ch)[0] in "PZ":
            continue
        return False
    return True


# When a lost byte leaves several valid words (ề ọ ỏ Ố ờ share a UTF-8 prefix), how common
# each word is decides, but only with a clear gap (2 classes): 3 very common, 2 common,
# 1 known, else 0. "về" beats "vờ"; "nhỏ"/"nhờ" or "bền"/"bọn" stay for a person.
_COMMON_WORDS_TEXT = """
3: về đề nhiều điều đều quyền tiền nền người thời mời giờ trời lời đời trường đường thường
   học họ mọi chọn đọc trọng gọi họp nhỏ bỏ hỏi giỏi đỏ khỏe khỏi thỏa số
2: liền miền chiều bền hiền truyền thuyền niềm nhờ chờ thờ ngờ cờ bờ mười cười phường tường
   vườn ngọc lọc nọ thọ vọng giọng bọn tọa tỏ mỏ vỏ mỏng lỏng hỏng cỏ ngọt nhường cố tố bố
   phố gốc
1: kề thề nề hề mềm bề đền phiền triều kiều diều kiềm thiền ghềnh bềnh vờ mờ sờ ờ dời rời
   gờ tờ lờ lười rười sườn trườn cường lường mường dường giường hường chọc dọn gọn nhọc
   thọt trọn mọc bọc đọng giọt lọt cọc cọp gọt họng lọng rọi chỏ xỏ gỏi mỏi tỏi sỏi ngỏ
   giỏ tỏa nhọ nhề ống
"""


_COMMON_WORDS: dict[str, int] = {
    word: int(rank)
    for rank, words in re.findall(r"(\d):([^:]+?)(?=\d:|$)", _COMMON_WORDS_TEXT, re.DOTALL)
    for word in words.split()
}


_CASED_WORD = re.compile(r"[^\W\d_]+")


def _case_anomalies(text: str) -> int:
    """Words neither lower, upper nor capitalised: "QUỌC" or "trỐng" from a wrong guess."""
    return sum(
        1
        for w in _CASED_WORD.findall(text)
        if not (w.islower() or w.isupper() or (w[0].isupper() and w[1:].islower()))
    )


# Between punctuation marks a lost byte could give, the closing quote is by far the likeliest.
_PUNCTUATION_PREFERENCE = {"”": 2, "‐": -1, "\u2001": -2}


def _preference(text: str, fills: int) -> tuple[int, int, int, int, int]:
    return (
        _words_valid(text),
        -_case_anomalies(text),
        -fills,  # a clean decoding beats one that guesses lost bytes
        sum(_COMMON_WORDS.get(w.lower(), 0) for w in _CASED_WORD.findall(text)),
        sum(_PUNCTUATION_PREFERENCE.get(ch, 0) for ch in text),
    )


def _words_valid(text: str) -> int:
    return sum(1 for w in re.findall(r"\w+", text) if not w.isascii() and is_vietnamese_syllable(w))


def _layer_options(token: str, lenient: bool) -> list[tuple[str, int]]:
    """Every way to undo one layer of mojibake in ``token`` (several when bytes were lost),
    with the number of lost bytes each one puts back."""
    options: list[tuple[str, int]] = [("", 0)]
    changed = False
    pos = 0
    for m in _MOJIBAKE_SPAN.finditer(token):
        between = token[pos : m.start()]
        pos = m.end()
        span = m.group(0)
        alternatives = [(span, 0)]
        if not span.isascii():
            seq = [_HOLE if c == "\ufffd" else (as_bytes(c) or b"\x00")[0] for c in span]
            decoded: list[tuple[str, int]] = []
            if _HOLE not in seq:
                with contextlib.suppress(UnicodeDecodeError):
                    decoded = [(bytes(seq).decode("utf-8"), 0)]
            if not decoded:
                decoded = _utf8_candidates(seq, lenient)
            decoded = [d for d in decoded if d[0] != span]
            if decoded:
                alternatives = decoded
                changed = True
        options = [(o + between + a, f + g) for o, f in options for a, g in alternatives][:32]
    if not changed:
        return []
    return [(o + token[pos:], f) for o, f in options]


_LENIENT_END = re.compile("[\u00c2-\u00f4]$")


_UTF8_LEAD = re.compile("[\u00c2-\u00f4]")


@word_cache(16384)  # a pure function of one token; garbled text repeats words
def undo_utf8_mojibake(token: str, *, lenient: bool = False) -> tuple[str, int]:
    """``token`` with UTF-8 mojibake undone, and how many layers were undone (0 if none).

    Every layer must decode as UTF-8; the result must read as language, so an accidental
    decoding of correct text ("KÊ»" -> "Kʻ") is refused. Where lost bytes leave several
    readings, valid Vietnamese words decide, then how common the word is; a tie is left alone.
    """
    if not MOJIBAKE_HINT.search(token) and not (
        lenient
        and (
            _LENIENT_END.search(token)
            or (_UTF8_LEAD.search(token) and not _reads_as_vietnamese(token))
        )
    ):
        return token, 0
    if not _MOJIBAKE_SPAN.fullmatch(token):
        # A word is garbled whole: "ĐÃ\u00a0" next to a correct "Đ" is a word, not mojibake.
        return token, 0
    finals: dict[str, tuple[tuple[int, int, int, int, int], int]] = {}
    frontier: list[tuple[str, int]] = [(token, 0)]
    budget = 64
    for depth in range(1, _MAX_LAYERS + 1):
        grown: list[tuple[str, int]] = []
        for text, fills in frontier:
            for option, more in _layer_options(text, lenient)[:budget]:
                budget -= 1
                grown.append((option, fills + more))
                if _plausible(option) and option not in finals:
                    finals[option] = (_preference(option, fills + more), depth)
        frontier = grown
        if not frontier or budget <= 0:
            break
    if not finals:
        return token, 0
    ranked = sorted(finals.items(), key=lambda kv: kv[1], reverse=True)
    best, (key, depth) = ranked[0]
    if len(ranked) > 1:
        other, other_depth = ranked[1][1]
        if (
            other_depth == depth
            and other[:3] == key[:3]
            and other[4] == key[4]
            and key[3] - other[3] < 2
        ):
            return token, 0  # two readings about as likely: leave it for a person
    if _reads_as_vietnamese(token) and not _reads_as_vietnamese(best):
        return token, 0  # it was valid Vietnamese ("MÃ" + no-break space): not mojibake
    return best, depth


def _reads_as_vietnamese(text: str) -> bool:
    """Every word is plain ASCII or a Vietnamese syllable, and one at least is Vietnamese."""
    words = [w.strip(EDGE_PUNCT) for w in re.split(r"[\s\u00a0]+", text)]
    words = [w for w in words if w]
    return any(not w.isascii() for w in words) and all(
        w.isascii() or all(is_vietnamese_syllable(p) for p in re.split(r"[-'’]", w) if p)
        for w in words
    )
