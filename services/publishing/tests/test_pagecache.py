"""Unit tests of the page cache's rules: generations, commits in flight, size and age."""

from __future__ import annotations

from portal_publishing.pagecache import PageCache
from portal_runtime.httpcache import StoredResponse


def live_cache(**kwargs: float) -> PageCache:
    cache = PageCache(ttl_s=kwargs.get("ttl_s", 60.0), max_bytes=int(kwargs.get("max_bytes", 1e6)))
    cache.live = True
    return cache


def page(body: bytes = b"{}") -> StoredResponse:
    return StoredResponse.build(body, media_type="application/json", cache_control="public")


def put(cache: PageCache, key: str, token: int | None, body: bytes = b"{}") -> None:
    cache.put(key, token, page(body))


def test_a_page_is_served_until_a_change() -> None:
    cache = live_cache()
    put(cache, "/v1/home?", cache.token(), b"old")
    entry = cache.get("/v1/home?")
    assert entry is not None and entry.body == b"old"
    cache.invalidate()
    assert cache.get("/v1/home?") is None


def test_a_render_started_before_a_change_is_not_kept() -> None:
    cache = live_cache()
    token = cache.token()  # the render reads the store...
    cache.invalidate()  # ...while a change commits
    put(cache, "/v1/home?", token, b"maybe old")
    assert cache.get("/v1/home?") is None


def test_nothing_is_served_or_kept_while_a_commit_is_in_flight() -> None:
    cache = live_cache()
    put(cache, "/a?", cache.token())
    with cache.writing():
        assert cache.get("/a?") is None
        assert cache.token() is None
        put(cache, "/b?", cache.generation)
    assert cache.get("/a?") is None and cache.get("/b?") is None
    put(cache, "/a?", cache.token())
    assert cache.get("/a?") is not None


def test_without_the_change_listener_the_cache_is_bypassed() -> None:
    cache = PageCache(ttl_s=60, max_bytes=10_000)
    put(cache, "/a?", cache.token())
    assert cache.get("/a?") is None
    with cache.listening():
        put(cache, "/a?", cache.token())
        assert cache.get("/a?") is not None
    assert cache.get("/a?") is None  # the listener is down: changes could be missed


def test_the_least_recently_used_pages_go_beyond_the_size() -> None:
    cache = live_cache(max_bytes=8 * (page(b"x" * 1000).size + len("/p0?")))
    for i in range(10):
        put(cache, f"/p{i}?", cache.token(), b"x" * 1000)
        assert cache.get("/p0?") is not None  # kept in use
    assert len(cache) == 8
    assert cache.get("/p1?") is None
    assert cache.get("/p9?") is not None


def test_pages_expire() -> None:
    now = [1000.0]
    cache = PageCache(ttl_s=30, max_bytes=10_000, clock=lambda: now[0])
    cache.live = True
    put(cache, "/sitemaps/news.xml?", cache.token())
    now[0] += 29
    assert cache.get("/sitemaps/news.xml?") is not None
    now[0] += 2
    assert cache.get("/sitemaps/news.xml?") is None


def test_a_zero_ttl_turns_the_cache_off() -> None:
    cache = live_cache(ttl_s=0)
    put(cache, "/a?", cache.token())
    assert cache.get("/a?") is None
