"""The article page: its view, breadcrumb and structured data."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup

from portal_web import present
from portal_web.views.common import Link, Picture, article_href, picture
from portal_web.views.site import Site

# --- the article page -------------------------------------------------------------------------


@dataclass(frozen=True)
class ArticleView:
    article_id: str
    title: str
    summary: str | None
    body: Markup
    author: str | None
    published: str
    published_iso: str
    updated: str | None
    updated_iso: str
    picture: Picture | None
    breadcrumb: list[Link]
    section: Link | None
    subsite: Link | None
    source_url: str | None
    canonical: str
    keys: list[str]
    json_ld: Markup
    og_image: str | None


def breadcrumb_for(site: Site, item: Mapping[str, Any]) -> list[Link]:
    crumbs = [Link("Trang chủ", "/")]
    section = item.get("section")
    subsite = item.get("subsite")
    info = site.sections.get(section["code"]) if section else None
    if subsite and (info is None or info.standard):
        crumbs.append(Link("Chuyên trang", "/chuyen-trang"))
        crumbs.append(Link(subsite["name"], f"/chuyen-trang/{subsite['code']}"))
        if section:
            crumbs.append(
                Link(section["name"], f"/chuyen-trang/{subsite['code']}?muc={section['code']}")
            )
    elif section:
        if info is not None:
            crumbs.append(Link(site.block_name(info.block), f"/#khoi-{info.block}"))
        crumbs.append(Link(section["name"], site.section_href(section["code"])))
    return crumbs


def json_ld(data: Any) -> Markup:
    """JSON for a <script type="application/ld+json"> block: '<', '>' and '&' escaped so no
    text can close the element."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return Markup(text)  # noqa: S704 - JSON with every markup character escaped


def article_view(
    site: Site, item: Mapping[str, Any], *, base_url: str, site_name: str
) -> ArticleView:
    href = article_href(item)
    canonical = base_url + href
    title = item.get("title", "")
    lead = picture(item.get("lead_image"), alt=title, sizes="(max-width: 800px) 100vw, 760px")
    og_image = base_url + lead.src if lead else None
    crumbs = breadcrumb_for(site, item)
    section = item.get("section")
    subsite = item.get("subsite")
    published, updated = item.get("published_at"), item.get("updated_at")
    news: dict[str, Any] = {
        "@type": "NewsArticle",
        "@id": canonical + "#article",
        "headline": title[:110],
        "url": canonical,
        "mainEntityOfPage": canonical,
        "inLanguage": "vi",
        "datePublished": present.iso(published),
        "dateModified": present.iso(updated or published),
        "publisher": {"@type": "Organization", "name": site_name, "url": base_url + "/"},
    }
    if item.get("summary"):
        news["description"] = item["summary"]
    if item.get("author"):
        news["author"] = {"@type": "Person", "name": item["author"]}
    else:
        news["author"] = {"@type": "Organization", "name": site_name}
    if section:
        news["articleSection"] = section["name"]
    if og_image:
        news["image"] = [og_image]
    trail = {
        "@type": "BreadcrumbList",
        "itemListElement": [
            {"@type": "ListItem", "position": i + 1, "name": c.label, "item": base_url + c.href}
            for i, c in enumerate(crumbs)
        ],
    }
    keys = [f"article:{item.get('article_id', '')}", "site"]
    changed = updated and present.parse_time(updated) != present.parse_time(published)
    return ArticleView(
        article_id=item.get("article_id", ""),
        title=title,
        summary=item.get("summary") or None,
        # Publishing serves canonical sanitised markup (normalize's nh3 allow-list); the page's
        # Content-Security-Policy forbids scripts and inline styles all the same.
        body=Markup(item.get("body_html", "")),  # noqa: S704
        author=item.get("author") or None,
        published=present.time_vn(published),
        published_iso=present.iso(published),
        updated=present.time_vn(updated) if changed else None,
        updated_iso=present.iso(updated),
        picture=lead,
        breadcrumb=crumbs,
        section=Link(section["name"], site.section_href(section["code"])) if section else None,
        subsite=Link(subsite["name"], f"/chuyen-trang/{subsite['code']}") if subsite else None,
        source_url=_http_url(item.get("canonical_url")),
        canonical=canonical,
        keys=keys,
        json_ld=json_ld({"@context": "https://schema.org", "@graph": [news, trail]}),
        og_image=og_image,
    )


def _http_url(value: Any) -> str | None:
    if isinstance(value, str) and value.startswith(("https://", "http://")):
        return value
    return None
