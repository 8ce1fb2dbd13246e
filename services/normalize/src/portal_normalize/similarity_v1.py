"""Near-duplicate signature, scheme 1 (pure logic): kept to compare new articles with stories
signed before scheme 2 (see ``similarity``), while such stories are still looked up.

Scheme 1 hashes each distinct 4-word shingle of the folded text with an 8-byte BLAKE2b; the
bins, densification and bands are scheme 2's (``similarity``).
"""

from __future__ import annotations

import bisect
import hashlib

from portal_normalize.similarity import (
    _BLAKE2B_64,  # a fresh 8-byte BLAKE2b state: copying it costs a fraction of building one
    BINS,
    EMPTY,
    MAX_WORDS,
    MIN_SHINGLES,
    WORD,
    densify,
    words,
)
from portal_text import ascii_fold, fold

SCHEME = 1
# On ASCII text ``\w`` is [A-Za-z0-9_] with or without Unicode: folded Vietnamese is ASCII, so
# its words are read as bytes and its shingles joined as the bytes that are hashed. Its words,
# lowered, are the runs of those bytes: a table that makes every other byte a space (and a
# capital a small letter) lets ``split`` find them, two passes in C where ``findall`` of
# ``rb"\w+"`` steps through its matches.
_ASCII_WORD_BYTES = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")
_ASCII_WORDS_TABLE = bytes(
    bytes([b]).lower()[0] if b in _ASCII_WORD_BYTES else 0x20 for b in range(256)
)


def _split_ascii_words(text: bytes) -> list[bytes]:
    r"""``re.findall(rb"\w+", text.lower())[:MAX_WORDS]``."""
    return text.translate(_ASCII_WORDS_TABLE).split()[:MAX_WORDS]


_BIN_SHIFT = 64 - 6  # the top 6 bits choose one of the 64 bins
# The first hash of each bin, as the 8 big-endian bytes a digest is: fixed-length digests sort
# as bytes in the order of their values.
_BIN_STARTS = [(b << _BIN_SHIFT).to_bytes(8, "big") for b in range(BINS)]


def hash_shingle(shingle: str) -> int:
    return int.from_bytes(hashlib.blake2b(shingle.encode(), digest_size=8).digest(), "big")


# Punctuation common in Vietnamese text that folding keeps and no word holds: a space in its
# place leaves the words as they are, and lets the text fold to ASCII in one pass.
_PUNCTUATION = "\u00a0“”‘’–—…•«»"


def _ascii_words(text: str) -> list[bytes] | None:
    """``words(text)`` as ASCII bytes when the folded text is ASCII but for punctuation."""
    for mark in _PUNCTUATION:
        if mark in text:
            text = text.replace(mark, " ")
    folded = ascii_fold(text)
    return None if folded is None else _split_ascii_words(folded)


def _shingles(text: str) -> set[bytes]:
    """The UTF-8 of each distinct run of ``SHINGLE`` words of ``words(text)``."""
    t = _ascii_words(text)
    if t is None:
        folded = fold(text).casefold()
        if not folded.isascii():
            w = WORD.findall(folded)[:MAX_WORDS]
            return {" ".join(s).encode() for s in zip(w, w[1:], w[2:], w[3:], strict=False)}
        t = _split_ascii_words(folded.encode("ascii"))
    return set(map(b" ".join, zip(t, t[1:], t[2:], t[3:], strict=False)))


def _digests(shingles: set[bytes]) -> list[bytes]:
    """``hash_shingle`` of every shingle, as 8-byte big-endian digests."""
    out: list[bytes] = []
    append = out.append
    fresh = _BLAKE2B_64.copy
    for shingle in shingles:
        h = fresh()
        h.update(shingle)
        append(h.digest())
    return out


def signature(text: str) -> tuple[int, ...] | None:
    """The scheme-1 MinHash signature of ``text``, None when it is too short to compare."""
    shingles = _shingles(text)
    if len(shingles) < MIN_SHINGLES:
        return None
    digests = sorted(_digests(shingles))
    n = len(digests)
    # The smallest hash of each bin is the first of the sorted hashes at or above its start.
    mins = [EMPTY] * BINS
    for b in range(BINS):
        i = bisect.bisect_left(digests, _BIN_STARTS[b])
        if i < n and digests[i][0] >> 2 == b:  # the top 6 bits of the first byte
            mins[b] = int.from_bytes(digests[i], "big")
    return densify(mins)


__all__ = ["SCHEME", "hash_shingle", "signature", "words"]
