"""How long public representations may be kept, and their media types.

The validators and conditional GETs are the runtime's (``portal_runtime.httpcache``): every
public representation is rendered to bytes once and kept as a ``StoredResponse`` with a strong
ETag of exactly those bytes, Last-Modified where one is meaningful, its Cache-Control and its
surrogate keys.
"""

from __future__ import annotations

from dataclasses import dataclass

from portal_publishing.settings import Settings
from portal_runtime.httpcache import public_cache_control

JSON = "application/json"
RSS = "application/rss+xml; charset=utf-8"
XML = "application/xml; charset=utf-8"
HTML = "text/html; charset=utf-8"


@dataclass(frozen=True)
class CachePolicy:
    """Cache-Control per kind of representation. Browsers keep lists a minute and articles and
    feeds five; the edge keeps everything ``cache_edge_s`` (it is purged as soon as something
    changes, so this only bounds staleness while the purger is down)."""

    lists: str
    article: str
    feed: str

    @classmethod
    def from_settings(cls, settings: Settings) -> CachePolicy:
        def policy(max_age: int) -> str:
            return public_cache_control(
                max_age=max_age,
                shared_max_age=settings.cache_edge_s,
                stale_while_revalidate=settings.cache_stale_while_revalidate_s,
                stale_if_error=settings.cache_stale_if_error_s,
            )

        return cls(
            lists=policy(settings.cache_list_s),
            article=policy(settings.cache_article_s),
            feed=policy(settings.cache_feed_s),
        )
