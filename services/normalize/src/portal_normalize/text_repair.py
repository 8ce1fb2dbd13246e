"""Repair of Vietnamese text sent in legacy encodings or garbled on the way (pure logic).

What partners send, as it reaches us (a Python ``str``, after JSON or HTML decoding):

* TCVN3/ABC (".VnTime" fonts), VNI-Windows ("VNI-Times"), VISCII: 8-bit font encodings shown
  through Windows-1252, e.g. "§¶ng Céng s¶n" (TCVN3), "Ñaûng Coäng saûn" (VNI);
* Windows-1258 read as Windows-1252: base letters followed by tone-mark bytes, "ÐaÒng";
* UTF-8 read as Windows-1252 or Latin-1, once or twice: "Ä\x90áº£ng", "Ã„Â\x90Ã¡ÂºÂ£ng",
  sometimes with the bytes Windows-1252 does not define (0x81, 0x8D, 0x8F, 0x90, 0x9D) lost;
* NFD and Windows-1258's combining tone marks (NFC and the tone placement fix those later).

How it decides, run by run (a run is a field, or the text of an HTML block under one font):

1. UTF-8 mojibake is undone token by token: it checks itself, since only real mojibake
   re-encodes into valid UTF-8 multi-byte sequences.
2. Tokens that could be 8-bit font text (every character is a Windows-1252/Latin-1 one) form
   units; a unit with a character that correct Vietnamese does not use (``§``, ``Ö``, ``ñ``,
   ``°`` ...) is decoded with each legacy encoding, and each result is scored by how many of
   its words are valid Vietnamese syllables. A decoding wins only when it is clearly better
   than the text as it came; a font name in the markup (``.VnTime``, ``VNI-Times``) lowers the
   bar for its own encoding. Correct Unicode never qualifies: its Vietnamese letters outside
   Latin-1 (ạ, ơ, đ, ...) cannot be 8-bit font bytes, and its all-Latin-1 words are already
   valid syllables that no decoding can beat.
3. What still looks like an unknown encoding (several garbled words left) is reported.
"""

from __future__ import annotations

import codecs
import contextlib
import functools
import html
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from html.parser import HTMLParser
from importlib import resources
from typing import NamedTuple

from portal_normalize.legacy_tables import TCVN_C0, TCVN_HIGH, VISCII_C0, VISCII_HIGH, VNI


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


class Hint(NamedTuple):
    """What a font named in the markup says about the text it wraps."""

    encoding: Encoding | None  # None: a Unicode font (or no font) was named
    upper: bool = False  # ".VnTimeH": the TCVN3 capitals font shows small letters as capitals


NO_HINT = Hint(None)

# --- the Vietnamese alphabet and syllables ----------------------------------------------------

_TONES = {
    "\u0300": "grave",
    "\u0301": "acute",
    "\u0303": "tilde",
    "\u0309": "hook",
    "\u0323": "dot",
}
_VOWELS = "aăâeêioôơuưy"
_LOWER_LETTERS = frozenset(
    unicodedata.normalize("NFC", v + t) for v in _VOWELS for t in ("", *_TONES)
) | frozenset("bcdđghklmnpqrstvx")
VIETNAMESE_LETTERS: frozenset[str] = _LOWER_LETTERS | {c.upper() for c in _LOWER_LETTERS}
_PLAIN_LETTERS = frozenset("aăâbcdđeêghiklmnoôơpqrstuưvxy")

