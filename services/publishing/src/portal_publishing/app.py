"""Wires the publishing service: settings, database, Kafka subscribers, HTTP routes."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from portal_contracts.articles import ArticleReviewedEvent
from portal_contracts.topics import ARTICLE_REVIEWED
from portal_publishing.api import build_routers
from portal_publishing.db import outbox
from portal_publishing.handlers import on_article_reviewed
from portal_publishing.media import media_router
from portal_publishing.pagecache import PageCache, asyncpg_dsn
from portal_publishing.rebuild import StoreRebuilder, rebuild_router
from portal_publishing.settings import Settings
from portal_runtime.auth import admin_guard
from portal_runtime.kafka import subscribe_events
from portal_runtime.service import Service, serve

MIGRATIONS = Path(__file__).parent / "migrations"

DESCRIPTION = """\
The published store of the portal and its public read API (no authentication, read-only):
site structure, home page, section and sub-site lists (cursor pagination), articles, RSS 2.0
feeds and sitemaps. Every GET carries a strong ETag, Last-Modified and Cache-Control, and
answers conditional requests with 304. It consumes `article.reviewed` and emits
`article.published`.
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    service = Service(
        settings,
        migrations_dir=MIGRATIONS,
        outbox=outbox,
        uses_object_store=True,  # serves the images normalize stored (/media/)
        uses_opensearch=False,
    )
    # Rendered public pages, dropped at every change of the store (pagecache.py).
    pages = PageCache(ttl_s=settings.page_cache_ttl_s, max_bytes=settings.page_cache_max_bytes)
    service.background.append(lambda: pages.run_listener(asyncpg_dsn(settings.database_url)))
    subscribe_events(
        service.broker,
        ARTICLE_REVIEWED,
        group="publishing",
        producer="publishing",
        model=ArticleReviewedEvent,
        handler=on_article_reviewed(service.sessions, outbox, pages),
    )
    assert service.store is not None
    return service.create_app(
        title="Cổng TTĐT — Publishing",
        description=DESCRIPTION,
        routers=[
            *build_routers(settings, service.sessions, pages),
            media_router(service.store),
            # Operators: restore the store from article.published (`portal rebuild publishing`).
            rebuild_router(
                StoreRebuilder(service.sessions, settings.kafka_bootstrap_servers),
                admin_guard(settings),
            ),
        ],
    )


def main() -> None:
    settings = Settings()
    serve(create_app(settings), settings)


if __name__ == "__main__":
    main()
