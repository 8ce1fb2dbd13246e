"""Vietnamese 8-bit font encodings seen through Windows-1252: the signs of them, their decoders
and what a font name says about them."""

from __future__ import annotations

import codecs
import contextlib
import re
import unicodedata
from collections.abc import Callable, Sequence
from enum import StrEnum
from typing import NamedTuple

from portal_text.legacy_tables import TCVN_C0, TCVN_HIGH, VISCII_C0, VISCII_HIGH, VNI
from portal_text.vietnamese_words import VIETNAMESE_LETTERS, token_score


class Encoding(StrEnum):
    TCVN3 = "tcvn3"
    VNI = "vni"
    VISCII = "viscii"
    WINDOWS_1258 = "windows_1258"
    UTF8_MOJIBAKE = "utf8_mojibake"


LABELS: dict[Encoding, str] = {
    Encoding.TCVN3: "TCVN3/ABC (.VnTime fonts)",
    Encoding.VNI: "VNI-Windows (VNI fonts)",
    Encoding.VISCII: "VISCII",
    Encoding.WINDOWS_1258: "Windows-1258 read as Windows-1252",
    Encoding.UTF8_MOJIBAKE: "UTF-8 read as Windows-1252/Latin-1",
}


# --- characters that correct Vietnamese text does not use ------------------------------------

# Punctuation common in correct text: never a sign of an encoding problem by itself.
COMMON_PUNCTUATION = frozenset("\u00a0“”‘’–—…•€™")


_WS = " \t\n\r\f\v"


def _is_evidence(ch: str) -> bool:
    o = ord(ch)
    if o < 0x80:
        return o < 0x20 and ch not in _WS
    if ch in COMMON_PUNCTUATION or ch in VIETNAMESE_LETTERS:
        return False
    # Latin-1 and the Windows-1252 extras (what 8-bit font text looks like), C1 controls.
    return o < 0x100 or ch in CP1252_TO_BYTE


CP1252_TO_BYTE: dict[str, int] = {}


for _b in range(0x80, 0xA0):
    with contextlib.suppress(UnicodeDecodeError):
        CP1252_TO_BYTE[bytes([_b]).decode("cp1252")] = _b


BYTE_CHARS = "".join(chr(o) for o in range(0x100)) + "".join(CP1252_TO_BYTE)


EVIDENCE_CHARS = "".join(c for c in BYTE_CHARS if _is_evidence(c)) + "\ufffd"


_EVIDENCE = re.compile("[" + re.escape(EVIDENCE_CHARS) + "]")


ENCODABLE = re.compile("[" + re.escape(BYTE_CHARS) + "]*")


def _c1_as_bytes(err: UnicodeError) -> tuple[bytes, int]:
    """Encode error handler: C1 controls (Latin-1 readings of 0x80..0x9F) are their byte."""
    assert isinstance(err, UnicodeEncodeError)
    chunk = err.object[err.start : err.end]
    if all(0x80 <= ord(c) < 0xA0 for c in chunk):
        return chunk.encode("latin-1"), err.end
    raise err


codecs.register_error("portal-c1", _c1_as_bytes)


def as_bytes(text: str) -> bytes | None:
    """The bytes a Windows-1252 (or Latin-1) reading turned into ``text``, None if impossible."""
    try:
        return text.encode("cp1252", "portal-c1")
    except UnicodeEncodeError:
        return None


