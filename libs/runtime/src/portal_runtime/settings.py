"""Settings every service reads from its environment (the same names locally and in compose).

Each service subclasses ``ServiceSettings`` to add its own settings and default port. Secrets have
no usable default outside the local stack: the launcher and docker-compose pass them in.
"""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=None, extra="ignore", case_sensitive=False)

    service_name: str = Field(default="portal", description="Name in traces, logs and Kafka.")
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    log_level: str = "INFO"
    log_json: bool = True

    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    # Consumer tuning, settings so SREs can trade latency for throughput.
    kafka_max_poll_records: int = 100
    # Consumers per subscribed topic in this process (each takes some partitions; order per
    # article is kept because an article's events share a partition).
    kafka_consumer_concurrency: int = 3

    database_url: str = Field(
        default="postgresql+asyncpg://postgres@127.0.0.1:5432/portal",
        description="SQLAlchemy async URL of this service's own database.",
    )
    database_pool_size: int = 10

    s3_endpoint: str = "http://127.0.0.1:8333"
    s3_access_key: str = "portal-local"
    s3_secret_key: SecretStr = SecretStr("portal-local-secret")
    s3_region: str = "us-east-1"
    s3_bucket: str = "portal-media"

    opensearch_url: str = "http://127.0.0.1:9200"

    # Bearer token of the admin API (sources, keys, reindex); empty disables the admin API.
    admin_token: SecretStr = SecretStr("")

    # OTLP/HTTP endpoint of a collector or trace backend (e.g. http://127.0.0.1:4318); empty = off.
    otel_exporter_otlp_endpoint: str = ""
    # Trace UI (Jaeger) base URL for links to one trace, e.g. http://127.0.0.1:16686; empty = none.
    traces_ui_url: str = ""
    # GET /metrics (Prometheus) asks for this bearer token when set; keep it off public ingress.
    metrics_token: SecretStr = SecretStr("")
    # How often the gauges that need I/O (consumer lag, outbox backlog) are read.
    metrics_poll_interval_s: float = Field(default=5.0, gt=0)
