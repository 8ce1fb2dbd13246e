"""The one place that wires a service: telemetry, logs, Kafka, database, S3, search, health.

A service builds a ``Service`` with what it uses, declares its consumers with
``service.consume(Subscription(...))`` (``consumer.py``: batches, one transaction each), adds its
routes to the app, and ``create_app`` runs everything in the FastAPI lifespan. ``service.broker``
is the producer side (the outbox relay). A service with neither a database nor Kafka (the public
website, which reads the others' HTTP APIs) builds an ``HttpService``: the same HTTP side
(telemetry, logs, overload protection, problems, health, metrics, the front) without them.

Every HTTP API gets the overload protection of ``overload.py`` (per-client rate limits, a cap on
requests in progress; settings in ``ServiceSettings``), and answers every invalid request with a
422 in one documented shape (``problems.py``).

The app's *front* runs before FastAPI's own stack (its telemetry, error handling, routing): the
trusted proxies' X-Forwarded-For, the overload protection, and, for a service that keeps
rendered responses, the fast lane that answers a GET from them (``httpcache.ServeStored``).
So a refusal or a cache hit costs a few microseconds of Python instead of a routed request with
its span.

Every service answers ``GET /metrics`` (Prometheus) and reports its consumers' lag and its
outbox backlog (``metrics.py``); ``service.metrics.add`` takes a service's own polled gauges and
``service.metrics.watch_consumers`` another broker's consumers.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import prometheus_client
from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from opensearchpy import AsyncOpenSearch
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.sdk.trace import SpanProcessor
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from portal_runtime.admission import Admission
from portal_runtime.consumer import BatchConsumer, ConsumerConfig, Consumers, Subscription
from portal_runtime.db import make_engine, make_sessionmaker, ping, run_migrations_async
from portal_runtime.eventsize import EventTooLarge
from portal_runtime.health import Check, health_router
from portal_runtime.httpcache import Lookup, ServeStored
from portal_runtime.kafka import make_broker
from portal_runtime.kafka_security import client_options
from portal_runtime.logs import configure_logging, get_logger
from portal_runtime.metrics import (
    MetricsPoller,
    outbox_poll,
    relay_gauges,
    setup_metrics,
    shutdown_metrics,
)
from portal_runtime.opensearch import TracedAsyncTransport, opensearch_auth
from portal_runtime.outbox import Outbox
from portal_runtime.overload import Overload, OverloadPolicy, token_digest
from portal_runtime.problems import STANDARD, ValidationShape, install_problem_handlers
from portal_runtime.ratelimit import RateLimiter, Refusal
from portal_runtime.relay import OutboxRelay
from portal_runtime.settings import ServiceSettings
from portal_runtime.storage import ObjectStore
from portal_runtime.telemetry import (
    instrument_http_clients,
    scrub_span,
    setup_tracing,
    shutdown_tracing,
)

log = get_logger(__name__)

Background = Callable[[], Coroutine[Any, Any, None]]
E = TypeVar("E")
FrontLayer = Callable[[ASGIApp], ASGIApp]


class ServiceApp(FastAPI):
    """A FastAPI app with a front: ASGI layers in front of FastAPI's whole stack."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.front_layers: list[FrontLayer] = []  # outermost first
        self._front: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._front is None:
            app: ASGIApp = super().__call__
            for layer in reversed(self.front_layers):
                app = layer(app)
            self._front = app
        await self._front(scope, receive, send)


