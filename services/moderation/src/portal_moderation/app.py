"""Wires the moderation service: settings, database, Kafka subscribers, HTTP routes."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

from fastapi import FastAPI

from portal_moderation.api import admin_router, auth_router, items_router
from portal_moderation.db import outbox
from portal_moderation.handlers import dead_letter_subscription, review_subscriptions
from portal_moderation.jaeger import JaegerQuery
from portal_moderation.journey_web import install_journey_desk
from portal_moderation.passwords import Passwords
from portal_moderation.peers import IngestAdmin, SiteDirectory
from portal_moderation.services import Accounts, ReviewDesk, SourcesDesk
from portal_moderation.settings import Settings
from portal_moderation.submissions_api import submissions_router
from portal_moderation.submissions_handlers import submission_subscriptions
from portal_moderation.submissions_service import SubmissionsDesk
from portal_moderation.submissions_web import install_submissions_desk
from portal_moderation.templating import DeskHeaders, Templates
from portal_moderation.web import DeskDeps, install_desk
from portal_moderation.webauth import DeskAuth
from portal_runtime.bodylimit import BodyLimit
from portal_runtime.problems import document_body_limit
from portal_runtime.serve import serve
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

    # Review items, the originals as received, and the pipeline's dead letters (health).
    for subscription in review_subscriptions(desk):
        service.consume(subscription)
    service.consume(dead_letter_subscription())
    # --- submissions desk (issue 6): questions, dialogue questions, feedback, forum, comments
    submissions = SubmissionsDesk(service.sessions)
    for subscription in submission_subscriptions(submissions):
        service.consume(subscription)
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
        settings.ingest_admin_token.get_secret_value(),
        timeout_s=settings.peer_timeout_s,
        tracer=service.tracer_provider,
    )
    sites = SiteDirectory(settings.publishing_url, tracer=service.tracer_provider)
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
        claim_ttl=timedelta(minutes=settings.claim_minutes),
    )
    install_desk(app, desk_deps)
    install_submissions_desk(app, desk_deps, submissions)  # issue 6: /desk/submissions
    # issue 8: one article's journey and its trace (/desk/journey), read from Jaeger server-side
    jaeger = JaegerQuery(settings.jaeger_query_url, timeout_s=settings.jaeger_timeout_s)
    install_journey_desk(app, desk_deps, jaeger)
    app.state.desk = desk_deps  # other desks (submissions) reuse its auth and templates
    app.add_middleware(DeskHeaders)

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
    serve(create_app(settings), settings)


if __name__ == "__main__":
    main()
