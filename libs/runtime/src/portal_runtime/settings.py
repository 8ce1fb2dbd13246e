"""Settings every service reads from its environment (the same names locally and in compose).

Each service subclasses ``ServiceSettings`` to add its own settings and default port. Secrets have
no usable default outside the local stack: the launcher and docker-compose pass them in.
"""

from __future__ import annotations

import os
import socket
from typing import Literal, Self

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from portal_runtime.ratelimit import parse_rules

# PostgreSQL's plan_cache_mode values.
PlanCacheMode = Literal["auto", "force_custom_plan", "force_generic_plan"]


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=None, extra="ignore", case_sensitive=False)

    service_name: str = Field(default="portal", description="Name in traces, logs and Kafka.")
    # Which process of the service this is (several run side by side): the pod name in
    # Kubernetes, `<service>-<n>` on the local stack; empty: `<service>-<host>-<pid>`. It names
    # the process in logs (`instance`), telemetry (`service.instance.id`) and as its Kafka
    # client id, so a consumer group's members say which process holds which partitions.
    service_instance_id: str = ""
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    log_level: str = "INFO"
    log_json: bool = True

    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    # The service's own Kafka principal (kafka_security.py): the broker's ACLs allow it exactly
    # the topics and consumer groups it uses. PLAINTEXT only for a broker without authentication.
    kafka_security_protocol: Literal["PLAINTEXT", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"] = "SCRAM-SHA-512"
    kafka_username: str = ""
    kafka_password: SecretStr = SecretStr("")
    # CA certificates (PEM) that sign the broker's certificate with SASL_SSL; empty: the system's.
    kafka_ssl_ca_file: str = ""
    # Consumer batches (portal_runtime.consumer): a handler gets up to this many records...
    kafka_batch_max_records: int = Field(default=500, ge=1, le=10_000)
    # ... gathered for at most this long after the first one arrived (latency vs batch size).
    kafka_batch_max_wait_ms: int = Field(default=20, ge=0, le=10_000)
    # A batch's slow steps (image fetches, CPU work) run this many at a time, before its
    # transaction.
    kafka_batch_slow_step_concurrency: int = Field(default=8, ge=1, le=256)
    # Processed offsets are committed at most this often (and always before a rebalance).
    # Short: a hop's lag, which paces ingest's bulk lane, counts what it processed but has not
    # committed; at a second per hop that blur was as large as the pacing's target.
    kafka_commit_interval_ms: int = Field(default=200, ge=0, le=60_000)
    # A revoked partition's batch in progress may finish this long before it is abandoned
    # (its offsets then stay uncommitted: the next owner gets it again and the inbox absorbs it).
    kafka_rebalance_drain_s: float = Field(default=10.0, ge=0, le=240)
    # A consumer that does not poll within this (slow steps included) leaves its group.
    kafka_max_poll_interval_ms: int = Field(default=300_000, ge=10_000)
    # Heartbeats tell a consumer that its group rebalances (another instance left or joined):
    # its partitions move within about this long. Under a third of the session timeout (10 s).
    kafka_heartbeat_interval_ms: int = Field(default=1_000, ge=100, le=3_000)
    # How the service's producer compresses its record batches: zstd shrinks a batch of
    # articles about sixfold, for less of Kafka's CPU and disk (docs/pipeline.md, "Event sizes";
    # aiokafka's lz4 is LZ4-HC, much slower).
    kafka_compression_type: Literal["none", "zstd", "lz4", "snappy", "gzip"] = "zstd"
    # Outbox rows one relay round publishes (pipelined) before deleting them in one transaction.
    outbox_relay_batch_size: int = Field(default=200, ge=1, le=10_000)
    # Rows committed by this process reach the relay at once; the table is read this often for
    # the others (another instance's, from before a restart), skipping rows younger than the
    # grace (their own instance is sending them).
    outbox_poll_interval_s: float = Field(default=2.0, gt=0)
    outbox_poll_grace_s: float = Field(default=3.0, ge=0)

    database_url: str = Field(
        default="postgresql+asyncpg://postgres@127.0.0.1:5432/portal",
        description="SQLAlchemy async URL of this service's own database.",
    )
    database_pool_size: int = 10
    # PostgreSQL's choice for prepared statements (each pooled connection prepares its statements
    # once): "auto" plans a statement for its parameters five times, then keeps one generic plan
    # until the tables are next analysed. A service whose lookups are batched (a statement per
    # batch, not per row) is better served by "force_custom_plan": a plan kept from when its
    # tables were small reads them whole once they have grown (on a new database, autovacuum
    # analyses them only minutes later), while planning each batch's statement costs little.
    database_plan_cache_mode: PlanCacheMode = "auto"
    # Upgrade the database when the process starts; false where a deployment migrates once
    # before its rollout (`python -m portal_runtime.migrate <service>`, the Helm chart's Job).
    migrate_on_start: bool = True

    # Only services that store objects need these; their keys are their own (no default: a
    # service that stores objects refuses to start without them).
    s3_endpoint: str = "http://127.0.0.1:8333"
    s3_access_key: str = ""
    s3_secret_key: SecretStr = SecretStr("")
    s3_region: str = "us-east-1"
    s3_bucket: str = "portal-media"

    opensearch_url: str = "http://127.0.0.1:9200"
    # The service's own OpenSearch user when the cluster's security plugin is on; and the CA
    # certificates (PEM) of an https URL (empty: the system's).
    opensearch_username: str = ""
    opensearch_password: SecretStr = SecretStr("")
    opensearch_ca_file: str = ""
    # Per request: a slow cluster fails the call (the consumer retries it later) instead of
    # holding the consumer indefinitely; retries are for refused connections.
    opensearch_timeout_s: float = Field(default=10.0, gt=0)
    opensearch_max_retries: int = Field(default=2, ge=0, le=10)

    # Bearer token of the admin API (sources, keys, reindex); empty disables the admin API.
    admin_token: SecretStr = SecretStr("")

    # OTLP/HTTP endpoint of a collector or trace backend (e.g. http://127.0.0.1:4318); empty = off.
    otel_exporter_otlp_endpoint: str = ""
    # New traces kept (parent-based: a span follows its parent's decision); 1.0 keeps all.
    trace_sample_ratio: float = Field(default=1.0, ge=0.0, le=1.0)
    # A span per SQL statement (off: one span per consumed batch or HTTP request).
    trace_sql_statements: bool = False
    # Links to one trace: a template with {trace_id} (and {article_id}), e.g. the editors' desk
    # journey page, or a Jaeger UI base URL (then <base>/trace/<id>); empty = no links.
    traces_ui_url: str = ""
    # GET /metrics (Prometheus) asks for this bearer token when set; keep it off public ingress.
    metrics_token: SecretStr = SecretStr("")
    # How often the gauges that need I/O (consumer lag, outbox backlog) are read.
    metrics_poll_interval_s: float = Field(default=5.0, gt=0)

    # -- overload protection (portal_runtime.overload) ----------------------------------------
    # Rate limits per client: "N/second|minute|hour|day" rules joined by ';' (moving windows,
    # in this process's memory); empty = no limit. Over a limit: 429 with Retry-After.
    rate_limit_per_ip: str = ""
    # Per bearer token (a partner's API key, an editor's token), kept as a digest.
    rate_limit_per_api_key: str = ""
    # Requests in progress in this instance (until their response starts); beyond it the
    # service answers 503 with Retry-After at once instead of queueing. 0 = no cap.
    max_in_flight_requests: int = Field(default=64, ge=0)
    overload_retry_after_s: int = Field(default=1, ge=1, le=3600)
    # Proxies whose X-Forwarded-For names the client (IPs or CIDRs, comma-separated, "*" for
    # any). Empty: the peer address is the client and X-Forwarded-For is ignored.
    trusted_proxies: str = ""

    # -- graceful shutdown (portal_runtime.serve) ----------------------------------------------
    # After SIGTERM the process keeps serving HTTP this long with /readyz answering 503, so load
    # balancers stop sending it requests before it closes its port; its consumers leave their
    # groups at once. 0 locally; a few seconds behind a load balancer (Kubernetes).
    shutdown_delay_s: float = Field(default=0.0, ge=0, le=120)
    # What is in progress then gets this long to finish (batches, the outbox relay's queue).
    shutdown_drain_s: float = Field(default=15.0, gt=0, le=600)

    @property
    def instance_id(self) -> str:
        return (
            self.service_instance_id
            or f"{self.service_name}-{socket.gethostname().split('.')[0]}-{os.getpid()}"
        )

    @model_validator(mode="after")
    def _kafka_credentials_with_sasl(self) -> Self:
        if self.kafka_security_protocol != "PLAINTEXT" and not (
            self.kafka_username and self.kafka_password.get_secret_value()
        ):
            raise ValueError(
                f"KAFKA_SECURITY_PROTOCOL={self.kafka_security_protocol} needs KAFKA_USERNAME "
                "and KAFKA_PASSWORD"
            )
        return self

    @field_validator("rate_limit_per_ip", "rate_limit_per_api_key")
    @classmethod
    def _valid_rate_rules(cls, value: str) -> str:
        parse_rules(value)  # raises ValueError naming the wrong part
        return value
