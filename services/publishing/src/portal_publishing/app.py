"""Wires the publishing service: settings, database, Kafka subscribers, HTTP routes."""

from __future__ import annotations

import asyncio
from pathlib import Path

from fastapi import APIRouter, FastAPI

from portal_publishing import api
from portal_publishing.caching import CachePolicy
from portal_publishing.db import outbox
from portal_publishing.deps import ApiDeps
from portal_publishing.handlers import reviewed_subscription
from portal_publishing.media import Renditions, media_router
from portal_publishing.pagecache import PageCache, asyncpg_dsn
from portal_publishing.rebuild import StoreRebuilder, rebuild_router
from portal_publishing.security_headers import SecurityHeaders
from portal_publishing.settings import Settings
from portal_publishing.views import Views
from portal_runtime.auth import admin_guard
from portal_runtime.kafka_security import client_options
from portal_runtime.serve import serve
from portal_runtime.service import Service, ServiceApp

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
    service.consume(reviewed_subscription(pages))
    assert service.store is not None
    renditions = Renditions(settings.normalize_url) if settings.normalize_url else None
    if renditions is not None:
        service.background.append(lambda: _close_on_shutdown(renditions))
    app = service.create_app(
        title="Cổng TTĐT — Publishing",
        description=DESCRIPTION,
        # Stored pages are answered before routing: a cache hit costs a dict lookup.
        stored_responses=pages.get,
        routers=[
            _admin_api(settings),
            api.public,
            api.documents,
            media_router(service.store, renditions),
            # Operators: restore the store from article.published (`portal rebuild publishing`).
            rebuild_router(
                StoreRebuilder(service.sessions, client_options(settings)),
                admin_guard(settings),
            ),
        ],
    )
    # What the routes get (deps.py).
    app.state.api = ApiDeps(
        sessions=service.sessions,
        pages=pages,
        views=Views(settings, pages),
        cache=CachePolicy.from_settings(settings),
    )
    # Outermost: stored pages and refusals carry the headers too.
    assert isinstance(app, ServiceApp)
    app.front_layers.insert(0, SecurityHeaders)
    return app


def _admin_api(settings: Settings) -> APIRouter:
    """The admin routes with their body limit (also bounds chunked bodies: Starlette answers
    413)."""
    admin = APIRouter(max_body_size=settings.admin_max_body_bytes)
    admin.include_router(api.admin)
    return admin


async def _close_on_shutdown(renditions: Renditions) -> None:
    try:
        await asyncio.Event().wait()
    finally:
        await renditions.aclose()


def main() -> None:
    settings = Settings()
    serve(create_app(settings), settings)


if __name__ == "__main__":
    main()
