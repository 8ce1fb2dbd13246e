"""Wires the normalize service: settings, database, Kafka subscribers, HTTP routes."""

from __future__ import annotations

import asyncio
from pathlib import Path

from fastapi import FastAPI

from portal_contracts.articles import ArticleIngestedEvent
from portal_contracts.topics import ARTICLE_INGESTED
from portal_normalize.api import admin_router
from portal_normalize.db import outbox
from portal_normalize.fetch import ImageFetcher
from portal_normalize.handlers import PRODUCER, IngestedHandler
from portal_normalize.media import MediaService
from portal_normalize.settings import Settings
from portal_runtime.kafka import subscribe_events
from portal_runtime.service import Service, serve

MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    service = Service(
        settings,
        migrations_dir=MIGRATIONS,
        outbox=outbox,
        uses_object_store=True,
        uses_opensearch=False,
    )
    assert service.store is not None
    fetcher = ImageFetcher(
        timeout_s=settings.image_fetch_timeout_s,
        connect_timeout_s=settings.image_connect_timeout_s,
        max_bytes=settings.image_max_bytes,
        max_redirects=settings.image_max_redirects,
        user_agent=settings.image_user_agent,
        allow_hosts=settings.allowed_hosts,
    )
    media = MediaService(settings, service.store, service.sessions, fetcher)

    async def close_fetcher_on_shutdown() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            await fetcher.aclose()

    service.background.append(close_fetcher_on_shutdown)
    subscribe_events(
        service.broker,
        ARTICLE_INGESTED,
        group="normalize",
        producer=PRODUCER,
        model=ArticleIngestedEvent,
        handler=IngestedHandler(service.sessions, media, settings),
    )
    return service.create_app(
        title="Cổng TTĐT — Normalize",
        description=(
            "Repairs markup, Vietnamese encodings and images, maps categories to sections, "
            "links near-duplicates; emits article.normalized."
        ),
        routers=[admin_router(settings)],
    )


def main() -> None:
    settings = Settings()
    serve(create_app(settings), settings)


if __name__ == "__main__":
    main()
