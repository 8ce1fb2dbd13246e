"""Near-duplicate detection: MinHash of word shingles, banded for lookup (pure logic).

An article's text (title and body, folded: case, diacritics and tone placement do not count)
becomes the set of its 4-word shingles. The signature is a one-permutation MinHash: one 64-bit
hash per shingle, the smallest hash in each of 64 bins (an empty bin borrows from the next
one, "densification"), so a signature costs one hash per shingle. The fraction of equal
positions in two signatures estimates the Jaccard similarity of the shingle sets.

For lookup the signature is cut into 16 bands of 4 values: two texts with Jaccard 0.7 share at
least one band with probability ~0.98, texts with 0.3 with ~0.12; candidates that share a band
are then compared on the full signature. Same story sent again, or by another agency with a
new headline or a changed paragraph: ~0.8-1.0; different stories on the same topic: < 0.3.
"""

from __future__ import annotations

import bisect
import hashlib
import re
import struct

from portal_text import ascii_fold, fold

BINS = 64
BANDS = 16
ROWS = BINS // BANDS
SHINGLE = 4
MIN_SHINGLES = 8  # shorter texts say too little to call two articles the same story
MAX_WORDS = 5000  # the start of a very long text decides; bounds the cost per article
THRESHOLD = 0.7

_WORD = re.compile(r"\w+", re.UNICODE)
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


_EMPTY = (1 << 64) - 1
_BIN_SHIFT = 64 - 6  # the top 6 bits choose one of the 64 bins
# The first hash of each bin, as the 8 big-endian bytes a digest is: fixed-length digests sort
# as bytes in the order of their values.
_BIN_STARTS = [(b << _BIN_SHIFT).to_bytes(8, "big") for b in range(BINS)]


def words(text: str) -> list[str]:
    return _WORD.findall(fold(text).casefold())[:MAX_WORDS]


def _hash(shingle: str) -> int:
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
            w = _WORD.findall(folded)[:MAX_WORDS]
            return {" ".join(s).encode() for s in zip(w, w[1:], w[2:], w[3:], strict=False)}
        t = _split_ascii_words(folded.encode("ascii"))
    return set(map(b" ".join, zip(t, t[1:], t[2:], t[3:], strict=False)))


# A fresh 8-byte BLAKE2b state: copying it costs a fraction of building one per shingle.
_BLAKE2B_64 = hashlib.blake2b(digest_size=8)


def _digests(shingles: set[bytes]) -> list[bytes]:
    """``_hash`` of every shingle, as 8-byte big-endian digests."""
    out: list[bytes] = []
    append = out.append
    fresh = _BLAKE2B_64.copy
    for shingle in shingles:
        h = fresh()
        h.update(shingle)
        append(h.digest())
    return out


def signature(text: str) -> tuple[int, ...] | None:
    """The MinHash signature of ``text``, None when it is too short to compare."""
    shingles = _shingles(text)
    if len(shingles) < MIN_SHINGLES:
        return None
    digests = sorted(_digests(shingles))
    n = len(digests)
    # The smallest hash of each bin is the first of the sorted hashes at or above its start.
    mins = [_EMPTY] * BINS
    for b in range(BINS):
        i = bisect.bisect_left(digests, _BIN_STARTS[b])
        if i < n and digests[i][0] >> 2 == b:  # the top 6 bits of the first byte
            mins[b] = int.from_bytes(digests[i], "big")
    # Densification: an empty bin takes the next non-empty bin's value (rotating), offset by
    # the distance so two texts only agree there when they agree on the source bin.
    filled = list(mins)
    for i in range(BINS):
        if mins[i] == _EMPTY:
            for step in range(1, BINS):
                j = (i + step) % BINS
                if mins[j] != _EMPTY:
                    filled[i] = (mins[j] + step * 0x9E3779B97F4A7C15) & _EMPTY
                    break
    return tuple(filled)


def bands(sig: tuple[int, ...]) -> list[int]:
    """One signed 64-bit key per band (fits a BIGINT column)."""
    packed = struct.pack(f">{BINS}Q", *sig)
    step = ROWS * 8
    keys = []
    for start in range(0, BINS * 8, step):
        h = _BLAKE2B_64.copy()
        h.update(packed[start : start + step])
        keys.append(int.from_bytes(h.digest(), "big", signed=True))
    return keys


def similarity(a: tuple[int, ...], b: tuple[int, ...]) -> float:
    return sum(1 for x, y in zip(a, b, strict=True) if x == y) / BINS


def pack(sig: tuple[int, ...]) -> bytes:
    return struct.pack(f">{BINS}Q", *sig)


def unpack(raw: bytes) -> tuple[int, ...]:
    return struct.unpack(f">{BINS}Q", raw)


def fingerprint_text(title: str, body_text: str) -> str:
    return f"{title}\n{body_text}"
