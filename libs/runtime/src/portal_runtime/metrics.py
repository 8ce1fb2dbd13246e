"""Metrics: one OpenTelemetry meter provider per process, read two ways.

* a Prometheus scrape endpoint, ``GET /metrics`` on the service's own HTTP port (``service.py``);
* OTLP/HTTP export to ``{OTEL_EXPORTER_OTLP_ENDPOINT}/v1/metrics`` when an endpoint is set.

What every service reports (Prometheus names; labels in brackets):

* ``portal_messages_processed_total`` [topic, consumer_group, outcome=ok|dead_letter]
* ``portal_message_processing_duration_seconds`` histogram [topic, consumer_group, outcome]: the
  time to apply a batch, once per batch (its messages are counted by the counter above)
* ``portal_message_retries_total`` [topic, consumer_group, error_type=transient|error]
* ``portal_dead_letters_total`` [topic, dead_letter_topic, consumer_group, error_type]
* ``portal_kafka_consumer_lag`` [topic, partition, consumer_group]: log end offset minus the
  group's committed offset, i.e. messages not yet processed (polled every few seconds; a batch
  consumer tells it from its own fetches and commits, and the broker is asked only about the
  partitions it cannot tell)
* ``portal_outbox_backlog`` and ``portal_outbox_oldest_age_seconds``: events written but not yet
  relayed to Kafka; ``portal_outbox_relayed_total`` [topic]; ``portal_outbox_dead`` (rows set
  aside as never sendable) and ``portal_outbox_set_aside_total`` [topic, error_type];
  ``portal_outbox_relay_waiting`` [lane]: rows the relay holds to send; ingest's bulk lane adds
  ``portal_relay_bulk_window`` and ``portal_relay_pipeline_in_flight`` (``admission.py``)
* ``portal_http_requests_rejected_total`` [reason=rate_limited|overloaded, scope]: answered 429
  or 503 at once by the overload middleware (``overload.py``)
* ``http_server_request_duration_seconds`` [http_request_method, http_route,
  http_response_status_code] and ``http_server_active_requests`` (FastAPI instrumentation)
* ``messaging_publish_duration_seconds`` (FastStream, the outbox relay's sends)
* ``db_client_*`` (SQLAlchemy connection pool), ``process_*`` and ``python_*`` (the runtime)

Gauges that need I/O (lag, backlog, a service's own counts) cannot be read inside a collection
callback, so ``MetricsPoller`` reads them in the background and the callbacks report the latest
values. A source that fails to answer drops its series rather than report stale numbers.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import weakref
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

from opentelemetry import metrics
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View

from portal_runtime.logs import get_logger
from portal_runtime.telemetry import resource_for

log = get_logger(__name__)

# Seconds: from a fast handler (a few ms) to a slow one held up by a dependency (minutes).
SECONDS_BUCKETS = (
    0.001,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    300.0,
)

# A series' labels, as a hashable tuple of (name, value) pairs.
Labels = tuple[tuple[str, str], ...]
GaugeValues = dict[Labels, float]
# One poll may feed several gauges (one query, several figures): gauge name -> its series.
Poll = Callable[[], Awaitable[Mapping[str, GaugeValues]]]

_provider: MeterProvider | None = None
meter = metrics.get_meter("portal_runtime")  # a proxy until setup_metrics installs the provider

MESSAGES_PROCESSED = meter.create_counter(
    "portal.messages.processed",
    unit="{message}",
    description="Kafka messages a consumer finished with: ok (handled, or ignored as a "
    "duplicate or older revision) or dead_letter (sent to the topic's dead-letter topic).",
)
MESSAGE_RETRIES = meter.create_counter(
    "portal.message.retries",
    unit="{attempt}",
    description="Failed attempts to handle a message that will be tried again: transient "
    "(a dependency is down) or error (a bug; dead-lettered after a few attempts).",
)
PROCESSING_DURATION = meter.create_histogram(
    "portal.message.processing.duration",
    unit="s",
    description="Time to apply a batch of messages, from decoding to commit, retries "
    "included (recorded once per batch for each of its topics and outcomes; "
    "portal.messages.processed counts the messages).",
    explicit_bucket_boundaries_advisory=SECONDS_BUCKETS,
)
DEAD_LETTERS = meter.create_counter(
    "portal.dead_letters",
    unit="{message}",
    description="Messages sent to a dead-letter topic, by original topic and error type.",
)
OUTBOX_RELAYED = meter.create_counter(
    "portal.outbox.relayed",
    unit="{event}",
    description="Events the outbox relay published to Kafka (acknowledged by the broker).",
)
OUTBOX_SET_ASIDE = meter.create_counter(
    "portal.outbox.set_aside",
    unit="{event}",
    description="Outbox rows that can never be sent (too large, refused for good), moved to the "
    "service's outbox_dead table, by topic and error type.",
)

CONSUMER_LAG = "portal.kafka.consumer.lag"
OUTBOX_BACKLOG = "portal.outbox.backlog"
OUTBOX_OLDEST_AGE = "portal.outbox.oldest_age"
OUTBOX_DEAD = "portal.outbox.dead"
OUTBOX_WAITING = "portal.outbox.relay.waiting"


def setup_metrics(service: str, otlp_endpoint: str = "", instance_id: str = "") -> MeterProvider:
    """Create (once per process) and install the meter provider for ``service``.

    The OTLP export interval is the standard ``OTEL_METRIC_EXPORT_INTERVAL`` (ms, default 60 s).
    """
    global _provider
    if _provider is not None:
        return _provider
    from opentelemetry.exporter.prometheus import PrometheusMetricReader

    readers: list[MetricReader] = [PrometheusMetricReader(scope_info_enabled=False)]
    if otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

        readers.append(
            PeriodicExportingMetricReader(
                OTLPMetricExporter(endpoint=f"{otlp_endpoint.rstrip('/')}/v1/metrics")
            )
        )
    seconds = ExplicitBucketHistogramAggregation(SECONDS_BUCKETS)
    provider = MeterProvider(
        resource=resource_for(service, instance_id),
        metric_readers=readers,
        # FastStream's histograms are in seconds but carry no bucket advice.
        views=[View(instrument_name="messaging.*.duration", aggregation=seconds)],
    )
    metrics.set_meter_provider(provider)
    _provider = provider
    return provider


def shutdown_metrics(timeout_s: float = 5.0) -> None:
    # Bounded like shutdown_tracing: the last export is best effort.
    if _provider is not None:
        _provider.force_flush(timeout_millis=int(timeout_s * 1000))


def labels(**values: str | int) -> Labels:
    return tuple(sorted((k, str(v)) for k, v in values.items()))


class _Observed:
    """The latest values of the polled gauges of one poller."""

    def __init__(self) -> None:
        self.values: dict[str, GaugeValues] = {}


# Every live poller (tests build several services in one process); read at collection time.
_live: weakref.WeakSet[_Observed] = weakref.WeakSet()
_gauges: dict[str, Any] = {}


def _observe(name: str) -> Callable[[CallbackOptions], Iterable[Observation]]:
    def callback(_: CallbackOptions) -> Iterable[Observation]:
        out: list[Observation] = []
        for observed in list(_live):
            for series, value in observed.values.get(name, {}).items():
                out.append(Observation(value, dict(series)))
        return out

    return callback


def declare_gauge(name: str, *, unit: str, description: str) -> None:
    """An observable gauge fed by pollers (declared once per process, whatever the pollers)."""
    if name not in _gauges:
        _gauges[name] = meter.create_observable_gauge(
            name, callbacks=[_observe(name)], unit=unit, description=description
        )


declare_gauge(
    CONSUMER_LAG,
    unit="{message}",
    description="Messages on a partition not yet processed by the consumer group "
    "(log end offset minus committed offset).",
)
declare_gauge(
    OUTBOX_BACKLOG,
    unit="{event}",
    description="Events committed to this service's outbox and not yet published to Kafka.",
)
declare_gauge(
    OUTBOX_OLDEST_AGE,
    unit="s",
    description="Age of the oldest event waiting in the outbox (0 when it is empty).",
)
declare_gauge(
    OUTBOX_WAITING,
    unit="{event}",
    description="Outbox rows this process's relay holds to send, per lane (normal, bulk); the "
    "bulk lane waits for room in the pipeline.",
)
declare_gauge(
    OUTBOX_DEAD,
    unit="{event}",
    description="Rows in this service's outbox_dead table: events set aside because they can "
    "never be sent (each one also a dead-letter notice with the reason).",
)


class MetricsPoller:
    """Reads the gauges that need I/O every ``interval_s`` (a background task of the service)."""

    def __init__(
        self,
        interval_s: float = 5.0,
        timeout_s: float = 10.0,
        kafka_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        # Address and credentials of the service's Kafka clients (kafka_security.client_options).
        self.kafka_options = dict(kafka_options or {})
        self.observed = _Observed()
        self.polls: list[tuple[str, Poll]] = []
        self.brokers: list[Any] = []
        self._produced: dict[str, set[str]] = {}  # poll name -> gauges it fed last time
        self._admin: Any = None
        self._admin_lock = asyncio.Lock()
        self._coordinators = GroupCoordinators()
        _live.add(self.observed)

    def add(self, what: str, poll: Poll) -> None:
        """Poll ``poll`` (named ``what`` in logs) for the gauges it returns; declare them first."""
        self.polls.append((what, poll))

    def watch_consumers(self, broker: Any) -> None:
        """Report the consumer lag of every consumer of ``broker``: a service's batch consumers
        (``consumer.Consumers``) or a FastStream Kafka broker's subscribers."""
        if not self.brokers:
            self.add("consumer_lag", self._consumer_lag)
        self.brokers.append(broker)

    async def _admin_client(self) -> Any:
        async with self._admin_lock:  # one client, shared by the consumers' polls
            if self._admin is None:
                from aiokafka.admin import AIOKafkaAdminClient

                # Here, not at the top: every module imports this one, few need Kafka's.
                from portal_runtime.kafka import started

                self._admin = await started(
                    AIOKafkaAdminClient(**self.kafka_options, client_id="portal-metrics")
                )
            return self._admin

    async def _committed(self, group: str, partitions: list[Any]) -> dict[Any, int]:
        # The group's committed offsets through an admin client of its own: asking the
        # consumer itself would queue behind its coordinator (and wait out every rebalance).
        admin = await self._admin_client()
        return await self._coordinators.committed(admin, group, partitions)

    async def _consumer_lag(self) -> dict[str, GaugeValues]:
        # At once: each consumer's end offsets wait behind its own fetch in flight.
        sources: list[tuple[Any, Mapping[Any, int]]] = []
        for broker in self.brokers:
            if hasattr(broker, "lag_sources"):
                sources.extend(broker.lag_sources())
            else:
                sources.extend((c, {}) for c in _consumers(broker))
        values: GaugeValues = {}
        for lags in await asyncio.gather(
            *(consumer_lag(c, self._committed, known) for c, known in sources)
        ):
            values.update(lags)
        return {CONSUMER_LAG: values}

    async def poll_once(self) -> None:
        for what, poll in self.polls:
            try:
                with suppress_instrumentation():  # no trace for every poll
                    async with asyncio.timeout(self.timeout_s):
                        result = await poll()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("metrics_poll_failed", what=what, error=repr(exc))
                # No number is better than a stale one: the series disappear until it answers.
                for name in self._produced.pop(what, set()):
                    self.observed.values.pop(name, None)
                continue
            self._produced[what] = set(result)
            for name, series in result.items():
                self.observed.values[name] = dict(series)

    async def run(self) -> None:
        try:
            while True:
                started = time.monotonic()
                await self.poll_once()
                await asyncio.sleep(max(0.1, self.interval_s - (time.monotonic() - started)))
        finally:
            if self._admin is not None:
                admin, self._admin = self._admin, None
                with contextlib.suppress(Exception):
                    await asyncio.shield(admin.close())

    def close(self) -> None:
        _live.discard(self.observed)