# VNI spellings no correct Vietnamese word contains: a tone or vowel mark byte after a vowel
# where Vietnamese puts the mark on that vowel ("saùch", "Tuyeân", "aê"); "uâ" (tuần),
# "oá" (hoá), "uê" (quê), "iá" (giá) are real and not listed.
# Spelled out in both cases rather than with re.IGNORECASE (several times slower on long
# text); Python's case-insensitive "i" also matches the Turkish "İ" and "ı", kept here.
# The mark is searched for, and the vowel before it checked by a look-behind: marks are rarer
# than vowels in clean text, so the engine stops at fewer places (1.7x faster than the vowel
# first). ``VNI_DIGRAPH_MARKS`` and ``VNI_DIGRAPH_BEHIND`` let another check join this scan.
# (vowels, marks) pairs.
VNI_DIGRAPHS = (
    ("aeiouyAEIOUY\u0130\u0131", "\u00f9\u00f5\u00d9\u00d5"),
    ("aeAE", "\u00e1\u00e0\u00e3\u00e9\u00e8\u00fa\u00c1\u00c0\u00c3\u00c9\u00c8\u00da"),
    ("aeoAEO", "\u00e2\u00c2"),
    ("aA", "\u00ea\u00ca"),
)
VNI_DIGRAPH_MARKS = "".join(marks for _, marks in VNI_DIGRAPHS)
VNI_DIGRAPH_BEHIND = "|".join(f"[{vowels}][{marks}]" for vowels, marks in VNI_DIGRAPHS)
_VNI_DIGRAPH = re.compile(f"[{VNI_DIGRAPH_MARKS}](?<={VNI_DIGRAPH_BEHIND})")


def has_evidence(text: str) -> bool:
    """True when ``text`` holds a character (or VNI spelling) correct Vietnamese does not use."""
    return _EVIDENCE.search(text) is not None or _VNI_DIGRAPH.search(text) is not None


# --- decoders ---------------------------------------------------------------------------------


def _charmap(high: str, c0: dict[int, str], keep_windows_punctuation: bool) -> str:
    table = [chr(b) for b in range(0x80)]
    for b, ch in c0.items():
        table[b] = ch
    table += list(high)
    if keep_windows_punctuation:
        # The ABC (TCVN3) fonts keep Windows punctuation at 0x80..0x9F (quotes, dashes).
        for ch, b in CP1252_TO_BYTE.items():
            table[b] = ch
    return "".join(table)


_TCVN3_TABLE = _charmap(TCVN_HIGH, TCVN_C0, keep_windows_punctuation=True)


_TCVN_VN1_TABLE = _charmap(TCVN_HIGH, TCVN_C0, keep_windows_punctuation=False)


_VISCII_TABLE = _charmap(VISCII_HIGH, VISCII_C0, keep_windows_punctuation=False)


def _decode_charmap(token: str, table: str) -> str | None:
    raw = as_bytes(token)
    if raw is None:
        return None
    try:
        text, _ = codecs.charmap_decode(raw, "strict", table)
    except UnicodeDecodeError:
        return None
    return unicodedata.normalize("NFC", text)


def _decode_tcvn3(token: str) -> str | None:
    text = _decode_charmap(token, _TCVN3_TABLE)
    if text is None or not any(ch in CP1252_TO_BYTE or 0x80 <= ord(ch) < 0xA0 for ch in token):
        return text
    # Bytes 0x80..0x9F are capitals in VN1 and punctuation in the ABC fonts: the word decides.
    vn1 = _decode_charmap(token, _TCVN_VN1_TABLE)
    if vn1 is not None and token_score(vn1, token) > token_score(text, token):
        return vn1
    return text


def _decode_viscii(token: str) -> str | None:
    return _decode_charmap(token, _VISCII_TABLE)


def _decode_windows_1258(token: str) -> str | None:
    raw = as_bytes(token)
    if raw is None:
        return None
    try:
        return unicodedata.normalize("NFC", raw.decode("cp1258"))
    except UnicodeDecodeError:
        return None


# Two-character spellings match in any case ("Aù" is a capital typed before a small mark);
# the letter takes the case of its base. Single bytes (ơ ư đ and the i letters) are exact.
_VNI_PAIRS = {k.lower(): v.lower() for k, v in VNI.items() if len(k) == 2}


_VNI_SINGLES = {k: v for k, v in VNI.items() if len(k) == 1}


_VNI_PATTERN = re.compile(
    "|".join(re.escape(k) for k in _VNI_PAIRS) + "|[" + re.escape("".join(_VNI_SINGLES)) + "]",
    re.IGNORECASE,
)


