"""Queries of the published store: the site structure, articles, change times."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeAlias

from pydantic import BaseModel
from sqlalchemy import (
    Row,
    String,
    and_,
    any_,
    bindparam,
    func,
    literal,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.ext.asyncio import AsyncSession

from portal_contracts.articles import PublishedState
from portal_publishing.db import articles, changes, site_blocks, site_sections, site_subsites
from portal_publishing.domain import Cursor
from portal_publishing.schemas import (
    BlockOut,
    SectionOut,
    SiteIn,
    SiteOut,
    SubsiteOut,
)
from portal_runtime.upsert import Upsert, from_proposed

# A result row of any shape.
AnyRow: TypeAlias = Row[Any]

SITE_SCOPE = "site"
ARTICLES_SCOPE = "articles"  # any public change of any article (home, sitemaps)


def section_scope(code: str) -> str:
    return f"section:{code}"


def subsite_scope(code: str) -> str:
    return f"subsite:{code}"


# --- Change times ------------------------------------------------------------------------------


_TOUCH = Upsert(changes, ["scope"], conflict=["scope"], set_=lambda new: {"changed_at": func.now()})


async def touch(session: AsyncSession, scopes: Iterable[str]) -> None:
    """Mark representations as changed now (in the caller's transaction); the rows are taken
    in sorted order, so two writers never deadlock on them."""
    await _TOUCH.run(session, [{"scope": scope} for scope in sorted(set(scopes))])


async def last_changed(session: AsyncSession, scopes: Iterable[str]) -> datetime | None:
    result = await session.execute(
        select(func.max(changes.c.changed_at)).where(changes.c.scope.in_(list(set(scopes))))
    )
    value: datetime | None = result.scalar_one_or_none()
    return value


# --- Site structure ----------------------------------------------------------------------------


@dataclass
class Site:
    """The site as the read side needs it: active structure plus names of everything known."""

    blocks: list[BlockOut] = field(default_factory=list)
    subsites: list[SubsiteOut] = field(default_factory=list)
    standard_sections: list[str] = field(default_factory=list)
    # Every section and sub-site ever listed (also inactive), to name an article's section.
    section_names: dict[str, str] = field(default_factory=dict)
    subsite_names: dict[str, str] = field(default_factory=dict)

    def section(self, code: str) -> SectionOut | None:
        for block in self.blocks:
            for section in block.sections:
                if section.code == code:
                    return section
        return None

    def subsite(self, code: str) -> SubsiteOut | None:
        return next((s for s in self.subsites if s.code == code), None)

    def out(self) -> SiteOut:
        return SiteOut(
            blocks=self.blocks, standard_sections=self.standard_sections, subsites=self.subsites
        )


async def load_site(session: AsyncSession) -> Site:
    site = Site()
    block_rows = (await session.execute(select(site_blocks).order_by(site_blocks.c.position))).all()
    section_rows = (
        await session.execute(select(site_sections).order_by(site_sections.c.position))
    ).all()
    subsite_rows = (
        await session.execute(select(site_subsites).order_by(site_subsites.c.position))
    ).all()
    by_block: dict[str, list[SectionOut]] = {}
    for s in section_rows:
        site.section_names[s.code] = s.name
        if s.active:
            by_block.setdefault(s.block_code, []).append(
                SectionOut(
                    code=s.code, name=s.name, kind=s.kind, block=s.block_code, standard=s.standard
                )
            )
            if s.standard:
                site.standard_sections.append(s.code)
    site.blocks = [
        BlockOut(code=b.code, name=b.name, sections=by_block.get(b.code, []))
        for b in block_rows
        if b.active
    ]
    for sub in subsite_rows:
        site.subsite_names[sub.code] = sub.name
        if sub.active:
            site.subsites.append(SubsiteOut(code=sub.code, name=sub.name, kind=sub.kind))
    return site


async def replace_site(session: AsyncSession, site: SiteIn) -> None:
    """Make ``site`` the structure: upsert what it lists, deactivate everything else."""
    standard = set(site.standard_sections)
    block_rows = [
        {"code": b.code, "name": b.name, "position": i, "active": True}
        for i, b in enumerate(site.blocks)
    ]
    section_rows = [
        {
            "code": s.code,
            "block_code": b.code,
            "name": s.name,
            "kind": s.kind,
            "position": i,
            "standard": s.code in standard,
            "active": True,
        }
        for i, (b, s) in enumerate((b, s) for b in site.blocks for s in b.sections)
    ]
    subsite_rows = [
        {"code": s.code, "name": s.name, "kind": s.kind, "position": i, "active": True}
        for i, s in enumerate(site.subsites)
    ]
    for table, rows in (
        (site_blocks, block_rows),
        (site_sections, section_rows),
        (site_subsites, subsite_rows),
    ):
        await session.execute(update(table).values(active=False))
        if rows:
            stmt = insert(table).values(rows)
            excluded = {c.name: stmt.excluded[c.name] for c in table.c if c.name != "code"}
            await session.execute(
                stmt.on_conflict_do_update(index_elements=[table.c.code], set_=excluded)
            )
    await touch(session, [SITE_SCOPE])


# --- Articles: write side ----------------------------------------------------------------------


async def lock_article(session: AsyncSession, article_id: str) -> AnyRow | None:
    result = await session.execute(
        select(articles).where(articles.c.article_id == article_id).with_for_update()
    )
    return result.first()


# What the publishing rules read of a batch's articles (never the article itself).
_LOCK_ARTICLES = (
    select(
        articles.c.article_id,
        articles.c.source,
        articles.c.external_id,
        articles.c.revision,
        articles.c.state,
        articles.c.fingerprint,
        articles.c.slug,
        articles.c.section,
        articles.c.published_at,
        articles.c.updated_at,
        articles.c.retracted_at,
    )
    .where(articles.c.article_id == any_(bindparam("ids", type_=ARRAY(String))))
    .order_by(articles.c.article_id)
    .with_for_update()
)


async def lock_articles(session: AsyncSession, article_ids: Sequence[str]) -> dict[str, AnyRow]:
    """A batch's articles (the columns the rules read), locked in key order until the
    transaction ends."""
    if not article_ids:
        return {}
    result = await session.execute(_LOCK_ARTICLES, {"ids": sorted(article_ids)})
    return {row.article_id: row for row in result}


# Columns written as JSON: the caller gives the model, stored as pydantic's JSON text.
_JSON_COLUMNS = frozenset({"article", "lead_image"})


@functools.cache
def _upsert_statement(columns: tuple[str, ...]) -> Upsert:
    """The upsert of rows that set exactly ``columns`` (sorted), made once per set of columns."""
    updated = [c for c in columns if c != "article_id"]
    return Upsert(
        articles,
        columns,
        conflict=["article_id"],
        set_=lambda new: {**from_proposed(new, updated), "changed_at": func.now()},
    )


def _stored(column: str, value: Any) -> Any:
    if column in _JSON_COLUMNS and isinstance(value, BaseModel):
        return value.model_dump_json()
    return value


async def upsert_articles(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Write many articles, one statement per set of columns (each row sets only its own);
    ``article`` and ``lead_image`` are given as their models (or None)."""
    shapes: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        shapes.setdefault(tuple(sorted(row)), []).append({k: _stored(k, v) for k, v in row.items()})
    for columns, same in shapes.items():
        await _upsert_statement(columns).run(session, same)


_SLUGS_HELD = select(articles.c.slug, articles.c.article_id).where(
    articles.c.slug == any_(bindparam("slugs", type_=ARRAY(String)))
)


async def slugs_held(session: AsyncSession, slugs: Iterable[str]) -> dict[str, str]:
    """Which of ``slugs`` the store gives out already, and to which article (one query)."""
    wanted = sorted(set(slugs))
    if not wanted:
        return {}
    result = await session.execute(_SLUGS_HELD, {"slugs": wanted})
    return {row.slug: row.article_id for row in result}


async def slug_taken(session: AsyncSession, slug: str, article_id: str) -> bool:
    result = await session.execute(
        select(literal(1)).where(articles.c.slug == slug, articles.c.article_id != article_id)
    )
    return result.first() is not None


async def upsert_article(session: AsyncSession, values: dict[str, Any]) -> None:
    stmt = insert(articles).values(**values, changed_at=func.now())
    updates: dict[str, Any] = {k: stmt.excluded[k] for k in values if k != "article_id"}
    updates["changed_at"] = func.now()
    await session.execute(
        stmt.on_conflict_do_update(index_elements=[articles.c.article_id], set_=updates)
    )


# --- Articles: read side -----------------------------------------------------------------------

SUMMARY_COLUMNS = (
    articles.c.article_id,
    articles.c.slug,
    articles.c.title,
    articles.c.summary,
    articles.c.author,
    articles.c.section,
    articles.c.source,
    articles.c.revision,
    articles.c.published_at,
    articles.c.updated_at,
    articles.c.source_published_at,
    articles.c.lead_image,
)

_IS_PUBLISHED = articles.c.state == PublishedState.PUBLISHED.value


async def list_published(
    session: AsyncSession,
    *,
    sections: Sequence[str] | None = None,
    source: str | None = None,
    after: Cursor | None = None,
    limit: int,
) -> list[AnyRow]:
    """Published articles newest first, keyset-paginated on (published_at, article_id)."""
    conditions = [_IS_PUBLISHED]
    if sections is not None:
        if not sections:
            return []
        conditions.append(articles.c.section.in_(list(sections)))
    if source is not None:
        conditions.append(articles.c.source == source)
    if after is not None:
        conditions.append(
            tuple_(articles.c.published_at, articles.c.article_id)
            < tuple_(literal(after.published_at), literal(after.article_id))
        )
    result = await session.execute(
        select(*SUMMARY_COLUMNS)
        .where(and_(*conditions))
        .order_by(articles.c.published_at.desc(), articles.c.article_id.desc())
        .limit(limit)
    )
    return list(result.all())


async def article_by_slug(session: AsyncSession, slug: str) -> AnyRow | None:
    result = await session.execute(select(articles).where(articles.c.slug == slug))
    return result.first()


async def sitemap_chunks(session: AsyncSession, size: int) -> list[tuple[int, datetime]]:
    """(chunk number from 1, newest updated_at in it) for the article sitemaps, oldest first."""
    numbered = (
        select(
            articles.c.updated_at,
            (
                (func.row_number().over(order_by=(articles.c.published_at, articles.c.article_id)))
                - 1
            ).label("rn"),
        )
        .where(_IS_PUBLISHED)
        .subquery()
    )
    chunk = (numbered.c.rn // size + 1).label("chunk")
    result = await session.execute(
        select(chunk, func.max(numbered.c.updated_at)).group_by(chunk).order_by(chunk)
    )
    return [(int(n), ts) for n, ts in result.all()]


async def sitemap_chunk(session: AsyncSession, n: int, size: int) -> list[AnyRow]:
    result = await session.execute(
        select(articles.c.slug, articles.c.updated_at)
        .where(_IS_PUBLISHED)
        .order_by(articles.c.published_at, articles.c.article_id)
        .offset((n - 1) * size)
        .limit(size)
    )
    return list(result.all())


async def published_since(session: AsyncSession, since: datetime, limit: int) -> list[AnyRow]:
    result = await session.execute(
        select(articles.c.slug, articles.c.title, articles.c.published_at, articles.c.updated_at)
        .where(_IS_PUBLISHED, articles.c.published_at >= since)
        .order_by(articles.c.published_at.desc(), articles.c.article_id.desc())
        .limit(limit)
    )
    return list(result.all())