_ONSETS_TEXT = "b c ch d đ g gh gi h k kh l m n ng ngh nh p ph qu r s t th tr v x"
_ONSETS = sorted(
    _ONSETS_TEXT.split(),
    key=len,
    reverse=True,
)
# Rhymes without the tone mark; with "qu" the u belongs to the onset ("quy", "quyết").
_RHYMES_TEXT = """
    a ai ao au ay ac ach am an ang anh ap at ăc ăm ăn ăng ăp ăt
    âc âm ân âng âp ât âu ây e eo ec em en eng ep et ê êu êch êm ên ênh êp êt
    i ia iu ich im in inh ip it iêc iêm iên iêng iêp iêt iêu
    o oi oc om on ong op ot oa oai oay oac oach oam oan oang oanh oap oat oao
    oăc oăm oăn oăng oăt oe oeo oen oet oem oong ooc ô ôi ôc ôm ôn ông ôp ôt
    ơ ơi ơm ơn ơp ơt u ua ui uc um un ung up ut uân uâng uât uây uê uêch uênh uơ
    uy uya uyu uyên uyêt uynh uych uyt uyn uôc uôi uôm uôn uông uôt
    ư ưa ưi ưu ưc ưng ưt ưm ưn ươc ươi ươm ươn ương ươp ươt ươu
    y yêm yên yêng yêt yêu yt ynh ych yn
"""
_RHYMES = frozenset(_RHYMES_TEXT.split())
_STOP_CODAS = ("c", "ch", "p", "t")


@functools.lru_cache(maxsize=65536)  # a pure function of one word; articles repeat words
def is_vietnamese_syllable(word: str) -> bool:
    """True for one written Vietnamese syllable ("Nghiêng", "quyết", "Đảng"), any case."""
    decomposed = unicodedata.normalize("NFD", word.lower())
    tones = [c for c in decomposed if c in _TONES]
    if len(tones) > 1:
        return False
    base = unicodedata.normalize("NFC", "".join(c for c in decomposed if c not in _TONES))
    if not base or any(c not in _PLAIN_LETTERS for c in base):
        return False
    for onset in (*_ONSETS, ""):
        if base.startswith(onset):
            rhyme = base[len(onset) :]
            if rhyme in _RHYMES or (onset == "gi" and rhyme == ""):
                if (
                    tones
                    and rhyme.endswith(_STOP_CODAS)
                    and _TONES[tones[0]] not in ("acute", "dot")
                ):
                    continue
                return True
    return False


# --- characters that correct Vietnamese text does not use ------------------------------------

# Punctuation common in correct text: never a sign of an encoding problem by itself.
_COMMON = frozenset("\u00a0“”‘’–—…•€™")
_WS = " \t\n\r\f\v"


def _is_evidence(ch: str) -> bool:
    o = ord(ch)
    if o < 0x80:
        return o < 0x20 and ch not in _WS
    if ch in _COMMON or ch in VIETNAMESE_LETTERS:
        return False
    # Latin-1 and the Windows-1252 extras (what 8-bit font text looks like), C1 controls.
    return o < 0x100 or ch in _CP1252_TO_BYTE


_CP1252_TO_BYTE: dict[str, int] = {}
for _b in range(0x80, 0xA0):
    with contextlib.suppress(UnicodeDecodeError):
        _CP1252_TO_BYTE[bytes([_b]).decode("cp1252")] = _b
_BYTE_CHARS = "".join(chr(o) for o in range(0x100)) + "".join(_CP1252_TO_BYTE)
_EVIDENCE_CHARS = "".join(c for c in _BYTE_CHARS if _is_evidence(c)) + "\ufffd"
_EVIDENCE = re.compile("[" + re.escape(_EVIDENCE_CHARS) + "]")
_ENCODABLE = re.compile("[" + re.escape(_BYTE_CHARS) + "]*")


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
_VNI_DIGRAPH = re.compile(
    "[aeiouy][\u00f9\u00f5]|[ae][\u00e1\u00e0\u00e3\u00e9\u00e8\u00fa]|[aeo]\u00e2|a\u00ea",
    re.IGNORECASE,
)


def has_evidence(text: str) -> bool:
    """True when ``text`` holds a character (or VNI spelling) correct Vietnamese does not use."""
    return _EVIDENCE.search(text) is not None or _VNI_DIGRAPH.search(text) is not None


