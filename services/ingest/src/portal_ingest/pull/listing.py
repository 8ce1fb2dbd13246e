"""Reading what a connector lists, and an article's page: fetched politely (``fetch``),
decoded once (``encoding``), parsed (``parse``). A sitemap index is followed one level deep
(the children that changed recently first); gzipped sitemaps are inflated within the size limit.
Warnings (recovered parse errors, guessed encodings, skipped children) go to the poll's report.
"""

from __future__ import annotations

import asyncio
import zlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from portal_ingest.pull.decide import pick_children
from portal_ingest.pull.domain import Connector, ConnectorKind, ErrorKind
from portal_ingest.pull.encoding import decode_document
from portal_ingest.pull.fetch import Fetcher, FetchError, Response
from portal_ingest.pull.parse import (
    FeedItem,
    PageContent,
    ParsedFeed,
    ParsedSitemap,
    ParseError,
    extract_page,
    parse_feed,
    parse_sitemap,
)
from portal_ingest.pull.report import PollReport
from portal_ingest.settings import Settings

ACCEPT = {
    ConnectorKind.RSS: "application/rss+xml, application/xml;q=0.9, text/xml;q=0.8, */*;q=0.1",
    ConnectorKind.ATOM: "application/atom+xml, application/xml;q=0.9, text/xml;q=0.8, */*;q=0.1",
    ConnectorKind.JSONFEED: "application/feed+json, application/json;q=0.9, */*;q=0.1",
    ConnectorKind.SITEMAP: "application/xml, text/xml;q=0.9, */*;q=0.1",
    ConnectorKind.NEWS_SITEMAP: "application/xml, text/xml;q=0.9, */*;q=0.1",
}
ACCEPT_PAGE = "text/html, application/xhtml+xml;q=0.9, */*;q=0.1"
HTML_TYPES = ("text/html", "application/xhtml+xml", "text/plain", "application/xml", "text/xml")


def ungzip(body: bytes, limit: int) -> bytes:
    """Sitemaps are often served as .xml.gz files (not Content-Encoding): inflate, bounded."""
    if not body.startswith(b"\x1f\x8b"):
        return body
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    out = inflater.decompress(body, limit + 1)
    if len(out) > limit:
        raise ParseError(ErrorKind.TOO_LARGE, f"gzip sitemap inflates beyond {limit} bytes")
    return out


@dataclass(frozen=True)
class SitemapListing:
    response: Response  # of the sitemap (or index) itself
    items: list[FeedItem]
    complete: bool  # every child was read and none was cut short


class Lister:
    def __init__(self, settings: Settings, fetcher: Fetcher) -> None:
        self.settings = settings
        self.fetcher = fetcher

    async def get_listing(
        self,
        url: str,
        connector: Connector,
        etag: str | None = None,
        last_modified: str | None = None,
    ) -> Response:
        return await self.fetcher.get(
            url,
            max_bytes=self.settings.feed_max_bytes,
            accept=ACCEPT[connector.kind],
            etag=etag,
            last_modified=last_modified,
        )

    async def parse_feed(
        self, connector: Connector, resp: Response, report: PollReport
    ) -> tuple[ParsedFeed, str | None]:
        """The feed's items (at most ``max_items_per_poll``), and the encoding it was read in."""
        kind = "json" if connector.kind is ConnectorKind.JSONFEED else "xml"
        decoded = decode_document(resp.body, resp.content_type, kind)
        if decoded.warning:
            report.warn(f"{connector.url}: {decoded.warning}")
        parsed = await asyncio.to_thread(
            parse_feed,
            connector.kind,
            decoded.text,
            resp.final_url,
            self.settings.max_items_per_poll,
        )
        for warning in parsed.warnings:
            report.warn(f"{connector.url}: {warning}")
        return parsed, decoded.encoding

    def parse_sitemap(self, url: str, resp: Response, report: PollReport) -> ParsedSitemap:
        body = ungzip(resp.body, self.settings.feed_max_bytes)
        decoded = decode_document(body, resp.content_type, "xml")
        if decoded.warning:
            report.warn(f"{url}: {decoded.warning}")
        parsed = parse_sitemap(decoded.text, resp.final_url, self.settings.max_sitemap_urls)
        for warning in parsed.warnings:
            report.warn(f"{url}: {warning}")
        return parsed

    async def read_sitemap(
        self,
        connector: Connector,
        report: PollReport,
        *,
        etag: str | None,
        last_modified: str | None,
        children_since: datetime | None,
        max_children: int,
    ) -> SitemapListing | None:
        """The addresses a sitemap (or sitemap index) lists; None when not modified."""
        resp = await self.get_listing(connector.url, connector, etag, last_modified)
        if resp.not_modified:
            return None
        parsed = self.parse_sitemap(connector.url, resp, report)
        if not parsed.children:
            return SitemapListing(resp, parsed.items, parsed.complete)
        children = pick_children(parsed.children, children_since, max_children)
        complete = parsed.complete and len(children) == len(parsed.children)
        limit = self.settings.max_sitemap_urls
        items: list[FeedItem] = []
        for child in children:
            try:
                child_resp = await self.get_listing(child.url, connector)
                child_parsed = self.parse_sitemap(child.url, child_resp, report)
            except (FetchError, ParseError) as exc:
                complete = False
                report.warn(f"child sitemap {child.url}: {getattr(exc, 'message', exc)}")
                continue
            if child_parsed.children:
                report.warn(f"child sitemap {child.url} is itself an index; not followed")
                complete = False
            complete = complete and child_parsed.complete
            items.extend(child_parsed.items)
            if len(items) >= limit:
                report.warn(f"more than {limit} addresses; rest skipped")
                complete = False
                break
        return SitemapListing(resp, items[:limit], complete)

    async def read_page(self, url: str, report: PollReport) -> tuple[PageContent, dict[str, Any]]:
        """An article's main content, and what is archived of the page."""
        resp = await self.fetcher.get(
            url, max_bytes=self.settings.page_max_bytes, accept=ACCEPT_PAGE
        )
        media = (resp.content_type or "text/html").split(";")[0].strip().lower()
        if media not in HTML_TYPES:
            raise ParseError(ErrorKind.CONTENT_TYPE, f"{url}: {media} is not an HTML page")
        decoded = decode_document(resp.body, resp.content_type, "html")
        if decoded.warning:
            report.warn(f"{url}: {decoded.warning}")
        page = await asyncio.to_thread(extract_page, decoded.text, resp.final_url)
        page_doc = {
            "url": url,
            "final_url": resp.final_url,
            "status": resp.status,
            "content_type": resp.content_type,
            "declared_charset": decoded.declared,
            "decoded_as": decoded.encoding,
            "html": decoded.text,
        }
        return page, page_doc
