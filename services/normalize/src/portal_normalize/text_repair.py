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

import bisect
import html
import itertools
import re
import unicodedata
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from html.parser import HTMLParser
from importlib import resources

from portal_normalize import simple_html
from portal_normalize.mojibake import MOJIBAKE_LEADS, MOJIBAKE_TRAILS
from portal_normalize.mojibake import undo_utf8_mojibake as undo_utf8_mojibake
from portal_text.legacy_encodings import _TCVN_VN1_TABLE as _TCVN_VN1_TABLE
from portal_text.legacy_encodings import _VISCII_TABLE as _VISCII_TABLE
from portal_text.legacy_encodings import (
    DECODERS,
    ENCODABLE,
    EVIDENCE_CHARS,
    LABELS,
    NO_HINT,
    VNI_DIGRAPH_BEHIND,
    VNI_DIGRAPH_MARKS,
    Hint,
    has_evidence,
)
from portal_text.legacy_encodings import Encoding as Encoding
from portal_text.legacy_encodings import _decode_charmap as _decode_charmap
from portal_text.legacy_encodings import font_hint as font_hint
from portal_text.memo import word_cache
from portal_text.vietnamese_words import EDGE_PUNCT, token_score, word_core
from portal_text.vietnamese_words import VIETNAMESE_LETTERS as VIETNAMESE_LETTERS
from portal_text.vietnamese_words import is_vietnamese_syllable as is_vietnamese_syllable

# A plain vowel followed by a Latin-1 accented vowel: VNI's base + mark ("BAÙO", "caùc"), and
# also correct words ("hoà", "quá", "giáo"), so the words holding one are checked.
_PAIR_VOWELS = "aeouyAEOUYôöÔÖ"
_PAIR_MARKS = "ùûõâáàãêéèúÙÛÕÂÁÀÃÊÉÈÚ"


_WHITESPACE = " \t\n\r\f\v"


_NEXT_SPACE = re.compile(f"[{_WHITESPACE}]")


# The last whitespace of a stretch of text (searched up to the pair's start).
_LAST_SPACE = re.compile(f"[{_WHITESPACE}][^{_WHITESPACE}]*\\Z")


# How far back from a pair its word's start is looked for first (words are short).
_NEAR = 32


# What ``worth_a_look`` stops at, in one scan: a sign of a finding on its own (a character
# correct Vietnamese does not use or a VNI digraph, ``has_evidence``; a UTF-8 lead and
# continuation, ``MOJIBAKE_HINT``), or a vowel + mark pair whose word is to be checked (the
# empty group). One class of every character any of them ends with, then look-behinds for
# which: the engine skips ahead only on a single leading class (three patterns, or one of
# alternatives, cost twice as much on a clean body).
_LOOK = re.compile(
    f"[{re.escape(EVIDENCE_CHARS + VNI_DIGRAPH_MARKS + _PAIR_MARKS)}{MOJIBAKE_TRAILS}]"
    f"(?:(?<=[{re.escape(EVIDENCE_CHARS)}])|(?<={VNI_DIGRAPH_BEHIND})"
    f"|(?<=[{MOJIBAKE_LEADS}][{MOJIBAKE_TRAILS}])|(?<=[{_PAIR_VOWELS}][{_PAIR_MARKS}])())"
)


@word_cache(65536)  # a pure function of one word; articles repeat words
def _broken_word(word: str) -> bool:
    core = word.strip(EDGE_PUNCT)
    return bool(core) and not all(is_vietnamese_syllable(p) for p in re.split(r"[-'’]", core) if p)


def worth_a_look(text: str) -> bool:
    """Cheap check: could ``text`` hold mojibake or legacy-encoded runs? A sign of either, or
    two words with a vowel + mark pair that are not Vietnamese syllables ("BAÙO")."""
    return worth_a_look_each([text])[0]