# A plain vowel followed by a Latin-1 accented vowel: VNI's base + mark ("BAÙO", "caùc"), and
# also correct words ("hoà", "quá", "giáo"), so the words themselves are checked.
_VNI_LIKE = re.compile(r"[^ \t\n\r\f\v]*[aeouyAEOUYôöÔÖ][ùûõâáàãêéèúÙÛÕÂÁÀÃÊÉÈÚ][^ \t\n\r\f\v]*")


def worth_a_look(text: str) -> bool:
    """Cheap check: could ``text`` hold mojibake or legacy-encoded runs?"""
    if has_evidence(text) or _MOJIBAKE_HINT.search(text):
        return True
    broken = 0
    for m in _VNI_LIKE.finditer(text):
        core = m.group(0).strip(_EDGE_PUNCT)
        if core and not all(is_vietnamese_syllable(p) for p in re.split(r"[-'’]", core) if p):
            broken += 1
            if broken >= 2:
                return True
    return False


# --- decoders ---------------------------------------------------------------------------------


def _charmap(high: str, c0: dict[int, str], keep_windows_punctuation: bool) -> str:
    table = [chr(b) for b in range(0x80)]
    for b, ch in c0.items():
        table[b] = ch
    table += list(high)
    if keep_windows_punctuation:
        # The ABC (TCVN3) fonts keep Windows punctuation at 0x80..0x9F (quotes, dashes).
        for ch, b in _CP1252_TO_BYTE.items():
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
    if text is None or not any(ch in _CP1252_TO_BYTE or 0x80 <= ord(ch) < 0xA0 for ch in token):
        return text
    # Bytes 0x80..0x9F are capitals in VN1 and punctuation in the ABC fonts: the word decides.
    vn1 = _decode_charmap(token, _TCVN_VN1_TABLE)
    if vn1 is not None and _token_score(vn1, token) > _token_score(text, token):
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

# --- UTF-8 mojibake ---------------------------------------------------------------------------

# Bytes Windows-1252 leaves undefined: decoders drop them or write U+FFFD.
_LOST_BYTES = (0x90, 0x81, 0x8D, 0x8F, 0x9D)
_HOLE = -1
_MOJIBAKE_HINT = re.compile(
    "[\u00c2-\u00f4]["
    + re.escape("".join(chr(b) for b in range(0x80, 0xC0)))
    + re.escape("".join(_CP1252_TO_BYTE))
    + "\ufffd]|[\u00c2-\u00f4]\ufffd"
)
_MOJIBAKE_SPAN = re.compile("[" + re.escape(_BYTE_CHARS) + "\ufffd]+")
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
        if o < 0x80 or ch in VIETNAMESE_LETTERS or ch in _COMMON or ch in "«»°·©®":
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


