"""Screening of every public submission: pure logic, no I/O.

* Text is cleaned first: NFC, one tone-mark placement, no control characters, tidy spaces.
* Refusals (HTTP 422, nothing stored): too short once cleaned, or not Vietnamese with diacritics
  (the portal publishes only "tiếng Việt có dấu").
* Flags (stored and sent to the editors, the submitter is told it is held for review): banned
  words, links; suspect words are flagged without holding.
* Words are matched as written and on folded text too (no diacritics, đ→d, digits and symbols
  read as the letters they stand for, repeated letters once, dots inside a word dropped, common
  abbreviations spelled out), so "dit", "l0n", "lồnnn" or "đ.é.o" are caught. A word written
  with other marks ("các" is not "cặc") is another word and does not match. A folded match may
  be innocent ("lon bia"), so it is only ever held for an editor, flagged as a variant.
The word lists are data (``data/screening.yaml``), loaded by :func:`load_word_list`.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from portal_text import (
    fold,
    has_vietnamese_diacritics,
    normalize_tone_placement,
    written_with_diacritics,
)

DEFAULT_WORD_LIST = Path(__file__).parent / "data" / "screening.yaml"

FLAG_BANNED = "banned_word"
FLAG_BANNED_VARIANT = "banned_variant"  # matched only once folded: "<term> (as written)"
FLAG_SUSPECT = "suspect_word"
FLAG_LINK = "link"
# Flags that hold a submission for review (told to the submitter); others only inform editors.
HOLDING_FLAGS = frozenset({FLAG_BANNED, FLAG_BANNED_VARIANT, FLAG_LINK})

_CONTROL = re.compile(r"[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f\u200b-\u200f\u202a-\u202e]")
_SPACES = re.compile(r"[ \t\u00a0]+")
_BLANK_LINES = re.compile(r"\n{3,}")
_TOKEN = re.compile(r"\w+(?:\.\w+)*")
# Inside a word: letters, digits and the symbols used in place of letters ("l0n", "d@m", "đ.m").
_LOOSE_TOKEN = re.compile(r"[\w@$]+(?:[.*][\w@$]+)*")
# Digits and symbols read as letters, only inside a word that also has a letter ("2026" stays).
_LOOKALIKES = str.maketrans(
    {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s"}
)
_REPEATS = re.compile(r"(.)\1+")
_LINK = re.compile(
    r"(?:https?://|ftp://|www\.)\S+"
    r"|\b[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9-]+)*\."
    r"(?:com|net|org|info|biz|vn|io|xyz|top|online|site|club|me|co|ru|cn|tk|ly|gl|link|app|"
    r"shop|store|live|tv|cc|ws|us|uk|asia)\b(?:/\S*)?",
    re.IGNORECASE,
)


def clean_text(value: str, *, multiline: bool) -> str:
    """NFC with one tone placement, no control or bidi characters, single spaces."""
    text = normalize_tone_placement(unicodedata.normalize("NFC", value))
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROL.sub("", text)
    if not multiline:
        return _SPACES.sub(" ", text.replace("\n", " ")).strip()
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def _tokens(text: str) -> list[str]:
    return _TOKEN.findall(normalize_tone_placement(unicodedata.normalize("NFC", text)).lower())


def _undotted(word: str) -> str:
    return word.replace(".", "").replace("*", "")


def fold_word(word: str) -> str:
    """One word as screening compares it once folded: "Đ.é.o" -> "deo", "l0nnn" -> "lon"."""
    word = _undotted(unicodedata.normalize("NFC", word).lower())
    if any(c.isalpha() for c in word):
        word = word.translate(_LOOKALIKES)
    return _REPEATS.sub(r"\1", fold(word))


@dataclass(frozen=True)
class _Word:
    """One word of the text: as written, folded, and whether it may stand for a marked word."""

    written: str  # without dots inside ("đ.é.o" is "đéo")
    folded: str
    loose: bool  # written without marks (or spelled out from an abbreviation)


def _words(text: str, abbreviations: Mapping[str, tuple[str, ...]]) -> list[_Word]:
    nfc = normalize_tone_placement(unicodedata.normalize("NFC", text)).lower()
    words: list[_Word] = []
    for raw in _LOOSE_TOKEN.findall(nfc):
        written = _undotted(raw.strip("@$"))
        folded = fold_word(raw)
        if not folded:
            continue
        loose = not has_vietnamese_diacritics(raw)
        if loose and folded in abbreviations:
            words += [_Word("", part, True) for part in abbreviations[folded]]
        else:
            words.append(_Word(written, folded, loose))
    return words


@dataclass(frozen=True)
class Found:
    """The terms of a word list found in a text (as written in the list)."""

    banned: list[str] = field(default_factory=list)
    banned_variants: list[str] = field(default_factory=list)  # "<term> (<as written>)"
    suspect: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class WordList:
    """Banned and suspect terms, each a tuple of tokens matched as whole words in a row.

    ``abbreviations`` spells out a folded abbreviation ("vl") as folded words ("vai", "lon").
    """

    banned: tuple[tuple[str, ...], ...] = ()
    suspect: tuple[tuple[str, ...], ...] = ()
    abbreviations: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> WordList:
        def terms(name: str) -> tuple[tuple[str, ...], ...]:
            raw = data.get(name) or []
            if not isinstance(raw, list) or not all(isinstance(t, str) for t in raw):
                raise ValueError(f"{name}: must be a list of words or phrases")
            out = [tuple(_tokens(t)) for t in raw]
            return tuple(dict.fromkeys(t for t in out if t))

        raw_abbr = data.get("abbreviations") or {}
        if not isinstance(raw_abbr, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in raw_abbr.items()
        ):
            raise ValueError("abbreviations: must map an abbreviation to the words it stands for")
        abbreviations = {
            fold_word(k): tuple(fold_word(w) for w in _tokens(v)) for k, v in raw_abbr.items()
        }
        return cls(banned=terms("banned"), suspect=terms("suspect"), abbreviations=abbreviations)

    def find(self, text: str) -> Found:
        """The banned and suspect terms in ``text``, as written or once folded."""
        words = _words(text, self.abbreviations)
        if not words:
            return Found()

        def forms(term: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[str, ...]]:
            return tuple(_undotted(p) for p in term), tuple(fold_word(p) for p in term)

        def at(i: int, exact: tuple[str, ...], folded: tuple[str, ...] | None) -> bool:
            if i + len(exact) > len(words):
                return False
            for k, word in enumerate(words[i : i + len(exact)]):
                if word.written == exact[k]:
                    continue
                # A word written with other marks is another word ("các" is not "cặc").
                if folded is None or not (word.loose and word.folded == folded[k]):
                    return False
            return True

        # Only the positions whose word could begin the term are tried (one pass over the text).
        starts: dict[str, list[int]] = {}
        for i, word in enumerate(words):
            starts.setdefault(word.written, []).append(i)
            if word.loose and word.folded != word.written:
                starts.setdefault(word.folded, []).append(i)

        def first(term: tuple[str, ...], *, folding: bool) -> int | None:
            exact, folded = forms(term)
            candidates = starts.get(exact[0], [])
            if folding:
                candidates = sorted({*candidates, *starts.get(folded[0], [])})
            return next((i for i in candidates if at(i, exact, folded if folding else None)), None)

        found = Found()
        for term in self.banned:
            name = " ".join(term)
            if first(term, folding=False) is not None:
                found.banned.append(name)
            elif (at_word := first(term, folding=True)) is not None:
                seen = words[at_word : at_word + len(term)]
                written = " ".join(w.written or w.folded for w in seen)
                found.banned_variants.append(f"{name} ({written[:60]})")
        for term in self.suspect:
            if first(term, folding=True) is not None:
                found.suspect.append(" ".join(term))
        return found


def load_word_list(path: Path = DEFAULT_WORD_LIST) -> WordList:
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not a mapping")
    return WordList.from_mapping(data)


@dataclass(frozen=True)
class TextField:
    """One field of a form as screening sees it."""

    name: str
    value: str
    min_chars: int = 1
    multiline: bool = True
    diacritics: bool = True  # False: screened for words and links only (e.g. a display name)


@dataclass(frozen=True)
class Problem:
    """A refusal, in FastAPI's 422 shape (the field is named)."""

    field: str
    message: str
    code: str

    def as_detail(self) -> dict[str, Any]:
        return {"loc": ["body", self.field], "msg": self.message, "type": self.code}


