"""Screening of every public submission: pure logic, no I/O.

* Text is cleaned first: NFC, one tone-mark placement, no control characters, tidy spaces.
* Refusals (HTTP 422, nothing stored): too short once cleaned, or not Vietnamese with diacritics
  (the portal publishes only "tiếng Việt có dấu").
* Flags (stored and sent to the editors, the submitter is told it is held for review): banned
  words, links; suspect words are flagged without holding.
The word lists are data (``data/screening.yaml``), loaded by :func:`load_word_list`.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from portal_text import normalize_tone_placement, written_with_diacritics

DEFAULT_WORD_LIST = Path(__file__).parent / "data" / "screening.yaml"

FLAG_BANNED = "banned_word"
FLAG_SUSPECT = "suspect_word"
FLAG_LINK = "link"
# Flags that hold a submission for review (told to the submitter); others only inform editors.
HOLDING_FLAGS = frozenset({FLAG_BANNED, FLAG_LINK})

_CONTROL = re.compile(r"[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f\u200b-\u200f\u202a-\u202e]")
_SPACES = re.compile(r"[ \t\u00a0]+")
_BLANK_LINES = re.compile(r"\n{3,}")
_TOKEN = re.compile(r"\w+(?:\.\w+)*")
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


@dataclass(frozen=True)
class WordList:
    """Banned and suspect terms, each a tuple of tokens matched as whole words in a row."""

    banned: tuple[tuple[str, ...], ...] = ()
    suspect: tuple[tuple[str, ...], ...] = ()

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> WordList:
        def terms(name: str) -> tuple[tuple[str, ...], ...]:
            raw = data.get(name) or []
            if not isinstance(raw, list) or not all(isinstance(t, str) for t in raw):
                raise ValueError(f"{name}: must be a list of words or phrases")
            out = [tuple(_tokens(t)) for t in raw]
            return tuple(dict.fromkeys(t for t in out if t))

        return cls(banned=terms("banned"), suspect=terms("suspect"))

    def find(self, text: str) -> tuple[list[str], list[str]]:
        """The banned and the suspect terms found in ``text`` (as written in the list)."""
        tokens = _tokens(text)
        if not tokens:
            return [], []

        def found(terms: Iterable[tuple[str, ...]]) -> list[str]:
            hits = []
            for term in terms:
                n = len(term)
                if any(tuple(tokens[i : i + n]) == term for i in range(len(tokens) - n + 1)):
                    hits.append(" ".join(term))
            return hits

        return found(self.banned), found(self.suspect)


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
        banned, suspect = words.find(everything)
        flags += [f"{FLAG_BANNED}:{t}" for t in banned]
        flags += [f"{FLAG_SUSPECT}:{t}" for t in suspect]
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
