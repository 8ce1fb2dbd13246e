"""Wires the moderation service: settings, database, Kafka subscribers, HTTP routes, the desk."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

from fastapi import FastAPI, Request
from starlette.responses import JSONResponse, Response

from portal_moderation import api
from portal_moderation.compose.usecases import Composer
from portal_moderation.db import outbox
from portal_moderation.desk import install_desk
from portal_moderation.desk.auth import DeskAuth
from portal_moderation.desk.compose import COMPOSE_PREFIX
from portal_moderation.desk.dashboard_figures import DashboardFigures
from portal_moderation.desk.deps import DeskDeps
from portal_moderation.desk.templating import Templates
from portal_moderation.domain import SignInLimits
from portal_moderation.handlers import dead_letter_subscription, moderation_subscription
from portal_moderation.jaeger import JaegerQuery
from portal_moderation.passwords import HashingBusy, Passwords
from portal_moderation.peers import IngestAdmin, SiteDirectory
from portal_moderation.settings import Settings
from portal_moderation.submissions import api as submissions_api
from portal_moderation.submissions.usecases import SubmissionsDesk
from portal_moderation.usecases import Accounts, ReviewDesk, SourcesDesk
from portal_runtime.bodylimit import BodyLimit
from portal_runtime.problems import document_body_limit
from portal_runtime.serve import serve
from portal_runtime.service import Service

MIGRATIONS = Path(__file__).parent / "migrations"
MAX_BODY_BYTES = 64 * 1024
# The compose pages take an article's body, an image or a Word document.
COMPOSE_MAX_BODY_BYTES = 12 * 1024 * 1024


def subscribe(service: Service, desk: ReviewDesk, submissions: SubmissionsDesk) -> None:
    """Normalized articles into the queue, originals as received and the public submissions
    (one consumer), and the pipeline's dead letters for the desk."""
    service.consume(moderation_subscription(desk, submissions))
    service.consume(dead_letter_subscription())


def web_desk(
    settings: Settings,
    service: Service,
    desk: ReviewDesk,
    accounts: Accounts,
    submissions: SubmissionsDesk,
) -> DeskDeps:
    """The web desk's collaborators; its peers (ingest, publishing, Jaeger) are HTTP clients."""
    ingest = IngestAdmin(
        settings.ingest_url,
        settings.ingest_admin_token.get_secret_value(),
        timeout_s=settings.peer_timeout_s,
        tracer=service.tracer_provider,
    )
    auth = DeskAuth(
        accounts,
        cookie_secure=settings.cookie_secure,
        max_age_s=int(settings.session_ttl_hours * 3600),
    )
    return DeskDeps(
        desk=desk,
        accounts=accounts,
        auth=auth,
        templates=Templates(auth),
        sites=SiteDirectory(settings.publishing_url, tracer=service.tracer_provider),
        sources=SourcesDesk(service.sessions, ingest),
        submissions=submissions,
        jaeger=JaegerQuery(settings.jaeger_query_url, timeout_s=settings.jaeger_timeout_s),
        figures=DashboardFigures(service.sessions),
        claim_ttl=timedelta(minutes=settings.claim_minutes),
        composer=Composer(service.sessions, ingest),
    )


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
        Passwords(at_once=settings.password_hashes_at_once, wait_s=settings.password_wait_s),
        session_ttl=timedelta(hours=settings.session_ttl_hours),
        limits=SignInLimits(
            per_name_and_address=settings.login_max_failures,
            per_address=settings.login_max_failures_per_address,
            window=timedelta(minutes=settings.login_lockout_minutes),
        ),
    )
    submissions = SubmissionsDesk(service.sessions)
    subscribe(service, desk, submissions)
    app = service.create_app(
        title="Cổng TTĐT — Moderation",
        description=(
            "Editors' review desk and moderation of public submissions; emits article.reviewed "
            "and question.answered."
        ),
        routers=[api.admin_router, api.auth_router, api.items_router, submissions_api.router],
    )
    app.state.review_desk = desk
    app.state.accounts = accounts
    app.add_exception_handler(HashingBusy, _hashing_busy)
    app.state.submissions_desk = submissions
    app.add_middleware(
        BodyLimit,
        max_bytes=MAX_BODY_BYTES,
        larger={COMPOSE_PREFIX: COMPOSE_MAX_BODY_BYTES},
    )
    document_body_limit(app, MAX_BODY_BYTES)

    # The editors' web desk (/desk) on the same use cases as the API.
    deps = web_desk(settings, service, desk, accounts, submissions)
    install_desk(app, deps)

    async def close_peers_at_shutdown() -> None:
        try:
            await asyncio.Event().wait()  # runs for the app's life; cancelled at shutdown
        finally:
            await deps.sources.ingest.close()
            await deps.sites.close()
            await deps.jaeger.close()

    service.background.append(close_peers_at_shutdown)
    return app


def main() -> None:
    settings = Settings()
    serve(create_app(settings), settings)


if __name__ == "__main__":
    main()


async def _hashing_busy(request: Request, exc: Exception) -> Response:
    """Every password-hashing slot is taken: the client tries again shortly (no unbounded queue)."""
    assert isinstance(exc, HashingBusy)
    return JSONResponse(
        {"detail": str(exc)}, status_code=503, headers={"Retry-After": str(exc.retry_after_s)}
    )
