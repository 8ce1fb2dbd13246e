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

Signatures are versioned (``SCHEME``, stored with each one; signatures of two schemes are never
compared, and their bands are numbered apart). Scheme 2, this module's: each word is hashed
once (an 8-byte BLAKE2b of its folded form, remembered per whitespace-separated piece of text,
so a word already seen costs a dictionary lookup) and a shingle's hash is Python's hash of the
tuple of its four word hashes (xxHash-style mixing in C, the same on every 64-bit CPython since
3.8; a test pins known signatures, and a change there would need a new scheme). Scheme 1
hashed each shingle's text with BLAKE2b (``similarity_v1``), four times the CPU.
"""

from __future__ import annotations

import bisect
import hashlib
import re
import struct
from itertools import chain

from portal_text import fold

SCHEME = 2
BINS = 64
BANDS = 16
ROWS = BINS // BANDS
SHINGLE = 4
MIN_SHINGLES = 8  # shorter texts say too little to call two articles the same story
MAX_WORDS = 5000  # the start of a very long text decides; bounds the cost per article
THRESHOLD = 0.7

WORD = re.compile(r"\w+", re.UNICODE)
EMPTY = (1 << 64) - 1


def words(text: str) -> list[str]:
    """The folded, case-folded words of ``text`` (the first ``MAX_WORDS``)."""
    return WORD.findall(fold(text).casefold())[:MAX_WORDS]


def hash_word(word: str) -> int:
    return int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "big")


def _piece_ids(piece: str) -> tuple[int, ...]:
    return tuple(map(hash_word, WORD.findall(fold(piece).casefold())))


# Whitespace-separated piece of text -> the hashes of its words. News vocabulary is small (a
# few thousand syllables, names, numbers): emptied when it grows past the limit.
_PIECES: dict[str, tuple[int, ...]] = {}
_PIECES_LIMIT = 50_000  # about 10 MB at most


def word_hashes(text: str) -> list[int]:
    """``hash_word`` of each of ``words(text)``."""
    pieces = text.split()
    try:  # nearly always: every piece seen before
        return list(chain.from_iterable(map(_PIECES.__getitem__, pieces)))[:MAX_WORDS]
    except KeyError:
        pass
    new = set(pieces).difference(_PIECES)
    if len(_PIECES) + len(new) > _PIECES_LIMIT:
        _PIECES.clear()
        new = set(pieces)
    for piece in new:
        _PIECES[piece] = _piece_ids(piece)
    return list(chain.from_iterable(map(_PIECES.__getitem__, pieces)))[:MAX_WORDS]


_BIN_SHIFT = 64 - 6  # the top 6 bits choose one of the 64 bins
_SIGNED = 1 << 63  # Python's hash is a signed 64-bit value; signatures hold it plus 2**63
# The first (signed) hash of each bin.
_BIN_STARTS = [(b << _BIN_SHIFT) - _SIGNED for b in range(BINS)]


def signature(text: str) -> tuple[int, ...] | None:
    """The MinHash signature of ``text`` (scheme 2), None when it is too short to compare."""
    w = word_hashes(text)
    # Sorted with their repeats: a repeat changes no bin's smallest hash, and leaving them in
    # costs less than a set's inserts (a fifth of the signature).
    ordered = sorted(map(hash, zip(w, w[1:], w[2:], w[3:], strict=False)))
    if not _distinct_at_least(ordered, MIN_SHINGLES):
        return None
    n = len(ordered)
    # The smallest hash of each bin is the first of the sorted hashes at or above its start.
    mins = [EMPTY] * BINS
    for b in range(BINS):
        i = bisect.bisect_left(ordered, _BIN_STARTS[b])
        if i < n and (ordered[i] + _SIGNED) >> _BIN_SHIFT == b:
            mins[b] = ordered[i] + _SIGNED
    return densify(mins)


def _distinct_at_least(ordered: list[int], count: int) -> bool:
    """Whether the sorted ``ordered`` holds ``count`` distinct values (its first ``count``,
    unless the text repeats itself)."""
    seen, last = 0, None
    for value in ordered:
        if value != last:
            seen += 1
            if seen >= count:
                return True
            last = value
    return False


def densify(mins: list[int]) -> tuple[int, ...]:
    """An empty bin takes the next non-empty bin's value (rotating), offset by the distance so
    two texts only agree there when they agree on the source bin."""
    filled = list(mins)
    for i in range(BINS):
        if mins[i] == EMPTY:
            for step in range(1, BINS):
                j = (i + step) % BINS
                if mins[j] != EMPTY:
                    filled[i] = (mins[j] + step * 0x9E3779B97F4A7C15) & EMPTY
                    break
    return tuple(filled)


# A fresh 8-byte BLAKE2b state: copying it costs a fraction of building one.
_BLAKE2B_64 = hashlib.blake2b(digest_size=8)


def bands(sig: tuple[int, ...]) -> list[int]:
    """One signed 64-bit key per band (fits a BIGINT column)."""
    packed = pack(sig)
    step = ROWS * 8
    keys = []
    for start in range(0, BINS * 8, step):
        h = _BLAKE2B_64.copy()
        h.update(packed[start : start + step])
        keys.append(int.from_bytes(h.digest(), "big", signed=True))
    return keys


def first_band(scheme: int) -> int:
    """The number of a scheme's first band in the index: each scheme's bands apart."""
    return (scheme - 1) * BANDS


def similarity(a: tuple[int, ...], b: tuple[int, ...]) -> float:
    return sum(1 for x, y in zip(a, b, strict=True) if x == y) / BINS


def pack(sig: tuple[int, ...]) -> bytes:
    return struct.pack(f">{BINS}Q", *sig)


def unpack(raw: bytes) -> tuple[int, ...]:
    return struct.unpack(f">{BINS}Q", raw)


def fingerprint_text(title: str, body_text: str) -> str:
    return f"{title}\n{body_text}"
