"""Wires the normalize service: settings, database, Kafka subscribers, HTTP routes."""

from __future__ import annotations

import asyncio
from pathlib import Path

from fastapi import FastAPI

from portal_normalize.api import admin_router, renditions_router
from portal_normalize.db import outbox
from portal_normalize.fetch import ImageFetcher
from portal_normalize.handlers import Ingested
from portal_normalize.imagepool import ImagePool
from portal_normalize.media import MediaService
from portal_normalize.repository import RulesCache, Scheme1Stories
from portal_normalize.settings import Settings
from portal_runtime.serve import serve
from portal_runtime.service import Service

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
    pool = ImagePool(
        workers=settings.image_workers,
        memory_mb=settings.image_worker_memory_mb,
        timeout_s=settings.image_process_timeout_s,
        idle_s=settings.image_workers_idle_s,
    )
    media = MediaService(settings, service.store, service.sessions, fetcher, pool)

    async def image_workers() -> None:
        # Started by the first image, stopped when no image has come for a while.
        try:
            await pool.stop_when_idle()
        finally:
            await fetcher.aclose()
            await asyncio.to_thread(pool.close)

    service.background.append(image_workers)
    rules = RulesCache(service.sessions)
    scheme1 = Scheme1Stories(service.sessions, settings.near_duplicate_v1_days)
    service.consume(Ingested(media, settings, rules, scheme1).subscription())
    return service.create_app(
        title="Cổng TTĐT — Normalize",
        description=(
            "Repairs markup, Vietnamese encodings and images, maps categories to sections, "
            "links near-duplicates; emits article.normalized."
        ),
        routers=[admin_router(settings, rules), renditions_router(media)],
    )


def main() -> None:
    settings = Settings()
    serve(create_app(settings), settings)


if __name__ == "__main__":
    main()