@dataclass(frozen=True)
class Screening:
    cleaned: dict[str, str]
    problems: list[Problem] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)

    @property
    def accepted(self) -> bool:
        return not self.problems

    @property
    def held(self) -> bool:
        return any(f.split(":", 1)[0] in HOLDING_FLAGS for f in self.flags)


def screen(fields: list[TextField], words: WordList, *, check_diacritics: bool = True) -> Screening:
    """Clean and check a submission's text fields together.

    The diacritics rule is applied to all the text at once, so a title that is an acronym
    ("BHXH") is fine when the body is written with diacritics.
    """
    cleaned = {f.name: clean_text(f.value, multiline=f.multiline) for f in fields}
    problems: list[Problem] = []
    for f in fields:
        text = cleaned[f.name]
        if len(text) < f.min_chars:
            problems.append(
                Problem(
                    f.name,
                    f"too short: write at least {f.min_chars} characters (you wrote {len(text)})",
                    "too_short",
                )
            )
    prose = [f for f in fields if f.diacritics]
    whole = "\n".join(cleaned[f.name] for f in prose if cleaned[f.name])
    if check_diacritics and prose and not written_with_diacritics(whole):
        # Name the longest field: that is where the reader typed most of the text.
        main = max(prose, key=lambda f: len(cleaned[f.name])).name
        problems.append(
            Problem(
                main,
                "write in Vietnamese with diacritics (tiếng Việt có dấu): text without "
                "diacritics cannot be published",
                "no_diacritics",
            )
        )
    flags: list[str] = []
    if not problems:
        everything = "\n".join(v for v in cleaned.values() if v)
        found = words.find(everything)
        flags += [f"{FLAG_BANNED}:{t}" for t in found.banned]
        flags += [f"{FLAG_BANNED_VARIANT}:{t}" for t in found.banned_variants]
        flags += [f"{FLAG_SUSPECT}:{t}" for t in found.suspect]
        links = _LINK.findall(everything)
        if links:
            flags.append(f"{FLAG_LINK}:{links[0][:100]}")
    return Screening(cleaned=cleaned, problems=problems, flags=flags)


def clean_name(value: str | None) -> str | None:
    """A display name: one line, tidy; empty means anonymous."""
    if value is None:
        return None
    name = clean_text(value, multiline=False)
    return name or None