def undo_utf8_mojibake(token: str, *, lenient: bool = False) -> tuple[str, int]:
    """``token`` with UTF-8 mojibake undone, and how many layers were undone (0 if none).

    Every layer must decode as UTF-8; the result must read as language, so an accidental
    decoding of correct text ("KÊ»" -> "Kʻ") is refused. Where lost bytes leave several
    readings, valid Vietnamese words decide, then how common the word is; a tie is left alone.
    """
    if not _MOJIBAKE_HINT.search(token) and not (
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
    words = [w.strip(_EDGE_PUNCT) for w in re.split(r"[\s\u00a0]+", text)]
    words = [w for w in words if w]
    return any(not w.isascii() for w in words) and all(
        w.isascii() or all(is_vietnamese_syllable(p) for p in re.split(r"[-'’]", w) if p)
        for w in words
    )


# --- scoring ----------------------------------------------------------------------------------

_EDGE_PUNCT = "\"'()[]{}<>.,;:!?*/\\|-_=+~`^@#$%&“”‘’–—…«»•\u00a0"


def _core(token: str) -> str:
    return token.strip(_EDGE_PUNCT)


def _token_score(decoded: str, original: str | None = None) -> int:
    """+1 a Vietnamese word with diacritics, 0 plain ASCII or no letters, -1 anything else.

    With ``original`` (the token as it came), a token that had no letters cannot vote for a
    decoding ("©" decoded to a lone letter proves nothing), only against it.
    """
    core = _core(decoded)
    if not core or core.isascii() or not any(c.isalpha() for c in core):
        return 0  # no letters ("©", "25°"): says nothing either way
    parts = [p for p in re.split(r"[-'’]", core) if p]
    score = 1 if parts and all(p.isascii() or is_vietnamese_syllable(p) for p in parts) else -1
    if score > 0 and original is not None and not any(c.isalpha() for c in original):
        return 0
    return score


# --- runs -------------------------------------------------------------------------------------

_TOKEN = re.compile(r"[^ \t\n\r\f\v]+")
_LOOKALIKE = str.maketrans({"Ð": "Đ", "ð": "đ"})


@dataclass
class RepairLog:
    """What the repairs found, by encoding and place ("title", "body", ...)."""

    found: dict[Encoding, Counter[str]] = field(default_factory=dict)
    mojibake_layers: int = 0
    mojibake_latin1: bool = False
    lookalikes: Counter[str] = field(default_factory=Counter)
    unknown: Counter[str] = field(default_factory=Counter)
    unknown_samples: list[str] = field(default_factory=list)
    replacement_chars: Counter[str] = field(default_factory=Counter)
    hinted: Counter[str] = field(default_factory=Counter)

    def record(self, encoding: Encoding, place: str) -> None:
        self.found.setdefault(encoding, Counter())[place] += 1

    @property
    def encodings(self) -> list[Encoding]:
        return [e for e in Encoding if e in self.found]


@dataclass
class _Token:
    piece: int
    start: int
    end: int
    text: str


def _tokens(pieces: Sequence[str]) -> list[_Token]:
    return [
        _Token(i, m.start(), m.end(), m.group(0))
        for i, piece in enumerate(pieces)
        for m in _TOKEN.finditer(piece)
    ]


def _plain(token: str) -> bool:
    """Printable ASCII: the same in every encoding (C0 controls are capitals in VISCII/VN1)."""
    return token.isascii() and token.isprintable()


def _units(tokens: list[_Token]) -> Iterator[list[_Token]]:
    """Runs of consecutive tokens that could all be 8-bit font text, with a sign of one."""
    unit: list[_Token] = []
    for tok in tokens:
        if _ENCODABLE.fullmatch(tok.text) and not _plain(tok.text):
            unit.append(tok)
            continue
        if _plain(tok.text) and unit:
            unit.append(tok)  # ASCII is the same in every encoding: it joins a unit
            continue
        if unit:
            yield unit
        unit = []
    if unit:
        yield unit


def _suspect(texts: list[str], scores: list[int]) -> bool:
    """Worth decoding: a character correct Vietnamese does not use, or mostly broken words
    (VNI capitals, "BAÙO", are all Vietnamese letters, yet no word is valid)."""
    if any(has_evidence(t) for t in texts):
        return True
    broken = scores.count(-1)
    return broken >= 2 and broken * 2 >= sum(1 for t in texts if not _plain(t))


def _common_syllables() -> frozenset[str]:
    text = resources.files(__package__).joinpath("common_syllables.txt").read_text("utf-8")
    lines = (line for line in text.splitlines() if not line.startswith("#"))
    return frozenset(unicodedata.normalize("NFC", w) for line in lines for w in line.split())


COMMON_SYLLABLES = _common_syllables()


def _everyday(decoded: list[str]) -> int:
    """How many decoded words are everyday syllables ("tổng", "như"; not "toăng")."""
    return sum(
        1 for d in decoded for p in re.split(r"[-'’]", _core(d).lower()) if p in COMMON_SYLLABLES
    )


def _choose(unit: list[_Token], hint: Hint) -> tuple[Encoding, list[str]] | None:
    """The decoding that clearly beats the unit as it came, if any.

    Encodings that tie (one word can read right in two of them: VNI "Thuû" is "Thủ", in TCVN3
    "Thuỷ") go to the one a font named, else (in a run of several words) to the one with more
    everyday words ("Toång nhö" is VNI "Tổng như", not VISCII "Toăng nhỏ"), else are left alone.
    """
    texts = [t.text for t in unit]
    scores = [_token_score(t) for t in texts]
    if not _suspect(texts, scores):
        return None
    as_is = sum(scores)
    results: list[tuple[int, bool, int, Encoding, list[str]]] = []
    for encoding, decode in DECODERS.items():
        decoded: list[str] = []
        score = 0
        for t in texts:
            d = t if _plain(t) else decode(t)
            if d is None:
                d, s = t, -2  # bytes this encoding does not define: a strong vote against
            else:
                s = _token_score(d, t)
                if s < 0 and _token_score(t) > 0:
                    s = -3  # it breaks a word that was valid as it came: strongly against
            decoded.append(d)
            score += s
        if score > 0 and score - as_is >= 2:
            hinted = encoding is hint.encoding
            results.append((score, hinted, _everyday(decoded), encoding, decoded))
    if not results:
        return None
    results.sort(key=lambda r: r[:3], reverse=True)
    best, runner_up = results[0], results[1] if len(results) > 1 else None
    if runner_up is not None and runner_up[0] == best[0] and not best[1]:
        words = sum(1 for t in texts if not _plain(t))
        if runner_up[2] == best[2] or words < 2:
            return None  # one word alone is too little to judge by frequency
    return best[3], best[4]


def repair_pieces(
    pieces: Sequence[str], place: str, log: RepairLog, hint: Hint = NO_HINT
) -> list[str]:
    """Repair one run given as pieces (HTML text nodes of one block and font, or one field).

    Pieces keep their boundaries so the markup between them stays where it was.
    """
    out = list(pieces)
    if not worth_a_look("".join(out)):
        return out

    # 1. UTF-8 mojibake, token by token; once a run shows some, the lenient cases too
    #    (a no-break space of "à" turned into a plain space, a word-final lost byte).
    layers = 0
    for lenient in (False, True):
        if lenient and not layers:
            break
        for i, piece in enumerate(out):
            for m in reversed(list(_TOKEN.finditer(piece))):
                fixed, depth = undo_utf8_mojibake(m.group(0), lenient=lenient)
                if depth:
                    layers = max(layers, depth)
                    out[i] = out[i][: m.start()] + fixed + out[i][m.end() :]
    if layers:
        log.record(Encoding.UTF8_MOJIBAKE, place)
        log.mojibake_layers = max(log.mojibake_layers, layers)
        if any(0x80 <= ord(c) < 0xA0 for p in pieces for c in p):
            log.mojibake_latin1 = True

    # 2. Legacy 8-bit font encodings, unit by unit. Not in a run that was UTF-8 mojibake:
    #    what is left there is mojibake that lost bytes, not a font encoding.
    replaced: dict[tuple[int, int], tuple[int, str]] = {}
    converted: set[Encoding] = set()
    for unit in _units(_tokens(out)):
        choice = None if layers else _choose(unit, hint)
        if choice is None:
            scores = [_token_score(t.text) for t in unit]
            # Several garbled words, most of the unit: an encoding we do not know.
            if scores.count(-1) >= 3 and scores.count(-1) * 2 >= sum(1 for x in scores if x):
                log.unknown[place] += 1
                sample = " ".join(t.text for t in unit)[:40]
                if len(log.unknown_samples) < 3:
                    log.unknown_samples.append(sample)
            continue
        encoding, decoded = choice
        converted.add(encoding)
        for tok, new in zip(unit, decoded, strict=True):
            if new != tok.text:
                replaced[(tok.piece, tok.start)] = (tok.end, new)
    if replaced:
        for i in range(len(out)):
            spans = sorted((s, e, new) for (p, s), (e, new) in replaced.items() if p == i)
            for start, end, new in reversed(spans):
                out[i] = out[i][:start] + new + out[i][end:]
        if hint.upper and hint.encoding in converted:
            out = [p.upper() for p in out]
        for encoding in converted:
            log.record(encoding, place)
            if encoding is hint.encoding:
                log.hinted[place] += 1

    # 3. Look-alike letters: Icelandic eth for đ ("Ðảng"), when that makes a Vietnamese word.
    for i, piece in enumerate(out):
        if "Ð" in piece or "ð" in piece:
            out[i] = _TOKEN.sub(lambda m: _lookalike(m.group(0), log, place), piece)
    for piece in out:
        if "\ufffd" in piece:
            log.replacement_chars[place] += piece.count("\ufffd")
    return out


def _lookalike(token: str, log: RepairLog, place: str) -> str:
    fixed = token.translate(_LOOKALIKE)
    core = _core(fixed)
    if fixed != token and core and all(is_vietnamese_syllable(p) for p in core.split("-") if p):
        log.lookalikes[place] += 1
        return fixed
    return token


def repair_text(text: str, place: str, log: RepairLog, hint: Hint = NO_HINT) -> str:
    """Repair one plain-text field (no markup)."""
    return repair_pieces([text], place, log, hint)[0]


# --- fonts named in markup --------------------------------------------------------------------

_FONT_FAMILY = re.compile(r"font-family\s*:\s*([^;]+)", re.IGNORECASE)
# A legacy font named in markup (face="..." or font-family: ...), for the cheap pre-check.
LEGACY_FONT = re.compile(
    r"(?:face\s*=\s*|font-family\s*:\s*)[\"']?\s*(?:\.vn|vn[a-z]|viscii)", re.IGNORECASE
)


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


def _hint_of(tag: str, attrs: list[tuple[str, str | None]]) -> Hint | None:
    """The font hint an element sets, or None when it names no font."""
    for name, value in attrs:
        if not value:
            continue
        if name == "face" and tag == "font":
            return font_hint(value)
        if name == "style":
            m = _FONT_FAMILY.search(value)
            if m:
                return font_hint(m.group(1))
    return None


# --- HTML -------------------------------------------------------------------------------------

_BLOCK_TEXT = (
    "address article aside blockquote br caption center dd div dl dt figcaption figure footer "
    "h1 h2 h3 h4 h5 h6 header hr li main nav ol p pre section table tbody td tfoot th thead tr ul"
)
_BLOCK_TAGS = frozenset(_BLOCK_TEXT.split())
_VOID_TEXT = "area base br col embed hr img input link meta param source track wbr"
_VOID_TAGS = frozenset(_VOID_TEXT.split())
_RAW_TEXT = frozenset({"script", "style"})


class _Rebuilder(HTMLParser):
    """Re-emits the markup and collects text nodes with their block and font context.

    Only used when repair is needed; the result goes to the sanitiser like the original.
    """

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.texts: list[tuple[int, int, Hint]] = []  # (index in out, block, hint)
        self.alts: list[tuple[int, Hint, str]] = []  # (index in out, hint, tag text parts)
        self.stack: list[tuple[str, Hint | None]] = []
        self.block = 0
        self.raw: str | None = None

    def hint(self) -> Hint:
        for _, h in reversed(self.stack):
            if h is not None:
                return h
        return NO_HINT

    def _tag(self, tag: str, attrs: list[tuple[str, str | None]], close: bool) -> None:
        parts = [f"<{tag}"]
        own = _hint_of(tag, attrs)
        for name, value in attrs:
            if value is None:
                parts.append(f" {name}")
                continue
            if name in ("alt", "title") and has_evidence(value):
                # Attribute text is a run of its own, under the element's font.
                self.alts.append((len(self.out), own or self.hint(), value))
                parts.append(f' {name}="\x00{len(self.alts) - 1}\x00"')
                continue
            parts.append(f' {name}="{html.escape(value, quote=True)}"')
        parts.append(" />" if close else ">")
        if tag in _BLOCK_TAGS:
            self.block += 1
        self.out.append("".join(parts))
        if not close and tag not in _VOID_TAGS:
            self.stack.append((tag, own))
        if tag in _RAW_TEXT and not close:
            self.raw = tag

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._tag(tag, attrs, close=False)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._tag(tag, attrs, close=True)

    def handle_endtag(self, tag: str) -> None:
        self.raw = None
        if tag in _BLOCK_TAGS:
            self.block += 1
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i][0] == tag:
                del self.stack[i:]
                break
        self.out.append(f"</{tag}>")

    def handle_data(self, data: str) -> None:
        if self.raw is not None:
            self.out.append(data)  # script/style: the sanitiser drops it whole
            return
        self.texts.append((len(self.out), self.block, self.hint()))
        self.out.append(data)

    def handle_comment(self, data: str) -> None:
        self.out.append(f"<!--{data}-->")

    def handle_decl(self, decl: str) -> None:
        self.out.append(f"<!{decl}>")

    def handle_pi(self, data: str) -> None:
        self.out.append(f"<?{data}>")

    def unknown_decl(self, data: str) -> None:
        self.out.append(f"<![{data}]>")


