"""Vietnamese text facts the portal designs for (see shared/DOMAIN.md).

* Correct text is Unicode NFC.
* Two tone-mark placements are in use for the rhymes oa, oe, uy without a final consonant:
  "hoà"/"hòa", "thuỷ"/"thủy". The portal keeps one: the mark on the first vowel ("hòa",
  "thủy"), the placement most Vietnamese newsrooms use.
* đ/Đ is its own letter, not d with a combining mark: folding must map it explicitly.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator

# Combining tone marks (grave, acute, hook above, tilde, dot below).
_TONES = "\u0300\u0301\u0309\u0303\u0323"
# Other Vietnamese vowel marks (circumflex, breve, horn).
_MARKS = "\u0302\u0306\u031b"

_WORD = re.compile(r"\w+", re.UNICODE)
_FOLD_EXTRA = str.maketrans({"đ": "d", "Đ": "D"})


def nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def _fold_by_decomposition(text: str) -> str:
    decomposed = unicodedata.normalize("NFD", text.translate(_FOLD_EXTRA))
    return unicodedata.normalize(
        "NFC", "".join(c for c in decomposed if not unicodedata.combining(c))
    )


# Latin (with Vietnamese) and general punctuation: every character there is a starter whose
# folded form never composes with its neighbour's, so folding one character at a time through
# a table gives exactly what decomposing the whole text gives, at C speed.
_OUTSIDE_LATIN = re.compile("[^\u0000-\u024f\u1e00-\u1eff\u2000-\u206f]")
_FOLD_TABLE = [_fold_by_decomposition(chr(c)) for c in range(0x2070)]


def ascii_fold(text: str) -> bytes | None:
    """``fold(text)`` as ASCII bytes when it is all ASCII (Vietnamese letters, ASCII symbols),
    else None. One decomposition and no per-character table: the letters decompose into ASCII
    and Vietnamese marks, and when the marks are all the text holds beyond ASCII, dropping
    what ASCII cannot encode removes exactly what folding removes."""
    decomposed = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    folded = decomposed.encode("ascii", "ignore")
    if len(decomposed) - len(folded) == sum(map(decomposed.count, _TONES + _MARKS)):
        return folded
    return None


def fold(text: str) -> str:
    """Remove every diacritic: 'Đảng Cộng sản' -> 'Dang Cong san'."""
    if _OUTSIDE_LATIN.search(text) is None:
        return text.translate(_FOLD_TABLE)
    return _fold_by_decomposition(text)


_MARK = re.compile(f"[{_TONES}{_MARKS}]")


def has_vietnamese_diacritics(text: str) -> bool:
    """True when the text carries any Vietnamese tone or vowel mark, or the letter đ."""
    if "đ" in text or "Đ" in text:
        return True
    return _MARK.search(unicodedata.normalize("NFD", text)) is not None


# A text counts as written with diacritics when at least this share of its words carry a mark
# (real Vietnamese is ~75%); a short text needs one marked word. The public website's script
# (services/web static/js/portal.js) applies the same rule as the reader types.
MIN_MARKED_SHARE = 0.25
SHORT_TEXT_WORDS = 4
_LETTER_WORD = re.compile(r"[^\W\d_]+")


def written_with_diacritics(text: str) -> bool:
    """Whether ``text`` reads as Vietnamese typed with its marks (not "khong dau")."""
    words = _LETTER_WORD.findall(unicodedata.normalize("NFC", text))
    if not words:
        return False
    marked = sum(1 for w in words if has_vietnamese_diacritics(w))
    if len(words) < SHORT_TEXT_WORDS:
        return marked > 0
    return marked / len(words) >= MIN_MARKED_SHARE


def _move_tone(word: str) -> str:
    """'hoà' -> 'hòa', 'thuỷ' -> 'thủy', 'quý' unchanged (qu is a consonant)."""
    d = unicodedata.normalize("NFD", word)
    base = "".join(c for c in d if c not in _TONES)
    tones = [c for c in d if c in _TONES]
    if len(tones) != 1:
        return word
    low = base.lower()
    for rhyme in ("oa", "oe", "uy"):
        if low.endswith(rhyme) and not (rhyme == "uy" and low.endswith("quy")):
            # Only plain o/u/a/e/y (no other marks) form these rhymes.
            first = len(base) - 2
            rebuilt = base[: first + 1] + tones[0] + base[first + 1 :]
            return unicodedata.normalize("NFC", rebuilt)
    return word


# In NFC text only a word ending in a bare o or u followed by a/e (o) or y (u), bare or with a
# tone mark, can have its tone moved (onto that o or u); every other word is left as it is
# without looking at it. Such words are found by their end (one scan of the text for a rare
# two-letter ending), then read back to their start.
_OPEN_RHYME_END = re.compile(
    "[oOuU](?:(?<=[oO])[aàáảãạAÀÁẢÃẠeèéẻẽẹEÈÉẺẼẸ]|(?<=[uU])[yỳýỷỹỵYỲÝỶỸỴ])(?!\\w)"
)


def _moved_tones(text: str) -> Iterator[tuple[int, int, str]]:
    """(start, end, new spelling) of each word of NFC ``text`` whose tone moves, in order."""
    for m in _OPEN_RHYME_END.finditer(text):
        start = m.start()
        while start > 0 and (text[start - 1].isalnum() or text[start - 1] == "_"):  # \w
            start -= 1
        word = text[start : m.end()]
        moved = _move_tone(word)
        if moved != word:
            yield start, m.end(), moved


def normalize_tone_placement(text: str) -> str:
    """NFC text with the tone mark of open oa/oe/uy rhymes on the first vowel."""
    text = nfc(text)
    parts: list[str] = []
    pos = 0
    for start, end, moved in _moved_tones(text):
        parts += (text[pos:start], moved)
        pos = end
    if not parts:
        return text
    parts.append(text[pos:])
    return "".join(parts)


def needs_tone_placement(text: str) -> bool:
    """False when ``normalize_tone_placement`` would return ``text`` unchanged for certain:
    already NFC, no word whose tone moves (clean Vietnamese text costs two scans)."""
    if not unicodedata.is_normalized("NFC", text):
        return True
    return next(_moved_tones(text), None) is not None


def _normalize_tone_placement_every_word(text: str) -> str:
    """The definition ``normalize_tone_placement`` keeps (tests compare the two)."""
    return _WORD.sub(lambda m: _move_tone(m.group(0)), nfc(text))


def slugify(text: str, max_length: int = 80) -> str:
    """URL slug: folded, lower case, hyphens: 'Hội nghị Trung ương 8' -> 'hoi-nghi-trung-uong-8'."""
    slug = re.sub(r"[^a-z0-9]+", "-", fold(text).lower()).strip("-")
    if len(slug) > max_length:
        slug = slug[:max_length].rsplit("-", 1)[0] or slug[:max_length]
    return slug
