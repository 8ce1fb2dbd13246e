"""Rendering of RSS 2.0 feeds, sitemaps and the article page: pure functions, bytes out.

Outputs are deterministic for the same input (no "now" inside), so their ETags are stable.
Every text passes ``xml_safe``: normalize removes the characters XML forbids, and these
writers do too, so no stored row (one older than that, or restored) can break a document.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from feedgen.feed import FeedGenerator
from lxml import etree
from lxml import html as lxml_html
from lxml.html import builder as E

from portal_text import xml_safe

SITEMAP_NS = "http://www.sitemaps.org/schemas/sitemap/0.9"
NEWS_NS = "http://www.google.com/schemas/sitemap-news/0.9"
LANGUAGE = "vi"

try:
    LOCAL_ZONE: timezone | ZoneInfo = ZoneInfo("Asia/Ho_Chi_Minh")
except ZoneInfoNotFoundError:  # pragma: no cover - a system without tz data
    LOCAL_ZONE = timezone(timedelta(hours=7), "ICT")


@dataclass(frozen=True)
class FeedItem:
    title: str
    url: str
    summary: str | None
    published_at: datetime
    category: str | None = None
    author: str | None = None


def rss(
    *,
    title: str,
    link: str,
    self_url: str,
    description: str,
    items: Sequence[FeedItem],
    last_build: datetime,
    copyright_: str | None = None,
) -> bytes:
    """An RSS 2.0 channel; items in the given order (newest first), guid = the article URL."""
    fg = FeedGenerator()
    fg.load_extension("dc", atom=False, rss=True)
    fg.title(xml_safe(title))
    # feedgen takes the channel's <link> from the last link() call: "self" must come first.
    fg.link(href=self_url, rel="self")
    fg.link(href=link, rel="alternate")
    fg.description(xml_safe(description))
    fg.language(LANGUAGE)
    fg.lastBuildDate(last_build.astimezone(UTC))
    if copyright_:
        fg.copyright(xml_safe(copyright_))
    for item in items:
        entry = fg.add_entry(order="append")
        title = xml_safe(item.title)
        entry.title(title)
        entry.link(href=xml_safe(item.url))
        entry.guid(xml_safe(item.url), permalink=True)
        entry.description(xml_safe(item.summary or "") or title)
        entry.pubDate(item.published_at.astimezone(UTC))
        if item.category:
            entry.category(term=xml_safe(item.category))
        if item.author:
            entry.dc.dc_creator(xml_safe(item.author))
    body: bytes = fg.rss_str(pretty=False)
    return body


def w3c_datetime(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(microsecond=0).isoformat()


def _xml(root: etree._Element) -> bytes:
    body: bytes = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    return body


def sitemap_index(entries: Sequence[tuple[str, datetime | None]]) -> bytes:
    root = etree.Element(f"{{{SITEMAP_NS}}}sitemapindex", nsmap={None: SITEMAP_NS})
    for loc, lastmod in entries:
        node = etree.SubElement(root, f"{{{SITEMAP_NS}}}sitemap")
        etree.SubElement(node, f"{{{SITEMAP_NS}}}loc").text = xml_safe(loc)
        if lastmod is not None:
            etree.SubElement(node, f"{{{SITEMAP_NS}}}lastmod").text = w3c_datetime(lastmod)
    return _xml(root)


def urlset(entries: Sequence[tuple[str, datetime]]) -> bytes:
    root = etree.Element(f"{{{SITEMAP_NS}}}urlset", nsmap={None: SITEMAP_NS})
    for loc, lastmod in entries:
        node = etree.SubElement(root, f"{{{SITEMAP_NS}}}url")
        etree.SubElement(node, f"{{{SITEMAP_NS}}}loc").text = xml_safe(loc)
        etree.SubElement(node, f"{{{SITEMAP_NS}}}lastmod").text = w3c_datetime(lastmod)
    return _xml(root)


@dataclass(frozen=True)
class NewsItem:
    url: str
    title: str
    published_at: datetime


def news_sitemap(items: Sequence[NewsItem], publication_name: str) -> bytes:
    """A Google News sitemap (urlset with news:news for each recent article)."""
    root = etree.Element(f"{{{SITEMAP_NS}}}urlset", nsmap={None: SITEMAP_NS, "news": NEWS_NS})
    for item in items:
        node = etree.SubElement(root, f"{{{SITEMAP_NS}}}url")
        etree.SubElement(node, f"{{{SITEMAP_NS}}}loc").text = xml_safe(item.url)
        news = etree.SubElement(node, f"{{{NEWS_NS}}}news")
        publication = etree.SubElement(news, f"{{{NEWS_NS}}}publication")
        etree.SubElement(publication, f"{{{NEWS_NS}}}name").text = xml_safe(publication_name)
        etree.SubElement(publication, f"{{{NEWS_NS}}}language").text = LANGUAGE
        etree.SubElement(news, f"{{{NEWS_NS}}}publication_date").text = w3c_datetime(
            item.published_at
        )
        etree.SubElement(news, f"{{{NEWS_NS}}}title").text = xml_safe(item.title)
    return _xml(root)


# --- The article page (what the public URL /bai-viet/<slug> serves) -----------------------------


def local_time(moment: datetime) -> str:
    return moment.astimezone(LOCAL_ZONE).strftime("%H:%M %d/%m/%Y")


def article_page(
    *,
    title: str,
    url: str,
    published_at: datetime,
    section: str | None,
    summary: str | None,
    body_html: str,
    author: str | None,
    site_name: str,
) -> bytes:
    """A minimal server-rendered page; the body is normalize's sanitised HTML."""
    title, body_html, site_name = xml_safe(title), xml_safe(body_html), xml_safe(site_name)
    section, summary, author = (xml_safe(t) if t else t for t in (section, summary, author))
    body = E.DIV(E.CLASS("noi-dung"))
    if body_html.strip():
        for fragment in lxml_html.fragments_fromstring(body_html):
            if isinstance(fragment, str):
                body.append(E.P(fragment))
            else:
                body.append(fragment)
    meta = " · ".join(p for p in (section, local_time(published_at), author) if p)
    page = E.HTML(
        E.HEAD(
            E.META(charset="utf-8"),
            E.TITLE(f"{title} — {site_name}"),
            E.LINK(rel="canonical", href=url),
        ),
        E.BODY(
            E.ARTICLE(
                E.H1(title),
                E.P(E.CLASS("thong-tin"), meta),
                *([E.P(E.CLASS("tom-tat"), summary)] if summary else []),
                body,
            )
        ),
        lang=LANGUAGE,
    )
    out: bytes = lxml_html.tostring(page, doctype="<!DOCTYPE html>", encoding="utf-8")
    return out


def gone_page(site_name: str) -> bytes:
    page = E.HTML(
        E.HEAD(E.META(charset="utf-8"), E.TITLE(f"Bài viết đã bị gỡ — {site_name}")),
        E.BODY(E.H1("Bài viết đã bị gỡ"), E.P("Bài viết này không còn được đăng trên cổng.")),
        lang=LANGUAGE,
    )
    out: bytes = lxml_html.tostring(page, doctype="<!DOCTYPE html>", encoding="utf-8")
    return out