class HttpService:
    """The HTTP side every service shares. ``checks`` feed /readyz; ``background`` jobs run for
    the app's life; ``start``/``drain``/``stop`` are the hooks a subclass wires its resources in."""

    def __init__(
        self, settings: ServiceSettings, *, span_processors: tuple[SpanProcessor, ...] = ()
    ) -> None:
        self.settings = settings
        instance = settings.instance_id
        configure_logging(settings.service_name, settings.log_level, settings.log_json, instance)
        self.tracer_provider = setup_tracing(
            settings.service_name,
            settings.otel_exporter_otlp_endpoint,
            span_processors,
            sample_ratio=settings.trace_sample_ratio,
            instance_id=instance,
        )
        self.meter_provider = setup_metrics(
            settings.service_name, settings.otel_exporter_otlp_endpoint, instance
        )
        instrument_http_clients()
        self.background: list[Background] = []
        # Counters of the per-client rate limits of this instance's HTTP API (overload.py).
        self.limiter = RateLimiter()
        self.overload = OverloadPolicy.from_settings(settings)
        self.checks: dict[str, Check] = {}
        # Set once shutdown begins (SIGTERM): /readyz answers 503 from then on.
        self.draining = False
        self._leaving: asyncio.Task[None] | None = None

    def charge_api_key(self, token: str | None, cost: int) -> Refusal | None:
        """Count ``cost`` more requests against the API-key rate limit of the bearer ``token``
        (a request carrying many items, a batch push, counts as that many; the overload
        protection counted its first). A refusal counts nothing."""
        rules = self.overload.per_api_key
        if token is None or cost <= 0 or not rules:
            return None
        return self.limiter.hit("api_key", token_digest(token), rules, cost)

    async def start(self) -> None:
        """Before the app serves and its background jobs start."""

    def begin_shutdown(self) -> asyncio.Task[None]:
        """Shutdown begins (SIGTERM; ``serve.py``): readiness fails from now on and ``leave``
        starts at once, while HTTP may still be served a little longer. Idempotent."""
        self.draining = True
        if self._leaving is None:
            self._leaving = asyncio.create_task(self.leave(), name="leave")
        return self._leaving

    async def leave(self) -> None:
        """At the start of shutdown: give up the work this process shares with the other
        instances (consumer groups), so that they take it over at once."""

    async def drain(self) -> None:
        """After HTTP stopped, before the background jobs are cancelled (work in progress
        ends)."""

    async def stop(self) -> None:
        """After the app stopped serving and the background jobs ended."""

    @asynccontextmanager
    async def lifespan(self, app: FastAPI) -> AsyncIterator[None]:
        await self.start()
        tasks = [
            asyncio.create_task(job(), name=f"bg-{i}") for i, job in enumerate(self.background)
        ]
        log.info("service_started", port=self.settings.http_port)
        try:
            yield
        finally:
            started = time.monotonic()
            with contextlib.suppress(Exception):
                await self.begin_shutdown()
            await self.drain()
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            await self.stop()
            log.info("service_stopped", drain_s=round(time.monotonic() - started, 2))
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
        stored_responses: Lookup | None = None,
    ) -> FastAPI:
        """``stored_responses``: the responses this service keeps ready, by request target
        (``httpcache.request_target``); a GET that has one is answered in the front."""
        app = ServiceApp(
            title=title, description=description, version=version, lifespan=self.lifespan
        )
        app.state.service = self
        # Every 422 in one documented shape (problems.py).
        install_problem_handlers(app, validation)
        app.add_exception_handler(EventTooLarge, _event_too_large)
        app.include_router(
            health_router(self.settings.service_name, self.checks, draining=lambda: self.draining)
        )
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
            server_request_hook=scrub_span,
        )
        # Backpressure (rate limits, in-flight cap) sees the client address the proxy headers
        # name, so the proxies' layer runs first; stored responses are served within the limits.
        trusted = self.settings.trusted_proxies.strip()
        if trusted:
            app.front_layers.append(
                lambda inner: ProxyHeadersMiddleware(inner, trusted)  # type: ignore[arg-type,return-value]
            )
        policy = self.overload
        app.front_layers.append(lambda inner: Overload(inner, policy, self.limiter))
        if stored_responses is not None:
            lookup = stored_responses
            app.front_layers.append(lambda inner: ServeStored(inner, lookup))
        return app