def _consumers(broker: Any) -> Iterable[Any]:
    """The aiokafka consumers of a source (started ones only)."""
    if hasattr(broker, "kafka_consumers"):
        yield from broker.kafka_consumers()
        return
    for subscriber in getattr(broker, "subscribers", ()):
        group = getattr(subscriber, "consumer_subgroup", None) or [
            getattr(subscriber, "consumer", None)
        ]
        for consumer in group:
            if consumer is not None:
                yield consumer


Committed = Callable[[str, list[Any]], Awaitable[dict[Any, int]]]


class GroupCoordinators:
    """Committed offsets of consumer groups through an admin client, each group's coordinator
    found once and kept (aiokafka's admin asks the cluster for it on every call: a second
    request for the broker each time); forgotten when a request fails, found again next time."""

    def __init__(self) -> None:
        self._known: dict[str, int] = {}

    async def committed(self, admin: Any, group: str, partitions: list[Any]) -> dict[Any, int]:
        """The offsets ``group`` committed on ``partitions`` (those it never did are left out)."""
        node = self._known.get(group)
        if node is None:
            node = self._known[group] = await admin.find_coordinator(group)
        try:
            offsets = await admin.list_consumer_group_offsets(
                group, group_coordinator_id=node, partitions=partitions
            )
        except Exception:
            self._known.pop(group, None)  # moved, or the broker went away
            raise
        return {tp: meta.offset for tp, meta in offsets.items() if meta.offset >= 0}


