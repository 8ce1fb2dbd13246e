"""Unit tests of the search answers' cache: age, this instance's writes, size."""

from __future__ import annotations

from portal_search.resultcache import ResultCache


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_an_answer_is_reused_until_it_is_too_old() -> None:
    clock = Clock()
    cache = ResultCache(ttl_s=5, max_entries=10, clock=clock)
    cache.put("q=hà nội", cache.token(), b"answer")
    clock.now += 4.9
    assert cache.get("q=hà nội") == b"answer"
    clock.now += 0.2
    assert cache.get("q=hà nội") is None


def test_a_write_of_this_instance_drops_answers_and_nothing_is_kept_until_it_settles() -> None:
    clock = Clock()
    cache = ResultCache(ttl_s=5, max_entries=10, settle_s=2, clock=clock)
    cache.put("a", cache.token(), b"old")
    token = cache.token()  # a search is asked...
    cache.changed()  # ...while an article is indexed
    assert cache.get("a") is None
    cache.put("a", token, b"maybe without it")
    assert cache.get("a") is None
    cache.put("a", cache.token(), b"before the refresh")  # the write is not searchable yet
    assert cache.get("a") is None
    clock.now += 2.1
    cache.put("a", cache.token(), b"with it")
    assert cache.get("a") == b"with it"


def test_the_least_recently_used_answers_go_first() -> None:
    cache = ResultCache(ttl_s=60, max_entries=2)
    cache.put("a", cache.token(), b"1")
    cache.put("b", cache.token(), b"2")
    assert cache.get("a") == b"1"
    cache.put("c", cache.token(), b"3")
    assert cache.get("b") is None
    assert cache.get("a") == b"1" and cache.get("c") == b"3"


def test_a_zero_ttl_turns_it_off() -> None:
    cache = ResultCache(ttl_s=0, max_entries=10)
    cache.put("a", cache.token(), b"1")
    assert cache.get("a") is None