class Service(HttpService):
    """A backend: its database, Kafka (batch consumers and the outbox relay), S3, OpenSearch."""

    def __init__(
        self,
        settings: ServiceSettings,
        *,
        migrations_dir: Path | None,
        outbox: Outbox | None = None,
        uses_object_store: bool = False,
        uses_opensearch: bool = False,
        uses_database: bool = True,
        span_processors: tuple[SpanProcessor, ...] = (),
        migrate_on_start: bool = True,
    ) -> None:
        super().__init__(settings, span_processors=span_processors)
        self.broker = make_broker(settings, self.tracer_provider, self.meter_provider)
        self.engine = make_engine(
            settings.database_url,
            settings.database_pool_size,
            trace_statements=settings.trace_sql_statements,
            plan_cache_mode=settings.database_plan_cache_mode,
        )
        self.sessions = make_sessionmaker(self.engine)
        self.consumers = Consumers(ConsumerConfig.from_settings(settings), self.sessions, outbox)
        self.migrations_dir = migrations_dir
        self.migrate_on_start = migrate_on_start and settings.migrate_on_start
        self.outbox = outbox
        self.store = ObjectStore(settings) if uses_object_store else None
        self.opensearch = (
            AsyncOpenSearch(
                hosts=[settings.opensearch_url],
                **opensearch_auth(settings),
                timeout=settings.opensearch_timeout_s,
                max_retries=settings.opensearch_max_retries,
                transport_class=TracedAsyncTransport,
            )
            if uses_opensearch
            else None
        )
        # A process without a database of its own (uses_database=False) keeps an engine that
        # never connects, and its readiness does not depend on PostgreSQL.
        if uses_database:
            self.checks["database"] = lambda: ping(self.engine)
        self.checks["kafka"] = self._ping_kafka
        if self.store is not None:
            self.checks["object_store"] = self.store.ping
        if self.opensearch is not None:
            self.checks["opensearch"] = self._ping_opensearch
        # Pacing of the outbox relay's bulk lane (admission.py); a service may set its own.
        self.relay_admission: Admission | None = None
        self.relay: OutboxRelay | None = None
        if outbox is not None:
            self.background.append(lambda: self._run_relay(outbox))
        self.metrics = MetricsPoller(
            settings.metrics_poll_interval_s, kafka_options=client_options(settings)
        )
        self.metrics.watch_consumers(self.consumers)
        if outbox is not None:
            self.metrics.add("outbox", outbox_poll(lambda: outbox.stats(self.engine)))
            self.metrics.add("relay", lambda: relay_gauges(outbox))
        self.background.append(self.metrics.run)

    def consume(
        self, subscription: Subscription[E], config: ConsumerConfig | None = None
    ) -> BatchConsumer[E]:
        """Run ``subscription`` in this service (started and stopped with it)."""
        return self.consumers.add(subscription, config)

    async def _run_relay(self, outbox: Outbox) -> None:
        self.relay = OutboxRelay(
            outbox,
            self.engine,
            self.broker,
            batch=self.settings.outbox_relay_batch_size,
            producer=self.settings.service_name,
            admission=self.relay_admission,
            poll_interval_s=self.settings.outbox_poll_interval_s,
            poll_grace_s=self.settings.outbox_poll_grace_s,
        )
        await self.relay.run()

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

    async def start(self) -> None:
        if self.migrations_dir is not None and self.migrate_on_start:
            await run_migrations_async(self.migrations_dir, self.settings.database_url)
        if self.store is not None:
            await self.store.ensure_bucket()
        await self.broker.start()
        self.consumers.start()

    async def leave(self) -> None:
        # The batch in progress finishes, its offsets are committed and the consumers leave
        # their groups: their partitions move to the other instances at once.
        started = time.monotonic()
        await self.consumers.stop(timeout_s=self.settings.shutdown_drain_s)
        log.info("consumers_stopped", seconds=round(time.monotonic() - started, 2))

    async def drain(self) -> None:
        await self.consumers.stop(timeout_s=self.settings.shutdown_drain_s)  # if not yet
        # HTTP has stopped: the relay sends what this process committed (its last requests'
        # and batches' events) and stops between two rounds, so no row is left sent but not
        # deleted (another instance would send it again).
        if self.relay is not None:
            flushed = await self.relay.stop(timeout_s=self.settings.shutdown_drain_s)
            log.info("outbox_relay_stopped", flushed=flushed)

    async def stop(self) -> None:
        await self.broker.stop()
        if self.opensearch is not None:
            await self.opensearch.close()
        if self.store is not None:
            await self.store.close()  # intake and consumers have stopped: no write under way
        await self.engine.dispose()
        self.metrics.close()


async def _event_too_large(request: Request, exc: Exception) -> Response:
    # An event the broker would refuse: nothing was stored; the request is what is too large.
    assert isinstance(exc, EventTooLarge)
    return JSONResponse({"detail": exc.reason, "code": "event_too_large"}, status_code=413)


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