async def consumer_lag(
    consumer: Any, committed: Committed, known: Mapping[Any, int] | None = None
) -> GaugeValues:
    """Lag of each partition assigned to ``consumer``: end offset minus committed offset.

    ``known`` holds the partitions whose lag the consumer knows already (its own fetches and
    commits); the broker is asked about the others only. Before the group's first commit on a
    partition, the consumer starts from the beginning of the log (auto_offset_reset=earliest),
    so the lag is everything still retained.
    """
    group = getattr(consumer, "_group_id", None) or ""
    partitions = sorted(consumer.assignment(), key=lambda tp: (tp.topic, tp.partition))
    if not partitions or not group:
        return {}
    known = known or {}
    asked = [tp for tp in partitions if tp not in known]
    lags = {tp: int(known[tp]) for tp in partitions if tp in known}
    if asked:
        ends = await consumer.end_offsets(asked)
        done = await committed(group, asked)
        missing = [tp for tp in asked if tp not in done]
        starts = await consumer.beginning_offsets(missing) if missing else {}
        for tp in asked:
            lags[tp] = max(0, int(ends[tp]) - int(done.get(tp, starts.get(tp, 0))))
    return {
        labels(topic=tp.topic, partition=tp.partition, consumer_group=group): float(lags[tp])
        for tp in partitions
    }


class OutboxFigures(Protocol):
    @property
    def waiting(self) -> int: ...
    @property
    def oldest(self) -> datetime | None: ...
    @property
    def set_aside(self) -> int: ...


def outbox_poll(stats: Callable[[], Awaitable[OutboxFigures]]) -> Poll:
    """Backlog gauges from an outbox's figures (rows waiting, oldest, rows set aside)."""

    async def poll() -> dict[str, GaugeValues]:
        figures = await stats()
        oldest = figures.oldest
        age = 0.0 if oldest is None else max(0.0, (datetime.now(UTC) - oldest).total_seconds())
        return {
            OUTBOX_BACKLOG: {(): float(figures.waiting)},
            OUTBOX_OLDEST_AGE: {(): age},
            OUTBOX_DEAD: {(): float(figures.set_aside)},
        }

    return poll


async def relay_gauges(outbox: Any) -> dict[str, GaugeValues]:
    """What the outbox relay holds to send, per lane (an ``Outbox``; read from memory)."""
    return {
        OUTBOX_WAITING: {
            labels(lane=lane.name.lower()): float(n) for lane, n in outbox.queue.waiting().items()
        }
    }
