"""Wires the moderation service: settings, database, Kafka subscribers, HTTP routes."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from portal_contracts.articles import ArticleIngestedEvent, ArticleNormalizedEvent
from portal_contracts.topics import ARTICLE_INGESTED, ARTICLE_NORMALIZED
from portal_moderation.api import admin_router, auth_router, items_router
from portal_moderation.db import outbox
from portal_moderation.desk import install_desk
from portal_moderation.desk.auth import DeskAuth
from portal_moderation.desk.dashboard_figures import DashboardFigures
from portal_moderation.desk.deps import DeskDeps
from portal_moderation.desk.templating import Templates
from portal_moderation.domain import PRODUCER
from portal_moderation.handlers import (
    NormalizedHandler,
    OriginalsHandler,
    subscribe_dead_letters,
)
from portal_moderation.jaeger import JaegerQuery
from portal_moderation.passwords import Passwords
from portal_moderation.peers import IngestAdmin, SiteDirectory
from portal_moderation.settings import Settings
from portal_moderation.submissions.api import submissions_router
from portal_moderation.submissions.usecases import SubmissionsDesk
from portal_moderation.submissions_handlers import subscribe_submissions
from portal_moderation.usecases import Accounts, ReviewDesk, SourcesDesk
from portal_runtime.bodylimit import BodyLimit
from portal_runtime.kafka import subscribe_events
from portal_runtime.problems import document_body_limit
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
    # The editors' desk: originals as received, and the pipeline's dead letters (health).
    subscribe_events(
        service.broker,
        ARTICLE_INGESTED,
        group="moderation",
        producer=PRODUCER,
        model=ArticleIngestedEvent,
        handler=OriginalsHandler(desk),
    )
    subscribe_dead_letters(service.broker, service.sessions)
    # --- submissions desk (issue 6): questions, dialogue questions, feedback, forum, comments
    submissions = SubmissionsDesk(service.sessions)
    subscribe_submissions(service.broker, submissions)
    # --- end of the submissions desk wiring
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
            submissions_router(accounts, submissions),  # issue 6: the submissions desk
        ],
    )
    app.add_middleware(BodyLimit, max_bytes=MAX_BODY_BYTES)
    document_body_limit(app, MAX_BODY_BYTES)

    # The editors' web desk (/desk) on the same use cases as the API.
    ingest = IngestAdmin(
        settings.ingest_url,
        settings.admin_token.get_secret_value(),
        timeout_s=settings.peer_timeout_s,
        tracer=service.tracer_provider,
    )
    sites = SiteDirectory(settings.publishing_url, tracer=service.tracer_provider)
    jaeger = JaegerQuery(settings.jaeger_query_url, timeout_s=settings.jaeger_timeout_s)
    auth = DeskAuth(
        accounts,
        cookie_secure=settings.cookie_secure,
        max_age_s=int(settings.session_ttl_hours * 3600),
    )
    desk_deps = DeskDeps(
        desk=desk,
        accounts=accounts,
        auth=auth,
        templates=Templates(auth),
        sites=sites,
        sources=SourcesDesk(service.sessions, ingest),
        submissions=submissions,
        jaeger=jaeger,
        figures=DashboardFigures(service.sessions),
        claim_ttl=timedelta(minutes=settings.claim_minutes),
    )
    install_desk(app, desk_deps)

    async def close_peers_at_shutdown() -> None:
        try:
            await asyncio.Event().wait()  # runs for the app's life; cancelled at shutdown
        finally:
            await ingest.close()
            await sites.close()
            await jaeger.close()

    service.background.append(close_peers_at_shutdown)
    return app


def main() -> None:
    settings = Settings()
    uvicorn.run(
        create_app(settings),
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,
        proxy_headers=False,  # X-Forwarded-For only from TRUSTED_PROXIES (Service.create_app)
    )


if __name__ == "__main__":
    main()
