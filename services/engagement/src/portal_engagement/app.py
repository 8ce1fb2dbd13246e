"""Wires the engagement service: settings, database, Kafka subscribers, HTTP routes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI

from portal_engagement.catalog import apply_catalog, load_catalog
from portal_engagement.comments import api as comments
from portal_engagement.db import outbox
from portal_engagement.dialogues import api as dialogues
from portal_engagement.dialogues.live import LiveHub
from portal_engagement.feedback import api as feedback
from portal_engagement.forum import api as forum
from portal_engagement.handlers import subscriptions
from portal_engagement.qa import api as qa
from portal_engagement.screening import load_word_list
from portal_engagement.settings import Settings
from portal_engagement.submissions import api as submissions
from portal_engagement.submissions.gate import Gate
from portal_engagement.submissions.intake import Intake
from portal_engagement.usecases import Engagement
from portal_runtime.bodylimit import BodyLimit
from portal_runtime.problems import document_body_limit
from portal_runtime.ratelimit import RateLimiter
from portal_runtime.serve import serve
from portal_runtime.service import Service

MIGRATIONS = Path(__file__).parent / "migrations"


def subscribe(service: Service, engagement: Engagement) -> None:
    """Moderation's answers and steps, and which articles are published."""
    for subscription in subscriptions(engagement):
        service.consume(subscription)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    service = Service(
        settings,
        migrations_dir=MIGRATIONS,
        outbox=outbox,
        uses_object_store=False,
        uses_opensearch=False,
    )
    # Data files are read now: a broken word list stops the start, not the first submission.
    words = load_word_list(settings.screening_words_path)
    catalog = load_catalog(settings.catalog_path) if settings.catalog_path else None
    intake = Intake(
        service.sessions, words, client_salt=settings.client_hash_salt.get_secret_value()
    )
    engagement = Engagement()
    hub = LiveHub(
        settings.database_url,
        service.sessions,
        max_streams=settings.max_live_streams,
        max_streams_per_client=settings.max_live_streams_per_ip,
    )
    service.background.append(hub.run)
    gate = Gate(intake, RateLimiter(), settings)

    subscribe(service, engagement)

    app = service.create_app(
        title="Cổng TTĐT — Engagement",
        description=(
            "The Party-people channel: online Q&A, online dialogues (live answers by server-sent "
            "events), feedback on Party building, the forum and comments on articles. Every "
            "submission is screened (Vietnamese with diacritics, lengths, word lists, links, rate "
            "limits, a spam trap), moderated in the editors' desk, and followed by its submitter "
            "through a private status link. Contact details are never published."
        ),
        routers=[
            qa.router,
            dialogues.router,
            feedback.router,
            forum.router,
            comments.router,
            submissions.router,
            submissions.admin_router,
            dialogues.admin_router,
            feedback.admin_router,
        ],
    )
    app.state.engagement = engagement
    app.state.gate = gate
    app.state.live = hub
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    document_body_limit(app, settings.max_body_bytes)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with service.lifespan(app):
            # After the migrations (run by the service's lifespan), before the first request.
            if catalog is not None:
                await apply_catalog(service.sessions, catalog)
            yield

    app.router.lifespan_context = lifespan
    return app


def main() -> None:
    settings = Settings()
    serve(create_app(settings), settings)


if __name__ == "__main__":
    main()