def worth_a_look_each(texts: Sequence[str]) -> list[bool]:
    """``worth_a_look`` of each text, in one scan of them all (joined by line breaks, which no
    sign or pair spans and which end words)."""
    whole = "\n".join(texts)
    starts = list(itertools.accumulate((len(t) + 1 for t in texts[:-1]), initial=0))
    worth = [False] * len(texts)
    broken = [0] * len(texts)
    pos = 0  # where the last word checked ended
    for m in _LOOK.finditer(whole):
        at = m.start()
        i = bisect.bisect_right(starts, at) - 1
        if worth[i]:
            continue
        if m.lastindex is None:
            worth[i] = True
            continue
        at -= 1  # the pair's vowel
        if at < pos:
            continue  # in the word just checked
        near = max(pos, at - _NEAR)
        space = _LAST_SPACE.search(whole, near, at)
        if space is None and near > pos:
            space = _LAST_SPACE.search(whole, pos, near)
        start = space.start() + 1 if space is not None else pos
        end_m = _NEXT_SPACE.search(whole, m.end())
        pos = end_m.start() if end_m is not None else len(whole)
        if _broken_word(whole[start:pos]):
            broken[i] += 1
            worth[i] = broken[i] >= 2
    return worth


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
        if ENCODABLE.fullmatch(tok.text) and not _plain(tok.text):
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
        1
        for d in decoded
        for p in re.split(r"[-'’]", word_core(d).lower())
        if p in COMMON_SYLLABLES
    )


@word_cache(16384)  # a pure function of one token; text repeats its words
def _decoded(encoding: Encoding, token: str) -> tuple[str, int]:
    """``token`` read in ``encoding`` and how that reading scores (``_choose``'s vote)."""
    decoded = token if _plain(token) else DECODERS[encoding](token)
    if decoded is None:
        return token, -2  # bytes this encoding does not define: a strong vote against
    score = token_score(decoded, token)
    if score < 0 and token_score(token) > 0:
        score = -3  # it breaks a word that was valid as it came: strongly against
    return decoded, score


def _choose(unit: list[_Token], hint: Hint) -> tuple[Encoding, list[str]] | None:
    """The decoding that clearly beats the unit as it came, if any.

    Encodings that tie (one word can read right in two of them: VNI "Thuû" is "Thủ", in TCVN3
    "Thuỷ") go to the one a font named, else (in a run of several words) to the one with more
    everyday words ("Toång nhö" is VNI "Tổng như", not VISCII "Toăng nhỏ"), else are left alone.
    """
    texts = [t.text for t in unit]
    scores = [token_score(t) for t in texts]
    if not _suspect(texts, scores):
        return None
    as_is = sum(scores)
    results: list[tuple[int, bool, int, Encoding, list[str]]] = []
    for encoding in DECODERS:
        decoded: list[str] = []
        score = 0
        for t in texts:
            d, s = _decoded(encoding, t)
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
            scores = [token_score(t.text) for t in unit]
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
    core = word_core(fixed)
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


# A start tag as re-emitted and the font it names, by its name, attributes and form: markup
# repeats its tags ('<p style="...">'). Not kept: tags whose alt or title text is a run of its
# own, or with long attribute values; emptied when it grows past ``_TAGS_KEPT``.
_TAGS: dict[tuple[str, tuple[tuple[str, str | None], ...], bool], tuple[str, Hint | None]] = {}
_TAGS_KEPT = 4096


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
        self._alts_seen = 0

    def hint(self) -> Hint:
        for _, h in reversed(self.stack):
            if h is not None:
                return h
        return NO_HINT

    def _tag(self, tag: str, attrs: list[tuple[str, str | None]], close: bool) -> None:
        key = (tag, tuple(attrs), close)
        kept = _TAGS.get(key)
        if kept is None:
            text, own = self._markup(tag, attrs, close)
            if len(self.alts) == self._alts_seen and sum(len(v or "") for _, v in attrs) <= 256:
                if len(_TAGS) >= _TAGS_KEPT:
                    _TAGS.clear()
                _TAGS[key] = (text, own)
            self._alts_seen = len(self.alts)
        else:
            text, own = kept
        if tag in _BLOCK_TAGS:
            self.block += 1
        self.out.append(text)
        if not close and tag not in _VOID_TAGS:
            self.stack.append((tag, own))
        if tag in _RAW_TEXT and not close:
            self.raw = tag

    def _markup(
        self, tag: str, attrs: list[tuple[str, str | None]], close: bool
    ) -> tuple[str, Hint | None]:
        """The start tag re-emitted, and the font it names (an alt or title attribute that
        needs a look is left as a placeholder for its run)."""
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
        return "".join(parts), own

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
    simple_html.feed(parser, fragment)
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
    looks = worth_a_look_each(["".join(out[i] for i in indexes) for _, indexes in runs])
    for (hint, indexes), look in zip(runs, looks, strict=True):
        pieces = [out[i] for i in indexes]
        repaired = repair_pieces(pieces, place, log, hint) if look else pieces
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
