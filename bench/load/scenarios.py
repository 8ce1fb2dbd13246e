"""The load benchmark's scenarios, as data: which URLs, answered by which origin, and whether the
edge cache serves them. A new scenario (the website's pages) is one more entry in SCENARIOS."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

WEB_ARTICLE_URLS = 200  # the website renders each page: fewer distinct ones than the API's


@dataclass(frozen=True)
class Catalog:
    """What the loaded data set offers to ask for."""

    sections: list[str]
    slugs: list[str]  # a random sample of the data set's articles
    searches: list[dict[str, Any]]


@dataclass(frozen=True)
class Scenario:
    name: str
    origin: str  # the service that answers it: publishing, search, (the website) web
    via_edge: bool  # the edge routes it (deploy/edge/portal.vcl) and caches it
    paths: Callable[[Catalog], list[str]]  # request targets, rotated over by wrk


SCENARIOS: list[Scenario] = [
    Scenario("home", "publishing", True, lambda c: ["/v1/home"]),
    Scenario(
        "section",
        "publishing",
        True,
        lambda c: [f"/v1/sections/{code}/articles" for code in c.sections],
    ),
    Scenario("article", "publishing", True, lambda c: [f"/v1/articles/{s}" for s in c.slugs]),
    # Search is not behind the edge (its routes are not the edge's): origin and nginx only.
    Scenario(
        "search",
        "search",
        False,
        lambda c: [f"/v1/search?{urlencode(params)}" for params in c.searches],
    ),
    # The public website's HTML pages (services/web, which reads publishing, search and
    # engagement for them), through the edge like every reader.
    Scenario("web-home", "web", True, lambda c: ["/"]),
    Scenario(
        "web-article",
        "web",
        True,
        lambda c: [f"/bai-viet/{s}" for s in c.slugs[:WEB_ARTICLE_URLS]],
    ),
]


def by_name(names: list[str]) -> list[Scenario]:
    known = {s.name: s for s in SCENARIOS}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SystemExit(f"unknown scenarios {unknown}; known: {', '.join(known)}")
    return [known[n] for n in names]
