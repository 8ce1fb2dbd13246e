"""Documents to items: RSS/Atom (feedparser), JSON Feed (json + pydantic), XML and news
sitemaps (lxml with a safe parser), article pages (trafilatura). No network here: the fetcher
hands over decoded text, and nothing in a document makes a parser fetch anything.
"""

from __future__ import annotations

import email.utils
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

import feedparser
import trafilatura
from dateutil import parser as dateparser
from lxml import etree
from lxml import html as lxml_html
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from trafilatura.htmlprocessing import build_html_output
from trafilatura.settings import Document

from portal_contracts.codec import describe_validation_error
from portal_ingest.pull import domain
from portal_ingest.pull.domain import ConnectorKind, ErrorKind
from portal_ingest.pull.encoding import as_utf8_xml

MAX_CATEGORIES = 50
MAX_IMAGES = 200


class ParseError(Exception):
    def __init__(self, kind: ErrorKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


@dataclass(frozen=True)
class Image:
    url: str
    caption: str | None = None


@dataclass(frozen=True)
class FeedItem:
    """One item of a feed or sitemap, as the source listed it."""

    key: str
    url: str | None
    title: str | None = None
    summary: str | None = None
    body_html: str | None = None
    author: str | None = None
    published_at: datetime | None = None
    updated_at: datetime | None = None
    categories: tuple[str, ...] = ()
    images: tuple[Image, ...] = ()
    raw: dict[str, Any] = field(default_factory=dict)  # JSON-able fields as received

    def fingerprint(self) -> str:
        return domain.fingerprint(
            {
                "key": self.key,
                "url": self.url,
                "title": self.title,
                "summary": self.summary,
                "body": self.body_html,
                "author": self.author,
                "published": _iso(self.published_at),
                "updated": _iso(self.updated_at),
                "categories": list(self.categories),
                "images": [[i.url, i.caption] for i in self.images],
            }
        )

    @property
    def date(self) -> datetime | None:
        return self.published_at or self.updated_at


@dataclass(frozen=True)
class ParsedFeed:
    items: list[FeedItem]
    complete: bool  # False when the document was broken and only partly recovered
    warnings: list[str] = field(default_factory=list)
    title: str | None = None


@dataclass(frozen=True)
class ChildSitemap:
    url: str
    lastmod: datetime | None


@dataclass(frozen=True)
class ParsedSitemap:
    items: list[FeedItem]  # a <urlset>
    children: list[ChildSitemap]  # a <sitemapindex>
    complete: bool
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class PageContent:
    title: str | None
    body_html: str
    author: str | None
    published_at: datetime | None
    canonical_url: str | None
    description: str | None
    categories: tuple[str, ...]
    images: tuple[Image, ...]


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _text(value: Any, limit: int) -> str | None:
    if not isinstance(value, str):
        return None
    value = value.strip()
    return value[:limit] if value else None


def parse_date(value: Any) -> datetime | None:
    """A date as the source wrote it: aware if it names a zone, else naive (source's zone)."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    except ValueError:
        pass
    try:
        return email.utils.parsedate_to_datetime(text)  # RFC 822, as RSS writes dates
    except (TypeError, ValueError, IndexError):
        pass
    try:
        # Anything else as Vietnamese sites write it: day/month/year.
        parsed: datetime = dateparser.parse(text, dayfirst=True)
    except (ValueError, OverflowError):
        return None
    return parsed


def _absolute(url: Any, base: str | None) -> str | None:
    if not isinstance(url, str) or not url.strip():
        return None
    resolved = urljoin(base or "", url.strip())
    return resolved if urlsplit(resolved).scheme in ("http", "https") else None


def _dedupe_images(images: list[Image]) -> tuple[Image, ...]:
    seen: dict[str, Image] = {}
    for image in images:
        if image.url not in seen or (image.caption and not seen[image.url].caption):
            seen[image.url] = image
    return tuple(list(seen.values())[:MAX_IMAGES])


def _categories(names: list[Any]) -> tuple[str, ...]:
    out: list[str] = []
    for name in names:
        if isinstance(name, str):
            for part in name.split(",") if "," in name and len(name) > 200 else [name]:
                cleaned = " ".join(part.split())[:200]
                if cleaned and cleaned not in out:
                    out.append(cleaned)
    return tuple(out[:MAX_CATEGORIES])


_ENTITY_DECL = re.compile(r"<!ENTITY", re.IGNORECASE)


def refuse_entity_declarations(text: str) -> None:
    """Feeds and sitemaps have no business declaring entities; refusing them rules out entity
    expansion and external entities whatever parser runs next."""
    if _ENTITY_DECL.search(text):
        raise ParseError(ErrorKind.MALFORMED, "XML entity declarations are refused")


# -- RSS and Atom -----------------------------------------------------------------------------


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items() if not str(k).endswith("_parsed")}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def _entry_images(entry: Any, base: str | None) -> list[Image]:
    images: list[Image] = []
    for media in entry.get("media_content", []) or []:
        medium = media.get("medium") or ""
        mime = media.get("type") or ""
        if medium == "image" or mime.startswith("image/") or (not medium and not mime):
            url = _absolute(media.get("url"), base)
            if url:
                images.append(Image(url, _text(media.get("title"), 1000)))
    for thumb in entry.get("media_thumbnail", []) or []:
        url = _absolute(thumb.get("url"), base)
        if url:
            images.append(Image(url))
    for enclosure in entry.get("enclosures", []) or []:
        if (enclosure.get("type") or "").startswith("image/"):
            url = _absolute(enclosure.get("href") or enclosure.get("url"), base)
            if url:
                images.append(Image(url))
    return images


def parse_rss_atom(text: str, base_url: str, max_items: int) -> ParsedFeed:
    refuse_entity_declarations(text)
    doc = feedparser.parse(
        as_utf8_xml(text),
        response_headers={
            "content-type": "application/xml; charset=utf-8",
            "content-location": base_url,
        },
        # One sanitiser in the pipeline: normalize's allow-list. Relative links are resolved.
        sanitize_html=False,
        resolve_relative_uris=True,
    )
    warnings: list[str] = []
    complete = not doc.get("bozo")
    if not complete:
        exc = doc.get("bozo_exception")
        detail = f"{type(exc).__name__}: {exc}" if exc is not None else "unknown error"
        if not doc.entries:
            if doc.get("version"):
                raise ParseError(ErrorKind.MALFORMED, f"malformed XML, no item readable: {detail}")
            raise ParseError(ErrorKind.MALFORMED, f"malformed XML: {detail}")
        warnings.append(f"malformed XML, {len(doc.entries)} items recovered: {detail}"[:500])
    elif not doc.get("version"):
        raise ParseError(ErrorKind.NOT_A_FEED, "the document is not an RSS or Atom feed")

    feed_link = _absolute(doc.feed.get("link"), base_url) or base_url
    items: list[FeedItem] = []
    skipped = 0
    for entry in doc.entries[:max_items]:
        base = _absolute(entry.get("link"), feed_link) or feed_link
        link = _absolute(entry.get("link"), feed_link)
        key = domain.item_key(entry.get("id"), link)
        if key is None:
            skipped += 1
            continue
        contents = entry.get("content") or []
        html_parts = [c.get("value", "") for c in contents if "html" in (c.get("type") or "")]
        body = "\n".join(p for p in html_parts if p) or None
        summary = entry.get("summary")
        if body is None and contents:
            body = contents[0].get("value") or None
        tags = [t.get("term") or t.get("label") for t in entry.get("tags", []) or []]
        published = parse_date(entry.get("published")) or _struct(entry.get("published_parsed"))
        # dict.get: feedparser maps a missing "updated" to "published" (with a warning).
        updated = parse_date(dict.get(entry, "updated")) or _struct(
            dict.get(entry, "updated_parsed")
        )
        items.append(
            FeedItem(
                key=key,
                url=link,
                title=_text(entry.get("title"), 500),
                summary=_text(summary, 5000) if summary != body else None,
                body_html=body,
                author=_text(entry.get("author"), 300),
                published_at=published,
                updated_at=updated,
                categories=_categories(tags),
                images=_dedupe_images(_entry_images(entry, base)),
                raw=_json_safe(dict(entry)),
            )
        )
    if skipped:
        warnings.append(f"{skipped} items without guid or link skipped")
    return ParsedFeed(items, complete, warnings, _text(doc.feed.get("title"), 500))


def _struct(value: Any) -> datetime | None:
    if value is None:
        return None
    try:
        year, month, day, hour, minute, second = (int(v) for v in value[:6])
        return datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    except (TypeError, ValueError):
        return None


# -- JSON Feed --------------------------------------------------------------------------------


class _Loose(BaseModel):
    # Extensions (keys starting with "_") and newer fields are allowed; unknown ones ignored.
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)


class JsonFeedAuthor(_Loose):
    name: str | None = Field(default=None, max_length=300)
    url: str | None = None


class JsonFeedAttachment(_Loose):
    url: str = Field(max_length=4000)
    mime_type: str | None = None
    title: str | None = None


class JsonFeedItem(_Loose):
    id: str = Field(min_length=1, max_length=2000)
    url: str | None = Field(default=None, max_length=4000)
    external_url: str | None = Field(default=None, max_length=4000)
    title: str | None = None
    content_html: str | None = None
    content_text: str | None = None
    summary: str | None = None
    image: str | None = None
    banner_image: str | None = None
    date_published: str | None = None
    date_modified: str | None = None
    author: JsonFeedAuthor | None = None  # version 1
    authors: list[JsonFeedAuthor] = Field(default_factory=list)  # version 1.1
    tags: list[str] = Field(default_factory=list)
    attachments: list[JsonFeedAttachment] = Field(default_factory=list)

    @field_validator("id", mode="before")
    @classmethod
    def _id_as_text(cls, value: Any) -> Any:
        # The spec says string; many feeds send numbers. Same item either way.
        return (
            str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value
        )


class JsonFeed(_Loose):
    version: str = Field(pattern=r"^https://jsonfeed\.org/version/1(\.1)?$")
    title: str = Field(max_length=1000)
    home_page_url: str | None = None
    feed_url: str | None = None
    items: list[dict[str, Any]]


def parse_json_feed(text: str, base_url: str, max_items: int) -> ParsedFeed:
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ParseError(ErrorKind.MALFORMED, f"malformed JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise ParseError(ErrorKind.NOT_A_FEED, "a JSON Feed is a JSON object")
    try:
        feed = JsonFeed.model_validate(raw)
    except ValidationError as exc:
        raise ParseError(
            ErrorKind.NOT_A_FEED, f"not a JSON Feed: {describe_validation_error(exc)}"
        ) from exc
    base = _absolute(feed.home_page_url, base_url) or base_url
    items: list[FeedItem] = []
    warnings: list[str] = []
    for index, data in enumerate(feed.items[:max_items]):
        try:
            item = JsonFeedItem.model_validate(data)
        except ValidationError as exc:
            warnings.append(f"item {index} skipped: {describe_validation_error(exc)}"[:300])
            continue
        link = _absolute(item.url, base)
        key = domain.item_key(item.id, link)
        assert key is not None  # id is required
        images = [
            Image(u) for u in (_absolute(item.image, base), _absolute(item.banner_image, base)) if u
        ]
        for attachment in item.attachments:
            url = _absolute(attachment.url, base)
            if url and (attachment.mime_type or "").startswith("image/"):
                images.append(Image(url, _text(attachment.title, 1000)))
        authors = item.authors or ([item.author] if item.author else [])
        body = item.content_html
        if body is None and item.content_text:
            body = "".join(f"<p>{_escape(p)}</p>" for p in item.content_text.split("\n\n") if p)
        items.append(
            FeedItem(
                key=key,
                url=link,
                title=_text(item.title, 500),
                summary=_text(item.summary, 5000),
                body_html=body,
                author=_text(", ".join(a.name for a in authors if a.name), 300),
                published_at=parse_date(item.date_published),
                updated_at=parse_date(item.date_modified),
                categories=_categories(list(item.tags)),
                images=_dedupe_images(images),
                raw=data,
            )
        )
    return ParsedFeed(items, True, warnings, _text(feed.title, 500))


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def parse_feed(kind: ConnectorKind, text: str, base_url: str, max_items: int) -> ParsedFeed:
    if kind is ConnectorKind.JSONFEED:
        return parse_json_feed(text, base_url, max_items)
    return parse_rss_atom(text, base_url, max_items)


# -- sitemaps ---------------------------------------------------------------------------------


def _safe_xml_parser() -> etree.XMLParser:
    # No DTD, no entities, no network, no huge trees; recover what a broken file still holds.
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        recover=True,
        remove_comments=True,
        remove_pis=True,
    )


def _local(tag: Any) -> str:
    return etree.QName(tag).localname if isinstance(tag, str) else ""


def _child_text(element: Any, name: str) -> str | None:
    for child in element:
        if _local(child.tag) == name:
            text = (child.text or "").strip()
            return text or None
    return None


def _children(element: Any, name: str) -> list[Any]:
    return [c for c in element if _local(c.tag) == name]


def parse_sitemap(text: str, base_url: str, max_urls: int) -> ParsedSitemap:
    refuse_entity_declarations(text)
    parser = _safe_xml_parser()
    try:
        root = etree.fromstring(as_utf8_xml(text), parser)
    except etree.XMLSyntaxError as exc:
        raise ParseError(ErrorKind.MALFORMED, f"malformed XML: {exc}") from exc
    errors = list(parser.error_log)
    if root is None:
        detail = errors[0].message if errors else "empty document"
        raise ParseError(ErrorKind.MALFORMED, f"malformed XML: {detail}")
    warnings: list[str] = []
    if errors:
        first = errors[0]
        warnings.append(
            f"malformed XML recovered ({len(errors)} errors; line {first.line}: "
            f"{first.message.strip()})"[:500]
        )
    complete = not errors
    name = _local(root.tag)
    if name == "sitemapindex":
        children = []
        for node in _children(root, "sitemap")[:max_urls]:
            loc = _absolute(_child_text(node, "loc"), base_url)
            if loc:
                children.append(ChildSitemap(loc, parse_date(_child_text(node, "lastmod"))))
        return ParsedSitemap([], children, complete, warnings)
    if name != "urlset":
        raise ParseError(ErrorKind.NOT_A_FEED, f"not a sitemap: the root element is <{name}>")
    nodes = _children(root, "url")
    if len(nodes) > max_urls:
        warnings.append(f"the sitemap lists {len(nodes)} addresses; the first {max_urls} are read")
        complete = False
    items: list[FeedItem] = []
    for node in nodes[:max_urls]:
        loc = _absolute(_child_text(node, "loc"), base_url)
        if not loc:
            continue
        lastmod = parse_date(_child_text(node, "lastmod"))
        raw: dict[str, Any] = {"loc": loc, "lastmod": _child_text(node, "lastmod")}
        title = published = None
        categories: tuple[str, ...] = ()
        for news in _children(node, "news"):
            title = _text(_child_text(news, "title"), 500)
            published = parse_date(_child_text(news, "publication_date"))
            keywords = _child_text(news, "keywords") or ""
            categories = _categories([k.strip() for k in keywords.split(",")])
            raw["news"] = {
                "title": _child_text(news, "title"),
                "publication_date": _child_text(news, "publication_date"),
                "keywords": _child_text(news, "keywords"),
            }
        images = []
        for image in _children(node, "image"):
            url = _absolute(_child_text(image, "loc"), loc)
            if url:
                images.append(Image(url, _text(_child_text(image, "caption"), 1000)))
        if images:
            raw["images"] = [[i.url, i.caption] for i in images]
        items.append(
            FeedItem(
                key=domain.canonical_url(loc),
                url=loc,
                title=title,
                published_at=published,
                updated_at=lastmod,
                categories=categories,
                images=_dedupe_images(images),
                raw=raw,
            )
        )
    return ParsedSitemap(items, [], complete, warnings)


# -- article pages ----------------------------------------------------------------------------

_XML_PROLOG = re.compile(r"^\s*<\?xml[^>]*\?>")
_WRAPPER = re.compile(r"^\s*<html>\s*<body>|</body>\s*</html>\s*$", re.IGNORECASE)


def _canonical(tree: Any, url: str) -> str | None:
    for href in tree.xpath('//link[@rel="canonical"]/@href | //meta[@property="og:url"]/@content'):
        found = _absolute(str(href), url)
        if found:
            return found
    return None


def extract_page(text: str, url: str) -> PageContent:
    """The article on a page: main content as HTML (images and links kept, absolute),
    title, author, date, canonical address and categories."""
    text = _XML_PROLOG.sub("", text, count=1)  # lxml refuses str with an encoding declaration
    try:
        tree = lxml_html.document_fromstring(text)
    except (etree.ParserError, ValueError) as exc:
        raise ParseError(ErrorKind.MALFORMED, f"not an HTML page: {exc}") from exc
    canonical = _canonical(tree, url)
    doc = trafilatura.bare_extraction(
        tree,
        url=url,
        include_images=True,
        include_links=True,
        include_formatting=True,
        include_tables=True,
        include_comments=False,
        with_metadata=True,
        deduplicate=False,
        date_extraction_params={
            "original_date": True,
            "extensive_search": False,
            "outputformat": "%Y-%m-%dT%H:%M:%S%z",
        },
    )
    if not isinstance(doc, Document) or doc.body is None or len((doc.text or "").strip()) < 40:
        raise ParseError(ErrorKind.MALFORMED, "no article content found on the page")
    body = _WRAPPER.sub("", build_html_output(doc)).strip()
    images: list[Image] = []
    lead = _absolute(doc.image, url)
    if lead:
        images.append(Image(lead))
    fragment = lxml_html.fragment_fromstring(body, create_parent="div")
    for img in fragment.iter("img"):
        src = _absolute(img.get("src"), url)
        if src:
            images.append(Image(src, _text(img.get("alt"), 1000)))
    return PageContent(
        title=_text(doc.title, 500),
        body_html=body,
        author=_text(doc.author, 300),
        published_at=parse_date(doc.date),
        canonical_url=canonical or url,
        description=_text(doc.description, 5000),
        categories=_categories([*(doc.categories or []), *(doc.tags or [])]),
        images=_dedupe_images(images),
    )