def needs_repair(fragment: str) -> bool:
    """A cheap check: could anything in this HTML (or text) field need an encoding repair?"""
    if LEGACY_FONT.search(fragment):
        return True
    text = html.unescape(fragment) if "&" in fragment else fragment
    return worth_a_look(text)


def repair_html(fragment: str, place: str, log: RepairLog) -> str:
    """Repair the text of an HTML fragment run by run; markup is re-emitted for the sanitiser."""
    if not needs_repair(fragment):
        return fragment
    parser = _Rebuilder()
    parser.feed(fragment)
    parser.close()
    out = parser.out
    # Consecutive text nodes of one block under one font form a run.
    runs: list[tuple[Hint, list[int]]] = []
    last: tuple[int, Hint] | None = None
    for index, block, hint in parser.texts:
        if last == (block, hint):
            runs[-1][1].append(index)
        else:
            runs.append((hint, [index]))
            last = (block, hint)
    for hint, indexes in runs:
        repaired = repair_pieces([out[i] for i in indexes], place, log, hint)
        for i, text in zip(indexes, repaired, strict=True):
            out[i] = html.escape(text, quote=False)
    for i, (index, hint, value) in enumerate(parser.alts):
        text = html.escape(repair_text(value, place, log, hint), quote=True)
        out[index] = out[index].replace(f"\x00{i}\x00", text)
    return "".join(out)


def describe(log: RepairLog) -> list[tuple[str, str]]:
    """(code, message) of each repair the log holds, for the quality report."""
    found: list[tuple[str, str]] = []
    for encoding in log.encodings:
        places = log.found[encoding]
        where = ", ".join(p if n == 1 else f"{p} ({n} runs)" for p, n in places.most_common())
        label = LABELS[encoding]
        if encoding is Encoding.UTF8_MOJIBAKE:
            how = "Latin-1" if log.mojibake_latin1 else "Windows-1252"
            times = {1: "once", 2: "twice"}.get(log.mojibake_layers, f"{log.mojibake_layers} times")
            label = f"UTF-8 read as {how} ({times})"
        hinted = (
            " (font named in the markup)"
            if encoding is not Encoding.UTF8_MOJIBAKE and any(log.hinted.get(p) for p in places)
            else ""
        )
        found.append(
            (f"encoding_{encoding.value}", f"{label} converted to Unicode{hinted}: {where}")
        )
    if log.lookalikes:
        total = sum(log.lookalikes.values())
        found.append(
            ("lookalike_letters", f"Icelandic Ð/ð replaced by Vietnamese Đ/đ in {total} words")
        )
    return found
