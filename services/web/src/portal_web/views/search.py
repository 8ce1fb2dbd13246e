"""The search page: hits, facets and their toggles."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from markupsafe import Markup

from portal_web import present
from portal_web.views.common import article_href, safe_highlight
from portal_web.views.paging import PageLink, page_links, query_string
from portal_web.views.site import Site

# --- search ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Facet:
    label: str
    count: int
    href: str
    selected: bool


@dataclass(frozen=True)
class Hit:
    title: Markup
    href: str
    snippets: list[Markup]
    published: str
    published_iso: str
    section: str
    source: str


@dataclass
class SearchView:
    q: str
    sections: list[str]
    sources: list[str]
    date_from: str
    date_to: str
    sort: str
    page: int
    total: int
    hits: list[Hit] = field(default_factory=list)
    section_facets: list[Facet] = field(default_factory=list)
    source_facets: list[Facet] = field(default_factory=list)
    pages: list[PageLink] = field(default_factory=list)

    def params(self, **override: Any) -> dict[str, Any]:
        base: dict[str, Any] = {
            "q": self.q,
            "chuyen-muc": self.sections,
            "nguon": self.sources,
            "tu-ngay": self.date_from,
            "den-ngay": self.date_to,
            "sap-xep": self.sort if self.sort != "relevance" else None,
        }
        base.update(override)
        return base

    @property
    def filtered(self) -> bool:
        return bool(self.sections or self.sources or self.date_from or self.date_to)


SEARCH_PAGE_SIZE = 10


def _toggle(values: Sequence[str], value: str) -> list[str]:
    return [v for v in values if v != value] if value in values else [*values, value]


def search_view(site: Site, form: SearchView, answer: Mapping[str, Any] | None) -> SearchView:
    """Fills ``form`` (what the reader asked) with the search answer: hits, facets, pages."""
    if answer is None:
        return form
    form.total = int(answer.get("total", 0))
    for h in answer.get("hits", []):
        highlight = h.get("highlight") or {}
        titles = highlight.get("title") or []
        form.hits.append(
            Hit(
                title=safe_highlight(titles[0]) if titles else Markup.escape(h.get("title", "")),
                href=article_href(h),
                snippets=[safe_highlight(s) for s in (highlight.get("body") or [])[:2]]
                or ([Markup.escape(h["summary"])] if h.get("summary") else []),
                published=present.time_vn(h.get("published_at")),
                published_iso=present.iso(h.get("published_at")),
                section=site.section_name(h.get("section")),
                source=site.subsite_name(h.get("source")),
            )
        )
    facets = answer.get("facets") or {}
    form.section_facets = [
        Facet(
            site.section_name(b["key"]),
            int(b["count"]),
            "/tim-kiem"
            + query_string(form.params(**{"chuyen-muc": _toggle(form.sections, b["key"])})),
            b["key"] in form.sections,
        )
        for b in facets.get("section", [])
    ]
    form.source_facets = [
        Facet(
            site.subsite_name(b["key"]),
            int(b["count"]),
            "/tim-kiem" + query_string(form.params(nguon=_toggle(form.sources, b["key"]))),
            b["key"] in form.sources,
        )
        for b in facets.get("source", [])
    ]
    form.pages = page_links(
        "/tim-kiem", form.params(), page=form.page, total=form.total, size=SEARCH_PAGE_SIZE
    )
    return form
