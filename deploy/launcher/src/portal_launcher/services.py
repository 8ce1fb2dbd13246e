"""The portal's services as processes of the local stack, wired to its components: the six
backends, the public website, and the edge purger (publishing's second process, in front of the
edge cache).

The environment variable names are the services' settings (portal_runtime.settings), the same
names docker-compose.yml uses.
"""

from __future__ import annotations

import json
import os
import secrets
import sys

import httpx

from portal_launcher.components.jaeger import JaegerComponent
from portal_launcher.process import Component
from portal_launcher.settings import StackSettings

# The services that own a database and speak Kafka.
BACKENDS: tuple[str, ...] = (
    "ingest",
    "normalize",
    "moderation",
    "publishing",
    "engagement",
    "search",
)
# The public website: no database, no Kafka; it reads publishing, search and engagement.
WEBSITE = "web"
SERVICES: tuple[str, ...] = (*BACKENDS, WEBSITE)
# Publishing's purger of the edge cache: a process of its own (publishing's database, for its
# dead letters), no public API.
PURGER = "edge-purger"
# Every process `portal services up` starts.
PROCESSES: tuple[str, ...] = (*SERVICES, PURGER)


# The stack's generated secrets: the services' admin API token, the edge cache's purge token,
# the website's CSRF secret.
SECRET_NAMES = ("admin_token", "edge_purge_token", "web_csrf_secret")


def stack_secrets(settings: StackSettings) -> dict[str, str]:
    """Secrets of this local stack, generated once into its (git-ignored) data folder."""
    path = settings.data_dir / "secrets.json"
    data: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    missing = [name for name in SECRET_NAMES if not data.get(name)]
    if not missing:
        return data
    for name in missing:  # a data folder from before a secret existed gets it now
        data[name] = secrets.token_urlsafe(32)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f)
    path.chmod(0o600)
    return data


def service_port(settings: StackSettings, name: str) -> int:
    port: int = getattr(settings, f"{name}_port")
    return port


def service_environment(settings: StackSettings, name: str) -> dict[str, str]:
    """Settings of one service on this stack, as environment variables."""
    env = (
        _website_environment(settings) if name == WEBSITE else _backend_environment(settings, name)
    )
    return _observed_and_overridden(settings, name, env)


def purger_environment(settings: StackSettings) -> dict[str, str]:
    """Settings of the edge purger (portal_publishing.purger) on this stack."""
    env = {
        "SERVICE_NAME": PURGER,
        "HTTP_HOST": settings.host,
        "HTTP_PORT": str(settings.edge_purger_port),
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap,
        # Publishing's database: the outbox of the purger's dead letters.
        "DATABASE_URL": settings.database_url("publishing"),
        "LOG_LEVEL": os.environ.get("LOG_LEVEL", "INFO"),
        "EDGE_PURGE_URLS": settings.edge_url,
        "EDGE_PURGE_TOKEN": stack_secrets(settings)["edge_purge_token"],
    }
    return _observed_and_overridden(settings, PURGER, env)


def _observed_and_overridden(
    settings: StackSettings, name: str, env: dict[str, str]
) -> dict[str, str]:
    # Traces and metrics go to the stack's Jaeger while it runs; an explicit endpoint (a test's
    # own receiver, a collector) wins.
    otlp = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    if not otlp and JaegerComponent(settings).is_running():
        otlp = settings.jaeger_otlp_endpoint
    if otlp:
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = otlp
    # Each process's own extra settings can be passed as PORTAL_<SERVICE>_<NAME> (for the
    # purger, PORTAL_EDGE_PURGER_<NAME>).
    prefix = f"PORTAL_{name.upper().replace('-', '_')}_"
    for key, value in os.environ.items():
        if key.startswith(prefix):
            env[key[len(prefix) :]] = value
    return env


def _common_environment(settings: StackSettings, name: str) -> dict[str, str]:
    return {
        "SERVICE_NAME": name,
        "HTTP_HOST": settings.host,
        "HTTP_PORT": str(service_port(settings, name)),
        "LOG_LEVEL": os.environ.get("LOG_LEVEL", "INFO"),
        # Loopback is this stack's only proxy: local tests and benchmarks act as many readers
        # by sending X-Forwarded-For (and the website and the edge forward each reader's
        # address). Deployments list their real proxies (default: none).
        "TRUSTED_PROXIES": "127.0.0.1",
    }


