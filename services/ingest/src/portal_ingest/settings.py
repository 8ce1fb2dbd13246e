"""Settings of the ingest service (environment variables, same names in docker-compose)."""

from __future__ import annotations

from pydantic import Field

from portal_runtime.settings import ServiceSettings

MIB = 1024 * 1024


class Settings(ServiceSettings):
    service_name: str = "ingest"
    http_port: int = 8001
    database_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/ingest"

    s3_raw_bucket: str = Field(
        default="portal-raw",
        description="Bucket where every accepted partner payload is archived exactly as received.",
    )
    kafka_partner_bootstrap_servers: str = Field(
        default="127.0.0.1:9094",
        description="The SASL/SCRAM listener partners connect to (handed out with credentials).",
    )

    # A partner request body (or Kafka message value) larger than this is refused (413).
    max_body_bytes: int = Field(default=2 * MIB, ge=1024)

    # Partner Kafka intake: one topic per agency, consumed by pattern.
    partner_consumer_group: str = "ingest-partners"
    # Low so that a topic provisioned after start is consumed within seconds.
    partner_metadata_max_age_ms: int = Field(default=5000, ge=500)
    partner_topic_partitions: int = Field(default=3, ge=1)
    partner_topic_retention_ms: int = 7 * 24 * 3600 * 1000
    # -1: the cluster's default replication factor (1 locally, 3 in production).
    partner_topic_replication_factor: int = -1
    kafka_admin_timeout_ms: int = 15000

    # Page size bounds of the partner listing endpoints.
    page_size_default: int = 50
    page_size_max: int = 200
