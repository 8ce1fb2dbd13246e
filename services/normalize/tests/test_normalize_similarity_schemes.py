"""Scheme 2's near-duplicate signatures find what scheme 1's found (pure logic).

Pairs of Vietnamese texts (sentences of the encoding corpus and their words, recombined) with
edits at every rate from none to most: both schemes' estimates of the Jaccard similarity of
the two texts' shingle sets stay within the estimate's tolerance, and decide the same at the
threshold wherever the true similarity is not within that tolerance of it.
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portal_normalize import similarity, similarity_v1
from portal_normalize.similarity import BINS, SHINGLE, THRESHOLD, bands, words

CORPUS = Path(__file__).parent / "corpus"
SENTENCES = [
    json.loads(line)["expected"]
    for path in sorted(CORPUS.glob("*.jsonl"))
    for line in path.read_text(encoding="utf-8").split("\n")
    if line.strip()
]
VOCABULARY = sorted({w for s in SENTENCES for w in s.split()})
# Four standard deviations of a 64-bin estimate at its widest (Jaccard 0.5): 0.25.
TOLERANCE = 4 * math.sqrt(0.25 / BINS)


def _jaccard(a: str, b: str) -> float:
    def shingles(text: str) -> set[tuple[str, ...]]:
        w = words(text)
        return {tuple(w[i : i + SHINGLE]) for i in range(len(w) - SHINGLE + 1)}

    sa, sb = shingles(a), shingles(b)
    return len(sa & sb) / len(sa | sb)


def _story(rng: random.Random) -> str:
    """Corpus sentences and sentences of corpus words, as an article's text runs."""
    parts = []
    for _ in range(rng.randrange(4, 30)):
        if rng.random() < 0.5:
            parts.append(rng.choice(SENTENCES))
        else:
            made = " ".join(rng.choice(VOCABULARY) for _ in range(rng.randrange(8, 30)))
            parts.append(made.capitalize() + ".")
    return " ".join(parts)


def _edited(text: str, rate: float, rng: random.Random) -> str:
    """Each word replaced, dropped, or followed by a new one with probability ``rate``."""
    out = []
    for word in text.split():
        r = rng.random()
        if r < rate / 3:
            out.append(rng.choice(VOCABULARY))
        elif r < 2 * rate / 3:
            continue
        elif r < rate:
            out += [word, rng.choice(VOCABULARY)]
        else:
            out.append(word)
    return " ".join(out)


def _pair(seed: int) -> tuple[str, str]:
    rng = random.Random(seed)
    story = _story(rng)
    return story, _edited(story, rng.choice([0.0, 0.01, 0.03, 0.06, 0.1, 0.2, 0.4, 0.8]), rng)


def test_the_corpus_gives_varied_vietnamese() -> None:
    assert len(SENTENCES) >= 50 and len(VOCABULARY) >= 300


@settings(max_examples=400, deadline=None)
@given(st.integers(min_value=0, max_value=2**32))
def test_both_schemes_estimate_the_similarity_within_tolerance(seed: int) -> None:
    a, b = _pair(seed)
    sigs = [(scheme.signature(a), scheme.signature(b)) for scheme in (similarity, similarity_v1)]
    (a2, b2), (a1, b1) = sigs
    if a1 is None or b1 is None:
        assert (a2 is None, b2 is None) == (a1 is None, b1 is None)
        return
    assert a2 is not None and b2 is not None
    truth = _jaccard(a, b)
    new, old = similarity.similarity(a2, b2), similarity.similarity(a1, b1)
    assert abs(new - truth) <= TOLERANCE
    assert abs(old - truth) <= TOLERANCE
    if abs(truth - THRESHOLD) > TOLERANCE:  # clear of the threshold: the same decision
        assert (new >= THRESHOLD) == (old >= THRESHOLD) == (truth >= THRESHOLD)
    if truth >= THRESHOLD + TOLERANCE:  # a near-duplicate is looked up by a shared band
        assert set(enumerate(bands(a2))) & set(enumerate(bands(b2)))


def test_over_many_pairs_scheme_2_is_as_accurate_as_scheme_1() -> None:
    errors: dict[str, list[float]] = {"new": [], "old": []}
    found = {"new": 0, "old": 0}
    near = 0
    for seed in range(600):
        a, b = _pair(seed)
        a2, b2 = similarity.signature(a), similarity.signature(b)
        a1, b1 = similarity_v1.signature(a), similarity_v1.signature(b)
        if a1 is None or b1 is None or a2 is None or b2 is None:
            continue
        truth = _jaccard(a, b)
        errors["new"].append(abs(similarity.similarity(a2, b2) - truth))
        errors["old"].append(abs(similarity.similarity(a1, b1) - truth))
        if truth >= THRESHOLD:
            near += 1
            found["new"] += similarity.similarity(a2, b2) >= THRESHOLD
            found["old"] += similarity.similarity(a1, b1) >= THRESHOLD
    mean = {k: sum(v) / len(v) for k, v in errors.items()}
    assert near >= 100
    # The mean error of a 64-bin estimate is about 0.04 at most: the schemes within 0.01.
    assert mean["new"] == pytest.approx(mean["old"], abs=0.01)
    assert abs(found["new"] - found["old"]) <= 0.03 * near


def test_a_text_of_fewer_than_eight_distinct_shingles_is_not_compared() -> None:
    assert similarity.signature("một hai ba bốn " * 20) is None  # 77 shingles, 4 distinct
    words_ = ["một", "hai", "ba", "bốn", "năm", "sáu", "bảy", "tám", "chín", "mười", "trăm"]
    assert similarity.signature(" ".join(words_[:10])) is None  # 7 shingles
    assert similarity.signature(" ".join(words_)) is not None  # 8
    assert similarity.signature(" ".join(words_ * 3)) is not None
