"""The one place that wires a service: telemetry, logs, Kafka, database, S3, search, health.

A service builds a ``Service`` with what it uses, registers its subscribers on ``service.broker``
and its routes on the app, and ``create_app`` runs everything in the FastAPI lifespan.

Every HTTP API gets the overload protection of ``overload.py`` (per-client rate limits, a cap on
requests in progress; settings in ``ServiceSettings``), and answers every invalid request with a
422 in one documented shape (``problems.py``).

Every service answers ``GET /metrics`` (Prometheus) and reports its consumers' lag and its
outbox backlog (``metrics.py``); ``service.metrics.add`` takes a service's own polled gauges and
``service.metrics.watch_consumers`` another broker's consumers.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import prometheus_client
import uvicorn
from fastapi import APIRouter, FastAPI, Request, Response
from opensearchpy import AsyncOpenSearch
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.sdk.trace import SpanProcessor
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from portal_runtime.db import make_engine, make_sessionmaker, ping, run_migrations_async
from portal_runtime.health import Check, health_router
from portal_runtime.kafka import make_broker
from portal_runtime.logs import configure_logging, get_logger
from portal_runtime.metrics import MetricsPoller, outbox_poll, setup_metrics, shutdown_metrics
from portal_runtime.opensearch import TracedAsyncTransport
from portal_runtime.outbox import Outbox
from portal_runtime.overload import Overload, OverloadPolicy
from portal_runtime.problems import STANDARD, ValidationShape, install_problem_handlers
from portal_runtime.ratelimit import RateLimiter
from portal_runtime.settings import ServiceSettings
from portal_runtime.storage import ObjectStore
from portal_runtime.telemetry import instrument_http_clients, setup_tracing, shutdown_tracing

log = get_logger(__name__)

Background = Callable[[], Coroutine[Any, Any, None]]


class Service:
    def __init__(
        self,
        settings: ServiceSettings,
        *,
        migrations_dir: Path | None,
        outbox: Outbox | None = None,
        uses_object_store: bool = False,
        uses_opensearch: bool = False,
        span_processors: tuple[SpanProcessor, ...] = (),
        migrate_on_start: bool = True,
    ) -> None:
        self.settings = settings
        configure_logging(settings.service_name, settings.log_level, settings.log_json)
        self.tracer_provider = setup_tracing(
            settings.service_name, settings.otel_exporter_otlp_endpoint, span_processors
        )
        self.meter_provider = setup_metrics(
            settings.service_name, settings.otel_exporter_otlp_endpoint
        )
        instrument_http_clients()
        self.broker = make_broker(settings, self.tracer_provider, self.meter_provider)
        self.engine = make_engine(settings.database_url, settings.database_pool_size)
        self.sessions = make_sessionmaker(self.engine)
        self.migrations_dir = migrations_dir
        self.migrate_on_start = migrate_on_start
        self.outbox = outbox
        self.store = ObjectStore(settings) if uses_object_store else None
        self.opensearch = (
            AsyncOpenSearch(
                hosts=[settings.opensearch_url],
                timeout=settings.opensearch_timeout_s,
                max_retries=settings.opensearch_max_retries,
                transport_class=TracedAsyncTransport,
            )
            if uses_opensearch
            else None
        )
        self.background: list[Background] = []
        # Counters of the per-client rate limits of this instance's HTTP API (overload.py).
        self.limiter = RateLimiter()
        self.checks: dict[str, Check] = {
            "database": lambda: ping(self.engine),
            "kafka": self._ping_kafka,
        }
        if self.store is not None:
            self.checks["object_store"] = self.store.ping
        if self.opensearch is not None:
            self.checks["opensearch"] = self._ping_opensearch
        if outbox is not None:
            self.background.append(
                lambda: outbox.run_relay(
                    self.engine, self.broker, batch=settings.outbox_relay_batch_size
                )
            )
        self.metrics = MetricsPoller(
            settings.metrics_poll_interval_s, kafka_bootstrap=settings.kafka_bootstrap_servers
        )
        self.metrics.watch_consumers(self.broker)
        if outbox is not None:
            self.metrics.add("outbox", outbox_poll(lambda: outbox.stats(self.engine)))
        self.background.append(self.metrics.run)

    async def _ping_kafka(self) -> None:
        if not await self.broker.ping(timeout=2.0):
            raise ConnectionError(
                f"Kafka at {self.settings.kafka_bootstrap_servers} does not answer"
            )

    async def _ping_opensearch(self) -> None:
        assert self.opensearch is not None
        health = await self.opensearch.cluster.health()
        if health.get("status") not in ("green", "yellow"):
            raise RuntimeError(f"cluster status {health.get('status')}")

    @asynccontextmanager
    async def lifespan(self, app: FastAPI) -> AsyncIterator[None]:
        if self.migrations_dir is not None and self.migrate_on_start:
            await run_migrations_async(self.migrations_dir, self.settings.database_url)
        if self.store is not None:
            await self.store.ensure_bucket()
        await self.broker.start()
        tasks = [
            asyncio.create_task(job(), name=f"bg-{i}") for i, job in enumerate(self.background)
        ]
        log.info("service_started", port=self.settings.http_port)
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            await self.broker.stop()
            if self.opensearch is not None:
                await self.opensearch.close()
            await self.engine.dispose()
            self.metrics.close()
            shutdown_tracing()
            shutdown_metrics()

    def create_app(
        self,
        *,
        title: str,
        description: str,
        routers: Sequence[APIRouter] = (),
        version: str = "0.1.0",
        validation: ValidationShape = STANDARD,
    ) -> FastAPI:
        app = FastAPI(title=title, description=description, version=version, lifespan=self.lifespan)
        app.state.service = self
        # Every 422 in one documented shape (problems.py).
        install_problem_handlers(app, validation)
        app.include_router(health_router(self.settings.service_name, self.checks))
        app.include_router(metrics_router(self.settings))
        for router in routers:
            app.include_router(router)
        FastAPIInstrumentor.instrument_app(
            app,
            tracer_provider=self.tracer_provider,
            meter_provider=self.meter_provider,
            excluded_urls="healthz,readyz,metrics",
            # One server span per request: the per-message "http send"/"http receive" spans
            # doubled the tracing cost of every request and say nothing the server span does not.
            exclude_spans=["receive", "send"],
        )
        # Backpressure (rate limits, in-flight cap) sees the client address the proxy headers
        # name, so the proxies' middleware runs first (the last added is the outermost).
        app.add_middleware(
            Overload, policy=OverloadPolicy.from_settings(self.settings), limiter=self.limiter
        )
        if self.settings.trusted_proxies.strip():
            app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=self.settings.trusted_proxies)
        return app


def metrics_router(settings: ServiceSettings) -> APIRouter:
    router = APIRouter(tags=["health"])
    token = settings.metrics_token.get_secret_value()

    @router.get(
        "/metrics",
        summary="Prometheus metrics of this process",
        response_class=Response,
        responses={
            200: {"content": {prometheus_client.CONTENT_TYPE_LATEST: {}}},
            401: {"description": "METRICS_TOKEN is set and the bearer token does not match"},
        },
    )
    async def metrics(request: Request) -> Response:
        if token and not secrets.compare_digest(
            request.headers.get("authorization", ""), f"Bearer {token}"
        ):
            return Response("metrics need the bearer token (METRICS_TOKEN)\n", status_code=401)
        return Response(
            prometheus_client.generate_latest(prometheus_client.REGISTRY),
            media_type=prometheus_client.CONTENT_TYPE_LATEST,
        )

    return router


def serve(app: FastAPI, settings: ServiceSettings) -> None:
    """Run a service's app on ``HTTP_HOST:HTTP_PORT`` until it is stopped."""
    uvicorn.run(
        app,
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,
        proxy_headers=False,  # X-Forwarded-For only from TRUSTED_PROXIES (Service.create_app)
    )
