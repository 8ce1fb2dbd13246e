"""Wires the ingest service: settings, database, raw archive, Kafka consumers, HTTP routes."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from fastapi import FastAPI

from portal_ingest.admin_api import admin_router
from portal_ingest.api import VALIDATION, Context, install_error_handlers
from portal_ingest.db import outbox
from portal_ingest.desk_api import desk_media_router, desk_router
from portal_ingest.fairness import BurstDetector
from portal_ingest.handlers import partner_subscription, status_subscription
from portal_ingest.journey import install_journey
from portal_ingest.kafka_admin import PartnerKafkaProvisioner
from portal_ingest.partner_api import partner_router
from portal_ingest.pull.app import PullIntegration
from portal_ingest.settings import Settings
from portal_ingest.usecases import Admin, DeskImages, Ingestor, StatusTracker
from portal_runtime.admission import AdmissionWindow, Hop, PipelineGate
from portal_runtime.consumer import ConsumerConfig
from portal_runtime.kafka_security import client_options
from portal_runtime.serve import serve
from portal_runtime.service import Service
from portal_runtime.storage import ObjectStore

MIGRATIONS = Path(__file__).parent / "migrations"


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

    # Fairness between agencies: a backfill or a burst takes the bulk lane, which the relay
    # lets into the pipeline only as fast as the pipeline drains (docs/pipeline.md).
    lanes = BurstDetector(settings.burst_items, settings.burst_window_s)
    gate = PipelineGate(
        client_options(settings),
        [Hop.parse(h) for h in settings.bulk_lane_hops],
        AdmissionWindow(
            target_delay_s=settings.bulk_lane_target_delay_s,
            min_window=settings.bulk_lane_min_window,
            max_window=settings.bulk_lane_max_window,
        ),
        interval_s=settings.bulk_lane_measure_interval_s,
    )
    service.relay_admission = gate
    service.background.append(gate.run)
    service.metrics.add("bulk_lane", gate.gauges)
    ingestor = Ingestor(service.sessions, raw_store, outbox, lanes)
    service.consume(status_subscription(StatusTracker()))

    # Partner topics: a consumer of its own (client id ingest-partners), whose short metadata
    # refresh picks up topics provisioned after start.
    config = ConsumerConfig.from_settings(settings)
    partners = service.consume(
        partner_subscription(settings, ingestor),
        replace(config, client_id=f"{settings.service_name}-partners"),
    )

    async def partner_intake_ready() -> None:
        if not partners.started.is_set():
            raise ConnectionError("the partner topics consumer is not connected")

    service.checks["partner_intake"] = partner_intake_ready

    # Feeds and sitemaps of partner sites that cannot push: the same Ingestor, channel=feed.
    pull = PullIntegration(settings, service, ingestor)

    ctx = Context(
        settings=settings,
        sessions=service.sessions,
        ingestor=ingestor,
        admin=Admin(settings, service.sessions, PartnerKafkaProvisioner(settings)),
    )
    desk_images = DeskImages(settings, service.sessions, raw_store)
    app = service.create_app(
        title="Cổng TTĐT — Ingest",
        description=(
            "The partner agencies' front door: push articles with an API key (REST) or on the "
            "agency's own Kafka topic (SASL_SSL, SCRAM), follow each item's status, see refused "
            "messages. Operators manage sources, API keys and Kafka credentials (admin API). "
            "Emits article.ingested."
        ),
        routers=[
            partner_router(ctx),
            admin_router(ctx),
            pull.router(),
            # The desk channel: agencies writing in moderation's desk, and their images.
            desk_router(ctx, desk_images),
            desk_media_router(desk_images),
        ],
        validation=VALIDATION,
    )
    install_error_handlers(app, settings)
    pull.install(app)
    # SREs: each article's journey (admin API), partner topics' consumer lag, review backlog.
    install_journey(service, app)
    return app


def main() -> None:
    settings = Settings()
    serve(create_app(settings), settings)


if __name__ == "__main__":
    main()
