"""Unit tests of the search answers' cache: age, this instance's writes, size, one search
for the readers waiting on the same missing answer."""

from __future__ import annotations

import asyncio

import pytest

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


async def test_readers_of_a_missing_answer_share_one_search() -> None:
    cache = ResultCache(ttl_s=60, max_entries=10)
    asked: list[str] = []
    release = asyncio.Event()

    async def search() -> bytes:
        asked.append("q")
        await release.wait()
        return b"answer"

    readers = [asyncio.create_task(cache.answer("q", search)) for _ in range(5)]
    await asyncio.sleep(0)
    release.set()
    assert await asyncio.gather(*readers) == [b"answer"] * 5
    assert asked == ["q"]
    assert await cache.answer("q", search) == b"answer"  # kept: not asked again
    assert asked == ["q"]


async def test_a_failed_search_fails_its_readers_and_is_asked_again_next_time() -> None:
    cache = ResultCache(ttl_s=60, max_entries=10)

    async def failing() -> bytes:
        await asyncio.sleep(0)
        raise OSError("opensearch is down")

    readers = [asyncio.create_task(cache.answer("q", failing)) for _ in range(3)]
    for reader in readers:
        with pytest.raises(OSError):
            await reader

    async def working() -> bytes:
        return b"back"

    assert await cache.answer("q", working) == b"back"
