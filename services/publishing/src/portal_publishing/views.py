"""The read side: builds the public representations from the store (CQRS "views").

Each view returns its model (or bytes) together with its Last-Modified. The change time is read
before the data: if a change commits in between, the client gets newer data with an older
Last-Modified, which only costs it a full response next time, never a stale 304.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from portal_contracts.articles import MediaRef, PublishedState
from portal_publishing import feeds, surrogate
from portal_publishing import repository as repo
from portal_publishing.domain import (
    Cursor,
    decode_cursor,
    encode_cursor,
    url_path_for,
)
from portal_publishing.pagecache import PageCache
from portal_publishing.schemas import (
    ArticleFull,
    ArticleSummary,
    Home,
    HomeBlock,
    LeaderPage,
    Ref,
    SectionArticles,
    SectionOut,
    SubsiteArticles,
    SubsiteOut,
)
from portal_publishing.settings import Settings

LEADER_KIND = "leader"


class NotFound(LookupError):
    """Unknown or inactive section/sub-site/article; the message is the reason."""


class Retracted(Exception):
    def __init__(self, slug: str, retracted_at: datetime | None, article_id: str) -> None:
        super().__init__(slug)
        self.slug = slug
        self.retracted_at = retracted_at
        self.article_id = article_id


@dataclass(frozen=True)
class Viewed:
    body: Any
    last_modified: datetime | None
    status_code: int = 200
    keys: tuple[str, ...] = ()  # surrogate keys of what it shows (surrogate.py)


@dataclass(frozen=True)
class SiteState:
    changed: datetime | None
    site: repo.Site


class Views:
    def __init__(self, settings: Settings, pages: PageCache | None = None) -> None:
        self.settings = settings
        self.base_url = settings.base_url
        self.cursor_key = settings.cursor_key.get_secret_value().encode()
        # The site structure is read by every view: kept while the page cache's generation lasts.
        self.pages = pages
        self._site_memo: tuple[int, SiteState] | None = None

    async def _site_state(self, session: AsyncSession) -> SiteState:
        token = self.pages.token() if self.pages is not None else None
        memo = self._site_memo
        if token is not None and memo is not None and memo[0] == token:
            return memo[1]
        changed = await repo.last_changed(session, [repo.SITE_SCOPE])
        state = SiteState(changed, await repo.load_site(session))
        if token is not None:
            self._site_memo = (token, state)
        return state

    async def _site(self, session: AsyncSession) -> repo.Site:
        return (await self._site_state(session)).site

    # --- building blocks --------------------------------------------------------------------

    def url(self, slug: str) -> str:
        return f"{self.base_url}{url_path_for(slug)}"

    def summary(self, row: repo.AnyRow, site: repo.Site) -> ArticleSummary:
        return ArticleSummary(**self._summary_fields(row, site))

    def _summary_fields(self, row: repo.AnyRow, site: repo.Site) -> dict[str, Any]:
        section = (
            Ref(code=row.section, name=site.section_names[row.section])
            if row.section and row.section in site.section_names
            else None
        )
        subsite = (
            Ref(code=row.source, name=site.subsite_names[row.source])
            if row.source in site.subsite_names
            else None
        )
        return {
            "article_id": row.article_id,
            "slug": row.slug,
            "url_path": url_path_for(row.slug),
            "url": self.url(row.slug),
            "title": row.title,
            "summary": row.summary,
            "author": row.author,
            "section": section,
            "subsite": subsite,
            "source": row.source,
            "revision": row.revision,
            "published_at": row.published_at,
            "updated_at": row.updated_at,
            "source_published_at": row.source_published_at,
            "lead_image": MediaRef.model_validate(row.lead_image) if row.lead_image else None,
        }

    def page_limit(self, limit: int | None) -> int:
        return min(limit or self.settings.page_size_default, self.settings.page_size_max)

    async def _page(
        self,
        session: AsyncSession,
        site: repo.Site,
        *,
        scope: str,
        cursor: str | None,
        limit: int,
        sections: list[str] | None = None,
        source: str | None = None,
    ) -> tuple[list[ArticleSummary], str | None]:
        after = decode_cursor(cursor, scope=scope, key=self.cursor_key) if cursor else None
        rows = await repo.list_published(
            session, sections=sections, source=source, after=after, limit=limit + 1
        )
        items = [self.summary(r, site) for r in rows[:limit]]
        next_cursor = None
        if len(rows) > limit:
            last = rows[limit - 1]
            next_cursor = encode_cursor(
                Cursor(published_at=last.published_at, article_id=last.article_id),
                scope=scope,
                key=self.cursor_key,
            )
        return items, next_cursor

    # --- views -------------------------------------------------------------------------------

    async def site(self, session: AsyncSession) -> Viewed:
        state = await self._site_state(session)
        return Viewed(state.site.out(), state.changed, keys=tuple(surrogate.site()))

    async def home(self, session: AsyncSession) -> Viewed:
        changed = await repo.last_changed(session, [repo.SITE_SCOPE, repo.ARTICLES_SCOPE])
        site = await self._site(session)
        blocks = []
        leaders = []
        for block in site.blocks:
            rows = await repo.list_published(
                session,
                sections=[s.code for s in block.sections],
                limit=self.settings.home_articles_per_block,
            )
            blocks.append(
                HomeBlock(
                    code=block.code,
                    name=block.name,
                    sections=block.sections,
                    articles=[self.summary(r, site) for r in rows],
                )
            )
            for section in block.sections:
                if section.kind == LEADER_KIND:
                    rows = await repo.list_published(
                        session,
                        sections=[section.code],
                        limit=self.settings.home_articles_per_leader,
                    )
                    leaders.append(
                        LeaderPage(section=section, articles=[self.summary(r, site) for r in rows])
                    )
        shown = [a.article_id for b in blocks for a in b.articles]
        shown += [a.article_id for page in leaders for a in page.articles]
        return Viewed(
            Home(blocks=blocks, leaders=leaders), changed, keys=tuple(surrogate.home(shown))
        )

    def _section(self, site: repo.Site, code: str) -> SectionOut:
        section = site.section(code)
        if section is None:
            raise NotFound(f"section {code!r} does not exist")
        return section

    def _subsite(self, site: repo.Site, code: str) -> SubsiteOut:
        subsite = site.subsite(code)
        if subsite is None:
            raise NotFound(f"sub-site {code!r} does not exist")
        return subsite

    async def section_articles(
        self, session: AsyncSession, code: str, cursor: str | None, limit: int | None
    ) -> Viewed:
        changed = await repo.last_changed(session, [repo.SITE_SCOPE, repo.section_scope(code)])
        site = await self._site(session)
        section = self._section(site, code)
        size = self.page_limit(limit)
        items, next_cursor = await self._page(
            session, site, scope=f"section:{code}", cursor=cursor, limit=size, sections=[code]
        )
        return Viewed(
            SectionArticles(section=section, items=items, next_cursor=next_cursor, limit=size),
            changed,
            keys=tuple(surrogate.section_list(code, (i.article_id for i in items))),
        )

    async def subsite_articles(
        self,
        session: AsyncSession,
        code: str,
        section_code: str | None,
        cursor: str | None,
        limit: int | None,
    ) -> Viewed:
        changed = await repo.last_changed(session, [repo.SITE_SCOPE, repo.subsite_scope(code)])
        site = await self._site(session)
        subsite = self._subsite(site, code)
        section = self._section(site, section_code) if section_code else None
        size = self.page_limit(limit)
        items, next_cursor = await self._page(
            session,
            site,
            scope=f"subsite:{code}:{section_code or ''}",
            cursor=cursor,
            limit=size,
            sections=[section_code] if section_code else None,
            source=code,
        )
        return Viewed(
            SubsiteArticles(
                subsite=subsite,
                section=section,
                items=items,
                next_cursor=next_cursor,
                limit=size,
            ),
            changed,
            keys=tuple(surrogate.subsite_list(code, (i.article_id for i in items))),
        )

    async def _article_row(self, session: AsyncSession, slug: str) -> tuple[repo.AnyRow, repo.Site]:
        row = await repo.article_by_slug(session, slug)
        if row is None:
            raise NotFound(f"article {slug!r} does not exist")
        if row.state == PublishedState.RETRACTED.value:
            raise Retracted(slug, row.retracted_at, row.article_id)
        return row, await self._site(session)

    async def article(self, session: AsyncSession, slug: str) -> Viewed:
        site_changed = (await self._site_state(session)).changed
        row, site = await self._article_row(session, slug)
        content = row.article or {}
        full = ArticleFull(
            **self._summary_fields(row, site),
            body_html=content.get("body_html", ""),
            body_text=content.get("body_text", ""),
            categories=content.get("categories", []),
            images=[MediaRef.model_validate(i) for i in content.get("images", [])],
            canonical_url=content.get("canonical_url"),
        )
        changed = row.changed_at if site_changed is None else max(row.changed_at, site_changed)
        return Viewed(full, changed, keys=tuple(surrogate.article(row.article_id)))

    async def article_html(self, session: AsyncSession, slug: str) -> Viewed:
        try:
            row, site = await self._article_row(session, slug)
        except Retracted as gone:
            return Viewed(
                feeds.gone_page(self.settings.publication_name),
                None,
                status_code=410,
                keys=tuple(surrogate.article(gone.article_id)),
            )
        content = row.article or {}
        body = feeds.article_page(
            title=row.title,
            url=self.url(row.slug),
            published_at=row.published_at,
            section=site.section_names.get(row.section) if row.section else None,
            summary=row.summary,
            body_html=content.get("body_html", ""),
            author=row.author,
            site_name=self.settings.publication_name,
        )
        return Viewed(body, row.changed_at, keys=tuple(surrogate.article(row.article_id)))

    # --- feeds and sitemaps ------------------------------------------------------------------

    def _feed(self, site: repo.Site, rows: list[repo.AnyRow], **channel: Any) -> bytes:
        items = [
            feeds.FeedItem(
                title=r.title,
                url=self.url(r.slug),
                summary=r.summary,
                published_at=r.published_at,
                category=site.section_names.get(r.section) if r.section else None,
                author=r.author,
            )
            for r in rows
        ]
        return feeds.rss(items=items, copyright_=self.settings.publication_name, **channel)

    async def section_feed(self, session: AsyncSession, code: str) -> Viewed:
        changed = await repo.last_changed(session, [repo.SITE_SCOPE, repo.section_scope(code)])
        site = await self._site(session)
        section = self._section(site, code)
        rows = await repo.list_published(session, sections=[code], limit=self.settings.feed_items)
        body = self._feed(
            site,
            rows,
            title=f"{section.name} — {self.settings.publication_name}",
            link=self.base_url + "/",
            self_url=f"{self.base_url}/rss/sections/{code}.xml",
            description=f"Tin mới nhất chuyên mục {section.name}",
            last_build=changed or _EPOCH,
        )
        listed = surrogate.section_list(code, (r.article_id for r in rows))
        return Viewed(body, changed, keys=tuple(surrogate.feed(listed)))

    async def subsite_feed(self, session: AsyncSession, code: str) -> Viewed:
        changed = await repo.last_changed(session, [repo.SITE_SCOPE, repo.subsite_scope(code)])
        site = await self._site(session)
        subsite = self._subsite(site, code)
        rows = await repo.list_published(session, source=code, limit=self.settings.feed_items)
        body = self._feed(
            site,
            rows,
            title=f"{subsite.name} — {self.settings.publication_name}",
            link=self.base_url + "/",
            self_url=f"{self.base_url}/rss/subsites/{code}.xml",
            description=f"Tin mới nhất chuyên trang {subsite.name}",
            last_build=changed or _EPOCH,
        )
        listed = surrogate.subsite_list(code, (r.article_id for r in rows))
        return Viewed(body, changed, keys=tuple(surrogate.feed(listed)))

    async def sitemap_index(self, session: AsyncSession) -> Viewed:
        changed = await repo.last_changed(session, [repo.ARTICLES_SCOPE])
        chunks = await repo.sitemap_chunks(session, self.settings.sitemap_urls_per_file)
        entries: list[tuple[str, datetime | None]] = [
            (f"{self.base_url}/sitemaps/articles-{n}.xml", lastmod) for n, lastmod in chunks
        ]
        if not entries:
            entries.append((f"{self.base_url}/sitemaps/articles-1.xml", None))
        entries.append((f"{self.base_url}/sitemaps/news.xml", changed))
        return Viewed(feeds.sitemap_index(entries), changed, keys=tuple(surrogate.sitemap()))

    async def sitemap_articles(self, session: AsyncSession, n: int) -> Viewed:
        changed = await repo.last_changed(session, [repo.ARTICLES_SCOPE])
        rows = await repo.sitemap_chunk(session, n, self.settings.sitemap_urls_per_file)
        if not rows and n > 1:
            raise NotFound(f"sitemap articles-{n} does not exist")
        urls = feeds.urlset([(self.url(r.slug), r.updated_at) for r in rows])
        return Viewed(urls, changed, keys=tuple(surrogate.sitemap()))

    async def news_sitemap(self, session: AsyncSession, now: datetime | None = None) -> Viewed:
        since = (now or datetime.now(UTC)) - timedelta(hours=self.settings.news_sitemap_hours)
        rows = await repo.published_since(session, since, self.settings.news_sitemap_max_urls)
        # A news entry needs its title: a row without one is left out, not a broken sitemap.
        items = [
            feeds.NewsItem(url=self.url(r.slug), title=r.title, published_at=r.published_at)
            for r in rows
            if r.title
        ]
        # Its content also changes as time passes (items age out), so Last-Modified is omitted
        # there: only the ETag validates it.
        news = feeds.news_sitemap(items, self.settings.publication_name)
        return Viewed(news, None, keys=tuple(surrogate.sitemap()))


_EPOCH = datetime(2023, 3, 28, tzinfo=UTC)  # the portal's launch; lastBuildDate of an empty feed
