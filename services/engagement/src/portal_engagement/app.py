"""Wires the engagement service: settings, database, Kafka subscribers, HTTP routes."""

from __future__ import annotations

from pathlib import Path

import uvicorn
from fastapi import FastAPI
from faststream.kafka import KafkaMessage

from portal_contracts.envelope import Envelope
from portal_contracts.topics import QUESTION_ANSWERED
from portal_engagement.db import outbox
from portal_engagement.settings import Settings
from portal_runtime.kafka import subscribe_events
from portal_runtime.service import Service

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

    async def record_event(event: Envelope, msg: KafkaMessage) -> None:
        async with service.sessions.begin() as session:
            await outbox.first_time(session, event.event_id, event.type)

    subscribe_events(
        service.broker,
        QUESTION_ANSWERED,
        group="engagement",
        producer="engagement",
        model=QUESTION_ANSWERED.model,
        handler=record_event,
    )
    return service.create_app(
        title="Cổng TTĐT — Engagement",
        description="Public Q&A, dialogues, feedback, forum and comments; emits question.submitted.",
    )


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
