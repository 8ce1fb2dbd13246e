"""Wires the moderation service: settings, database, Kafka subscribers, HTTP routes."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from portal_contracts.articles import ArticleNormalizedEvent
from portal_contracts.topics import ARTICLE_NORMALIZED, QUESTION_SUBMITTED
from portal_moderation.api import admin_router, auth_router, items_router
from portal_moderation.db import outbox
from portal_moderation.domain import PRODUCER
from portal_moderation.handlers import NormalizedHandler, QuestionsHandler
from portal_moderation.limits import BodyLimit
from portal_moderation.passwords import Passwords
from portal_moderation.services import Accounts, ReviewDesk
from portal_moderation.settings import Settings
from portal_runtime.kafka import subscribe_events
from portal_runtime.service import Service

MIGRATIONS = Path(__file__).parent / "migrations"
MAX_BODY_BYTES = 64 * 1024


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    service = Service(
        settings,
        migrations_dir=MIGRATIONS,
        outbox=outbox,
        uses_object_store=False,
        uses_opensearch=False,
    )
    desk = ReviewDesk(service.sessions)
    accounts = Accounts(
        service.sessions,
        Passwords(),
        session_ttl=timedelta(hours=settings.session_ttl_hours),
        max_failures=settings.login_max_failures,
        lockout=timedelta(minutes=settings.login_lockout_minutes),
    )

    subscribe_events(
        service.broker,
        ARTICLE_NORMALIZED,
        group="moderation",
        producer=PRODUCER,
        model=ArticleNormalizedEvent,
        handler=NormalizedHandler(desk),
    )
    subscribe_events(
        service.broker,
        QUESTION_SUBMITTED,
        group="moderation",
        producer=PRODUCER,
        model=QUESTION_SUBMITTED.model,
        handler=QuestionsHandler(service.sessions),
    )
    app = service.create_app(
        title="Cổng TTĐT — Moderation",
        description=(
            "Editors' review desk and moderation of public submissions; emits article.reviewed "
            "and question.answered."
        ),
        routers=[
            admin_router(settings, accounts),
            auth_router(accounts),
            items_router(accounts, desk),
        ],
    )
    app.add_middleware(BodyLimit, max_bytes=MAX_BODY_BYTES)
    return app


def main() -> None:
    settings = Settings()
    uvicorn.run(
        create_app(settings),
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,
        proxy_headers=True,
    )


if __name__ == "__main__":
    main()