def _website_environment(settings: StackSettings) -> dict[str, str]:
    def url(service: str) -> str:
        return f"http://{settings.host}:{service_port(settings, service)}"

    return {
        **_common_environment(settings, WEBSITE),
        "PUBLISHING_URL": url("publishing"),
        "SEARCH_URL": url("search"),
        "ENGAGEMENT_URL": url("engagement"),
        # Readers come in through the edge: the website's links and canonical URLs point at it.
        "PUBLIC_BASE_URL": settings.edge_url,
        "CSRF_SECRET": stack_secrets(settings)["web_csrf_secret"],
    }


def _backend_environment(settings: StackSettings, name: str) -> dict[str, str]:
    env = {
        **_common_environment(settings, name),
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap,
        "DATABASE_URL": settings.database_url(name),
        "S3_ENDPOINT": settings.s3_endpoint,
        "S3_ACCESS_KEY": settings.s3_access_key,
        "S3_SECRET_KEY": settings.s3_secret_key,
        "S3_BUCKET": settings.s3_bucket,
        "OPENSEARCH_URL": settings.opensearch_url,
        "ADMIN_TOKEN": stack_secrets(settings)["admin_token"],
        # Links to traces (the article journey): the desk's journey page draws the trace.
        "TRACES_UI_URL": (
            f"http://{settings.host}:{settings.moderation_port}"
            "/desk/journey/{article_id}#trace-{trace_id}"
        ),
    }
    env.update(_service_specific(settings, name))
    return env


def _service_specific(settings: StackSettings, name: str) -> dict[str, str]:
    if name == "ingest":
        return {
            "S3_RAW_BUCKET": settings.s3_raw_bucket,
            "KAFKA_PARTNER_BOOTSTRAP_SERVERS": settings.kafka_sasl_bootstrap,
        }
    if name == "moderation":
        # The desk calls ingest's admin API (keys, Kafka credentials) and links to public pages.
        return {
            "INGEST_URL": f"http://{settings.host}:{settings.ingest_port}",
            "PUBLISHING_URL": f"http://{settings.host}:{settings.publishing_port}",
            # The article journey page reads traces from Jaeger's query API (when it runs).
            "JAEGER_QUERY_URL": settings.jaeger_ui_url,
        }
    if name == "publishing":
        return {
            # Links in feeds and sitemaps point at the edge, the readers' entry point.
            "PUBLIC_BASE_URL": settings.edge_url,
            # Image renditions are made by normalize on their first request.
            "NORMALIZE_URL": f"http://{settings.host}:{settings.normalize_port}",
        }
    return {}


class ServiceProcess(Component):
    def __init__(self, settings: StackSettings, service: str) -> None:
        super().__init__(settings)
        self.service = service
        self.name = f"service-{service}"

    def command(self) -> list[str]:
        return [sys.executable, "-m", f"portal_{self.service}"]

    def environment(self) -> dict[str, str]:
        return {**os.environ, **service_environment(self.settings, self.service)}

    def endpoint(self) -> str:
        return f"http://{self.settings.host}:{service_port(self.settings, self.service)}"

    def probe(self) -> bool:
        return httpx.get(f"{self.endpoint()}/readyz", timeout=3.0).status_code == 200

    def readiness(self) -> str:
        try:
            resp = httpx.get(f"{self.endpoint()}/readyz", timeout=3.0)
        except httpx.HTTPError as exc:
            return f"not answering ({type(exc).__name__})"
        if resp.status_code == 200:
            return "ready"
        failing = [k for k, v in resp.json().get("checks", {}).items() if not v.get("ok")]
        return f"unavailable: {', '.join(failing)}"

    def version(self) -> str:
        return "0.1.0"


class EdgePurgerProcess(ServiceProcess):
    """Publishing's edge purger: `python -m portal_publishing.purger`."""

    def __init__(self, settings: StackSettings) -> None:
        super().__init__(settings, PURGER)

    def command(self) -> list[str]:
        return [sys.executable, "-m", "portal_publishing.purger"]

    def environment(self) -> dict[str, str]:
        return {**os.environ, **purger_environment(self.settings)}

    def endpoint(self) -> str:
        return f"http://{self.settings.host}:{self.settings.edge_purger_port}"


def process(settings: StackSettings, name: str) -> ServiceProcess:
    """The process of one of PROCESSES."""
    return EdgePurgerProcess(settings) if name == PURGER else ServiceProcess(settings, name)
