"""Wires the ingest service: settings, database, raw archive, Kafka consumers, HTTP routes."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from fastapi import APIRouter, FastAPI

from portal_ingest import admin_api, desk_api, partner_api, partner_batch_api
from portal_ingest.api import VALIDATION, install_error_handlers
from portal_ingest.db import outbox
from portal_ingest.deps import ApiDeps, key_grants
from portal_ingest.fairness import BurstDetector
from portal_ingest.handlers import following_subscription, partner_subscription
from portal_ingest.intake_groups import PushGroups
from portal_ingest.intake_usecases import Ingestor
from portal_ingest.journey import install_journey
from portal_ingest.kafka_admin import PartnerKafkaProvisioner
from portal_ingest.pull.app import PullIntegration
from portal_ingest.settings import Settings
from portal_ingest.usecases import Admin, DeskImages, StatusTracker
from portal_runtime.admission import AdmissionWindow, Hop, PipelineGate
from portal_runtime.consumer import ConsumerConfig
from portal_runtime.kafka_security import client_options
from portal_runtime.serve import serve
from portal_runtime.service import Service
from portal_runtime.storage import ObjectStore

MIGRATIONS = Path(__file__).parent / "migrations"

DESCRIPTION = (
    "The partner agencies' front door: push articles with an API key (REST) or on the "
    "agency's own Kafka topic (SASL_SSL, SCRAM), follow each item's status, see refused "
    "messages. Operators manage sources, API keys and Kafka credentials (admin API). "
    "Emits article.ingested."
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
    # Ingest's bucket is the raw archive; the service runtime creates it at start and checks it.
    raw_store = ObjectStore(settings, bucket=settings.s3_raw_bucket)
    service.store = raw_store
    service.checks["object_store"] = raw_store.ping

    # Fairness between agencies: a backfill or a burst takes the bulk lane.
    lanes = BurstDetector(settings.burst_items, settings.burst_window_s)
    _admit_bulk_lane(settings, service)
    ingestor = Ingestor(
        service.sessions,
        raw_store,
        outbox,
        lanes,
        archive_concurrency=settings.raw_archive_concurrency,
        max_pack_bytes=settings.raw_pack_max_bytes,
    )
    # Partner status and the article journey: one consumer of the article topics.
    service.consume(following_subscription(StatusTracker()), following_config(settings))
    _consume_partner_topics(settings, service, ingestor)

    # Feeds and sitemaps of partner sites that cannot push: the same Ingestor, channel=feed.
    pull = PullIntegration(settings, service, ingestor)

    app = service.create_app(
        title="Cổng TTĐT — Ingest",
        description=DESCRIPTION,
        routers=[
            _body_limited(settings.max_body_bytes, partner_api.router, admin_api.router),
            _body_limited(settings.batch_max_bytes, partner_batch_api.router),
            pull.router(),
            # The desk channel: agencies writing in moderation's desk, and their images.
            desk_api.router,
            desk_api.media_router,
        ],
        validation=VALIDATION,
    )
    # What the routes get (deps.py).
    grants = key_grants(service.sessions, settings.api_key_cache_s)
    app.state.api = ApiDeps(
        settings=settings,
        sessions=service.sessions,
        ingestor=ingestor,
        pushes=PushGroups(
            ingestor,
            max_items=settings.push_group_max_items,
            max_wait_s=settings.push_group_max_wait_ms / 1000,
            in_flight=settings.push_group_in_flight,
        ),
        admin=Admin(settings, service.sessions, PartnerKafkaProvisioner(settings), grants),
        desk_images=DeskImages(settings, service.sessions, raw_store),
        grants=grants,
        charge_api_key=service.charge_api_key,
    )
    install_error_handlers(app, settings)
    pull.install(app)
    # SREs: each article's journey (admin API), partner topics' consumer lag, review backlog.
    install_journey(service, app)
    return app


def _admit_bulk_lane(settings: Settings, service: Service) -> None:
    """The relay lets the bulk lane into the pipeline only as fast as the pipeline drains
    (docs/pipeline.md)."""
    gate = PipelineGate(
        client_options(settings),
        [Hop.parse(h) for h in settings.bulk_lane_hops],
        AdmissionWindow(
            target_delay_s=settings.bulk_lane_target_delay_s,
            min_window=settings.bulk_lane_min_window,
            max_window=settings.bulk_lane_max_window,
        ),
        interval_s=settings.bulk_lane_measure_interval_s,
        idle_interval_s=settings.bulk_lane_idle_measure_interval_s,
    )
    service.relay_admission = gate
    service.background.append(gate.run)
    service.metrics.add("bulk_lane", gate.gauges)


def following_config(settings: Settings) -> ConsumerConfig:
    """The consumers that follow the pipeline (partner status, journey): larger batches."""
    return replace(
        ConsumerConfig.from_settings(settings),
        max_wait_s=settings.follow_batch_max_wait_ms / 1000,
    )


def _consume_partner_topics(settings: Settings, service: Service, ingestor: Ingestor) -> None:
    """Partner topics: a consumer of its own (client id ingest-partners), whose short metadata
    refresh picks up topics provisioned after start; readiness waits for it."""
    config = replace(
        ConsumerConfig.from_settings(settings),
        client_id=f"{settings.service_name}-partners",
        max_wait_s=settings.partner_batch_max_wait_ms / 1000,
    )
    partners = service.consume(partner_subscription(settings, ingestor), config)

    async def partner_intake_ready() -> None:
        if not partners.started.is_set():
            raise ConnectionError("the partner topics consumer is not connected")

    service.checks["partner_intake"] = partner_intake_ready


def _body_limited(max_bytes: int, *routers: APIRouter) -> APIRouter:
    """``routers`` with a request body limit (also bounds chunked bodies: Starlette answers
    413)."""
    limited = APIRouter(max_body_size=max_bytes)
    for router in routers:
        limited.include_router(router)
    return limited


def main() -> None:
    settings = Settings()
    serve(create_app(settings), settings)


if __name__ == "__main__":
    main()
