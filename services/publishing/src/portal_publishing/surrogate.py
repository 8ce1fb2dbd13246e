"""Surrogate keys of publishing's public representations, and the keys a publication touches.

Both halves live here so they cannot drift apart: a response carries the key of everything it
shows, and an ``article.published`` event names the keys of everything it can change.

What each representation carries:

* the site structure: ``site``;
* the home page: ``home``, ``site`` and every article it lists;
* a section list (any page, any size): ``section:<code>``, ``site`` and its articles;
* a sub-site list (with or without its section filter): ``subsite:<code>``, ``site``, articles;
* an article (the API's JSON, the HTML page, the 410 once retracted): ``article:<id>``, ``site``;
* a section or sub-site feed: ``feed`` and the keys of that list;
* the sitemaps: ``sitemap``.

What an event touches: the article, its (new) section, its sub-site, the home page and the
sitemaps. An article that moves to another section, or is retracted, also leaves the lists it
was in: those carry its ``article:`` key, so they go with it. A feed is a list and goes with
its section or sub-site (``feed`` alone purges every feed, for operators).

How: publications and edits are soft purges (the stale copy may still be served, for the moment
it takes to fetch the new one, or while publishing is down). A retraction purges the article's
key hard, so the article and every page listing it are never served again from the edge, not
even stale; its other keys (the home page, the sub-site, the sitemaps) only change by the
article's absence, and a page of those that listed it carries its key: they are purged softly
and stay available while publishing is down.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from portal_contracts.articles import ArticlePublished, PublishedState
from portal_runtime import surrogate as key


def site() -> list[str]:
    return [key.SITE]


def home(article_ids: Iterable[str]) -> list[str]:
    return [key.HOME, key.SITE, *map(key.article, article_ids)]


def section_list(code: str, article_ids: Iterable[str]) -> list[str]:
    return [key.section(code), key.SITE, *map(key.article, article_ids)]


def subsite_list(code: str, article_ids: Iterable[str]) -> list[str]:
    return [key.subsite(code), key.SITE, *map(key.article, article_ids)]


def article(article_id: str) -> list[str]:
    return [key.article(article_id), key.SITE]


def feed(list_keys: list[str]) -> list[str]:
    return [key.FEED, *list_keys]


def sitemap() -> list[str]:
    return [key.SITEMAP]


@dataclass(frozen=True)
class Purge:
    soft: tuple[str, ...]  # marked stale: served while the origin fails
    hard: tuple[str, ...] = ()  # removed

    @property
    def keys(self) -> tuple[str, ...]:
        return self.hard + self.soft


def touched_by(published: ArticlePublished) -> Purge:
    article_key = key.article(published.article_id)
    others = [key.subsite(published.source), key.HOME, key.SITEMAP]
    if published.state == PublishedState.RETRACTED:
        return Purge(soft=tuple(others), hard=(article_key,))
    section = published.article.section if published.article is not None else None
    if section:
        others.insert(0, key.section(section))
    return Purge(soft=(article_key, *others))
