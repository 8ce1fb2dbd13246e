"""Where the local stack lives and which ports it takes.

Every value can be overridden by an environment variable (prefix ``PORTAL_STACK_``), so that
`make run`, `make test` and parallel work on one machine never collide. ``PORTAL_STACK_PORT_BASE``
shifts every port at once (the test stack uses it); a single port variable still wins over it.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[4]

# Offsets from PORTAL_STACK_PORT_BASE, used only when a base is set.
_PORT_OFFSETS: dict[str, int] = {
    "kafka_port": 0,
    "kafka_sasl_port": 1,
    "kafka_controller_port": 2,
    "opensearch_port": 10,
    "opensearch_transport_port": 11,
    "postgres_port": 20,
    "s3_port": 30,
    "seaweed_master_port": 31,
    "seaweed_volume_port": 32,
    "seaweed_filer_port": 33,
    "seaweed_master_grpc_port": 34,
    "seaweed_volume_grpc_port": 35,
    "seaweed_filer_grpc_port": 36,
    "ingest_port": 41,
    "normalize_port": 42,
    "moderation_port": 43,
    "publishing_port": 44,
    "engagement_port": 45,
    "search_port": 46,
    "web_port": 47,
    "jaeger_ui_port": 50,
    "jaeger_otlp_http_port": 51,
    "jaeger_otlp_grpc_port": 52,
    "jaeger_query_grpc_port": 53,
    "jaeger_metrics_port": 54,
    "edge_purger_port": 48,
    "varnish_port": 56,
    "varnish_admin_port": 57,
}


class StackSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PORTAL_STACK_", extra="ignore")

    data_dir: Path = REPO_ROOT / ".stack"
    host: str = "127.0.0.1"
    port_base: int | None = None

    kafka_port: int = 9092  # internal listener (SASL: services' SCRAM users, the operator)
    kafka_sasl_port: int = 9094  # SASL_SSL listener for partner agencies
    kafka_controller_port: int = 9093
    opensearch_port: int = 9200
    opensearch_transport_port: int = 9300
    postgres_port: int = 5432
    s3_port: int = 8333
    seaweed_master_port: int = 9333
    seaweed_volume_port: int = 8080
    seaweed_filer_port: int = 8888
    seaweed_master_grpc_port: int = 19333
    seaweed_volume_grpc_port: int = 18080
    seaweed_filer_grpc_port: int = 18888

    ingest_port: int = 8001
    normalize_port: int = 8002
    moderation_port: int = 8003
    publishing_port: int = 8004
    engagement_port: int = 8005
    search_port: int = 8006
    # The purger of the edge cache (consumes article.published): health and metrics only.
    edge_purger_port: int = 8008

    # The edge cache (Varnish) in front of publishing and the website; readers' entry point.
    varnish_port: int = 6081
    varnish_admin_port: int = 6082  # varnishadm, with the secret in the data folder
    varnish_storage: str = "malloc,256m"
    # host:port of the public website behind the edge; empty: the stack's own (web_port).
    edge_website: str = ""
    # Addresses (IPs or CIDRs, comma-separated) allowed to purge the edge, with its token.
    edge_purgers: str = "127.0.0.1"
    web_port: int = 8007  # the public website (services/web)

    # The trace backend (Jaeger), started only when asked: `--with-traces` or PORTAL_STACK_TRACES=1.
    traces: bool = False
    jaeger_ui_port: int = 16686  # UI and HTTP query API
    jaeger_otlp_http_port: int = 4318
    jaeger_otlp_grpc_port: int = 4317
    jaeger_query_grpc_port: int = 16685
    jaeger_metrics_port: int = 8889  # the OTLP metrics it receives, for Prometheus

    # PostgreSQL's per-statement figures (pg_stat_statements: calls, time, WAL of each query),
    # for a look at what the services ask of the database; off, as hashing every statement
    # costs CPU. `PORTAL_STACK_POSTGRES_STATEMENT_STATS=1`, then `CREATE EXTENSION` once.
    postgres_statement_stats: bool = False

    # Java heap sizes: the machine has 2 cores and 24 GiB; keep the JVMs modest.
    kafka_heap: str = "512m"
    opensearch_heap: str = "768m"

    # Passwords and keys are generated per data folder (portal_launcher.credentials), never set
    # here; production values come from the deployment's secret store.
    s3_bucket: str = "portal-media"
    s3_raw_bucket: str = "portal-raw"
    kafka_admin_user: str = "portal-admin"
    # Extra names (comma-separated) the partner listener's TLS certificate is valid for, e.g. the
    # machine's public name when partners connect from elsewhere.
    kafka_tls_hostnames: str = ""

    ready_timeout_s: float = 180.0

    @model_validator(mode="before")
    @classmethod
    def _apply_port_base(cls, values: dict[str, object]) -> dict[str, object]:
        base = values.get("port_base")
        if base in (None, ""):
            return values
        b = int(str(base))
        for field, offset in _PORT_OFFSETS.items():
            values.setdefault(field, b + offset)
        return values

    @property
    def kafka_bootstrap(self) -> str:
        return f"{self.host}:{self.kafka_port}"

    @property
    def kafka_sasl_bootstrap(self) -> str:
        return f"{self.host}:{self.kafka_sasl_port}"

    @property
    def opensearch_url(self) -> str:
        return f"http://{self.host}:{self.opensearch_port}"

    @property
    def s3_endpoint(self) -> str:
        return f"http://{self.host}:{self.s3_port}"

    @property
    def edge_url(self) -> str:
        return f"http://{self.host}:{self.varnish_port}"

    @property
    def jaeger_ui_url(self) -> str:
        return f"http://{self.host}:{self.jaeger_ui_port}"

    @property
    def jaeger_otlp_endpoint(self) -> str:
        return f"http://{self.host}:{self.jaeger_otlp_http_port}"

    def database_url(self, database: str, role: str, password: str) -> str:
        return f"postgresql+asyncpg://{role}:{password}@{self.host}:{self.postgres_port}/{database}"

    def component_dir(self, name: str) -> Path:
        return self.data_dir / name
