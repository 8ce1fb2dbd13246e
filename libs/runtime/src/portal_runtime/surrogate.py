"""Surrogate keys: the names of what a public response shows, for the edge cache.

Origins send ``Surrogate-Key: <keys>`` (space-separated) with every public response; the edge
(Varnish with xkey) keeps the keys with the object and strips the header. When something
changes, the purger invalidates exactly the keys it touches, and with them every cached page
that shows it. One vocabulary for every origin (publishing, the website):

* ``home`` — a home page; ``site`` — anything that shows the site structure (section and
  sub-site names);
* ``article:<article id>`` — a page showing that article, in full or in a list;
* ``section:<section code>``, ``subsite:<source code>`` — a list of a section or sub-site;
* ``feed``, ``sitemap`` — feeds and sitemaps;
* ``qa``, ``dialogue:<code>``, ``feedback:<code>``, ``forum`` — the engagement pages.
"""

from __future__ import annotations

from collections.abc import Iterable

HEADER = "Surrogate-Key"

HOME = "home"
SITE = "site"
FEED = "feed"
SITEMAP = "sitemap"
QA = "qa"
FORUM = "forum"


def article(article_id: str) -> str:
    return f"article:{article_id}"


def section(code: str) -> str:
    return f"section:{code}"


def subsite(code: str) -> str:
    return f"subsite:{code}"


def dialogue(code: str) -> str:
    return f"dialogue:{code}"


def feedback(code: str) -> str:
    return f"feedback:{code}"


def header_value(keys: Iterable[str]) -> str:
    """Distinct keys in order, space-separated; a key may hold no space or comma (xkey's
    separators), so codes never carry them."""
    return " ".join(dict.fromkeys(k for k in keys if k and not _SEPARATORS & set(k)))


_SEPARATORS = frozenset(" ,\t")