_VNI_MARKS = frozenset(k[1] for k in VNI if len(k) == 2)


def _vni_letter(m: re.Match[str]) -> str:
    spelling = m.group(0)
    if len(spelling) == 1:
        return _VNI_SINGLES.get(spelling, spelling)
    letter = _VNI_PAIRS[spelling.lower()]
    return letter.upper() if spelling[0].isupper() else letter


def _decode_vni(token: str) -> str | None:
    parts: list[str] = []
    pos = 0
    for m in _VNI_PATTERN.finditer(token):
        gap = token[pos : m.start()]
        if any(ch in _VNI_MARKS for ch in gap):
            return None  # a mark byte that follows no vowel: not VNI
        parts += [gap, _vni_letter(m)]
        pos = m.end()
    tail = token[pos:]
    if any(ch in _VNI_MARKS for ch in tail):
        return None
    return "".join([*parts, tail])


DECODERS: dict[Encoding, Callable[[str], str | None]] = {
    Encoding.TCVN3: _decode_tcvn3,
    Encoding.VNI: _decode_vni,
    Encoding.VISCII: _decode_viscii,
    Encoding.WINDOWS_1258: _decode_windows_1258,
}


# --- fonts ------------------------------------------------------------------------------------


class Hint(NamedTuple):
    """What a font named in the markup says about the text it wraps."""

    encoding: Encoding | None  # None: a Unicode font (or no font) was named
    upper: bool = False  # ".VnTimeH": the TCVN3 capitals font shows small letters as capitals


NO_HINT = Hint(None)


def font_hint(family: str) -> Hint:
    """The encoding a font family implies: the first family named is the author's choice."""
    first = family.split(",")[0].strip().strip("'\"").strip()
    low = first.lower()
    if low.startswith("vni"):
        return Hint(Encoding.VNI)  # VNI-Times, VNI-Helve, VNI Aptima ...
    if low.startswith(".vn") or re.match(r"vn[a-z]", low):
        # The ABC capitals fonts end in "H": .VnTimeH, .VnArialH, .VnCentury SchoolbookH.
        return Hint(Encoding.TCVN3, upper=len(first) > 4 and first.endswith("H"))
    if "viscii" in low:
        return Hint(Encoding.VISCII)
    return NO_HINT


_TOKEN = re.compile(r"[^ \t\n\r\f\v]+")


def could_be_font_bytes(text: str) -> bool:
    """True when every character of ``text`` could be an 8-bit font byte seen through
    Windows-1252; Unicode Vietnamese letters outside Latin-1 (ạ, ơ, đ ...) cannot."""
    return ENCODABLE.fullmatch(text) is not None


def decode_in_font(text: str, hint: Hint) -> str:
    """``text`` typed in a legacy font, decoded with the encoding the font names.

    The font is taken at its word: no detection. Words the encoding cannot decode are kept as
    they are; a Unicode font (no encoding) leaves the text alone.
    """
    if hint.encoding is None:
        return text
    decode = DECODERS[hint.encoding]

    def word(m: re.Match[str]) -> str:
        token = m.group(0)
        if token.isascii() and token.isprintable():
            return token  # the same in every encoding
        decoded = decode(token)
        return token if decoded is None else decoded

    out = _TOKEN.sub(word, text)
    return out.upper() if hint.upper else out


def decode_pieces_in_font(pieces: Sequence[str], hint: Hint) -> list[str]:
    """Consecutive pieces of text under one legacy font (split where the formatting changes),
    each decoded with the font's encoding. A VNI letter is a base letter and a mark byte, and an
    editor may split the two: a mark byte that starts a piece goes back to the letter before."""
    out = list(pieces)
    if hint.encoding is Encoding.VNI:
        for i in range(1, len(out)):
            marks = len(out[i]) - len(out[i].lstrip("".join(_VNI_MARKS)))
            if marks and out[i - 1][-1:].isalpha():
                out[i - 1] += out[i][:marks]
                out[i] = out[i][marks:]
    return [decode_in_font(piece, hint) for piece in out]
