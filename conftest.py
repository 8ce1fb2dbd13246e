"""Shared fixtures. Tests that cross a process boundary use the real local stack (Kafka,
OpenSearch, PostgreSQL, S3).

`make test` brings the stack up on its own ports and folder (PORTAL_STACK_PORT_BASE,
PORTAL_STACK_DATA_DIR) before pytest and down after it. Run alone, `stack_settings` starts the
stack if it does not answer, and stops only what it started.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections.abc import Callable, Iterator
from typing import Any
from uuid import UUID

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from sqlalchemy import text

from portal_contracts.codec import encode
from portal_contracts.envelope import Envelope
from portal_launcher import stack as launcher
from portal_launcher.components.kafka import admin_client_options
from portal_launcher.services import service_environment
from portal_launcher.settings import StackSettings


@pytest.fixture(scope="session")
def stack_settings() -> Iterator[StackSettings]:
    settings = StackSettings()
    comps = launcher.infrastructure(settings)
    started = not all(c.is_running() for c in comps)
    if started:
        launcher.stack_up(settings, say=lambda _: None)
    try:
        yield settings
    finally:
        if started:
            launcher.stack_down(settings, say=lambda _: None)


def kafka_admin(stack: StackSettings) -> dict[str, Any]:
    """Kafka client options of the stack's operator (a super user): tests produce and read any
    topic as the operator, and the services each as their own, restricted principal."""
    return admin_client_options(stack)


def service_env(stack: StackSettings, service: str, **overrides: str) -> dict[str, str]:
    """The environment a service gets on this stack (to build its Settings in-process)."""
    env = service_environment(stack, service)
    env.update(overrides)
    return env


@pytest.fixture
def env_for(stack_settings: StackSettings, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Set a service's environment for the test, so `Settings()` reads this stack."""

    def apply(service: str, **overrides: str) -> dict[str, str]:
        env = service_env(stack_settings, service, **overrides)
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        return env

    return apply


def pytest_report_header(config: pytest.Config) -> str:
    return (
        f"stack: {os.environ.get('PORTAL_STACK_DATA_DIR', '.stack')} "
        f"port base {os.environ.get('PORTAL_STACK_PORT_BASE', 'default')}"
    )


# -- Kafka events in tests: produce events, read a topic by subject ----------------------------

Events = list[dict[str, Any]]


class KafkaEvents:
    def __init__(self, kafka: dict[str, Any]) -> None:
        self.kafka = kafka  # client options (kafka_admin)

    async def produce(self, topic: str, *events: Envelope) -> None:
        producer = AIOKafkaProducer(**self.kafka, acks="all")
        await producer.start()
        try:
            for event in events:
                await producer.send_and_wait(topic, encode(event), key=event.subject.encode())
        finally:
            await producer.stop()

    async def read(
        self,
        topic: str,
        subject: str | None,
        until: Callable[[Events], bool] | None = None,
        timeout_s: float = 60.0,
    ) -> Events:
        """``subject``'s events on ``topic`` (every event if None): until ``until`` holds, or
        all present now."""
        consumer = AIOKafkaConsumer(
            topic,
            **self.kafka,
            group_id=None,  # every partition, from the beginning, nothing committed
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await consumer.start()
        found: Events = []
        end: dict[Any, int] | None = None
        deadline = time.monotonic() + timeout_s
        try:
            while time.monotonic() < deadline:
                batches = await consumer.getmany(timeout_ms=300)
                for records in batches.values():
                    for record in records:
                        if record.value is None:
                            continue
                        if subject is None or record.key == subject.encode():
                            # Shared topics also hold the malformed messages that dead-letter
                            # and fuzz tests send on purpose: only JSON objects are events.
                            with contextlib.suppress(ValueError):
                                event = json.loads(record.value)
                                if isinstance(event, dict):
                                    found.append(event)
                if until is not None:
                    if until(found):
                        return found
                elif consumer.assignment():
                    if end is None:
                        end = await consumer.end_offsets(list(consumer.assignment()))
                    if all(await _positions_reached(consumer, end)):
                        return found
        finally:
            await consumer.stop()
        if until is not None:
            raise AssertionError(f"timed out waiting on {topic} for {subject}; saw {found}")
        return found


async def _positions_reached(consumer: AIOKafkaConsumer, end: dict[Any, int]) -> list[bool]:
    return [await consumer.position(tp) >= offset for tp, offset in end.items()]


@pytest.fixture(scope="session")
def kafka_events(stack_settings: StackSettings) -> KafkaEvents:
    return KafkaEvents(kafka_admin(stack_settings))


# -- a service's inbox: wait until it has handled an event ---------------------------------------


async def wait_processed(app: Any, event_id: UUID, *, timeout_s: float = 60.0) -> None:
    """Wait until the service of ``app`` (an app ``Service.create_app`` made) has recorded
    ``event_id`` in its inbox: the event's effect, or its being ignored as stale, is committed.
    A test shows that a late event changed nothing this way, never by sleeping."""
    query = text("SELECT 1 FROM processed_events WHERE event_id = :id")
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        async with app.state.service.engine.connect() as conn:
            if (await conn.execute(query, {"id": event_id})).first() is not None:
                return
        await asyncio.sleep(0.1)
    raise AssertionError(f"event {event_id} was not processed within {timeout_s:g} s")


@pytest.fixture(scope="session")
def processed() -> Callable[..., Any]:
    """``await processed(app, event_id)``: see ``wait_processed``."""
    return wait_processed
