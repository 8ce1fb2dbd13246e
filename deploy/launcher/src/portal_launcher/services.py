"""The portal's services as processes of the local stack, wired to its components: the six
backends, the public website, and the edge purger (publishing's second process, in front of the
edge cache).

The environment variable names are the services' settings (portal_runtime.settings), the same
names docker-compose.yml uses. Each service gets its own credentials and no one else's: its
database role, Kafka user, S3 key (only if it stores objects), admin token.
"""

from __future__ import annotations

import os
import sys

import httpx

from portal_launcher.components.jaeger import JaegerComponent
from portal_launcher.components.kafka import partner_ca_file
from portal_launcher.components.s3 import bucket_grants
from portal_launcher.credentials import (
    admin_token,
    edge_purge_token,
    named_secret,
    service_secrets,
)
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
# Publishing's purger of the edge cache: publishing's second process (its credentials, its
# database for the dead letters), no public API.
PURGER = "edge-purger"
# Every process `portal services up` starts.
PROCESSES: tuple[str, ...] = (*SERVICES, PURGER)
# The Kafka users, each with its own ACLs (the purger signs in as publishing).
KAFKA_PRINCIPALS: tuple[str, ...] = BACKENDS

# Several instances of a process (`portal services up --instances normalize=3`) share its
# settings; instance 1 listens on the process's own port, instance n >= 2 on
# port + INSTANCE_PORT_OFFSET + INSTANCE_PORT_STRIDE * (n - 2): with the default ports normalize's
# instances answer on 8002, 8402, 8412, …; with a port base B, on B+42, B+442, B+452, … (below the
# next stack's B+1000, clear of the component tests' B+100..B+358).
INSTANCE_PORT_OFFSET = 400
INSTANCE_PORT_STRIDE = 10
MAX_INSTANCES = 20


def kafka_environment(settings: StackSettings, name: str) -> dict[str, str]:
    """How the process ``name`` signs in to the stack's Kafka: its own SCRAM user."""
    return {
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap,
        "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "KAFKA_USERNAME": name,
        "KAFKA_PASSWORD": service_secrets(settings, name).kafka_password,
    }


def service_port(settings: StackSettings, name: str, instance: int = 1) -> int:
    """The HTTP port of ``instance`` (1, 2, …) of the process ``name``."""
    port: int = getattr(settings, f"{name.replace('-', '_')}_port")
    if not 1 <= instance <= MAX_INSTANCES:
        raise ValueError(f"instance {instance} of {name}: instances are 1..{MAX_INSTANCES}")
    if instance == 1:
        return port
    return port + INSTANCE_PORT_OFFSET + INSTANCE_PORT_STRIDE * (instance - 2)


def instance_id(name: str, instance: int) -> str:
    """How instance ``instance`` of ``name`` names itself (logs, telemetry, Kafka client id)."""
    return f"{name}-{instance}"


def running_instances(settings: StackSettings, name: str) -> list[int]:
    """Instance 1 and every other instance of ``name`` this data folder has a pid file for."""
    found = {1}
    prefix = f"service-{name}-"
    if settings.data_dir.is_dir():
        for folder in settings.data_dir.glob(f"{prefix}*"):
            number = folder.name[len(prefix) :]
            if number.isdigit() and (folder / "pid").exists():
                found.add(int(number))
    return sorted(found)


def parse_instances(text: str) -> dict[str, int]:
    """``normalize=3,publishing=2`` -> {"normalize": 3, "publishing": 2}; a clear error else."""
    counts: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, number = part.partition("=")
        name = name.strip()
        if not sep or not number.strip().isdigit():
            raise ValueError(f"{part!r}: expected SERVICE=COUNT, e.g. normalize=3")
        if name not in PROCESSES:
            raise ValueError(f"{name!r} is not a service; one of: {', '.join(PROCESSES)}")
        count = int(number)
        if not 1 <= count <= MAX_INSTANCES:
            raise ValueError(f"{name}={count}: between 1 and {MAX_INSTANCES} instances")
        counts[name] = count
    return counts


def service_environment(settings: StackSettings, name: str) -> dict[str, str]:
    """Settings of one service on this stack, as environment variables."""
    env = (
        _website_environment(settings) if name == WEBSITE else _backend_environment(settings, name)
    )
    return _observed_and_overridden(settings, name, env)


def purger_environment(settings: StackSettings) -> dict[str, str]:
    """Settings of the edge purger (portal_publishing.purger) on this stack: publishing's Kafka
    user and database (it is publishing's second process)."""
    publishing = service_secrets(settings, "publishing")
    env = {
        "SERVICE_NAME": PURGER,
        "HTTP_HOST": settings.host,
        "HTTP_PORT": str(settings.edge_purger_port),
        **kafka_environment(settings, "publishing"),
        # Publishing's database: the outbox of the purger's dead letters.
        "DATABASE_URL": settings.database_url(
            "publishing", "publishing", publishing.database_password
        ),
        "LOG_LEVEL": os.environ.get("LOG_LEVEL", "INFO"),
        "EDGE_PURGE_URLS": settings.edge_url,
        "EDGE_PURGE_TOKEN": edge_purge_token(settings),
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
        "CSRF_SECRET": named_secret(settings, WEBSITE, "csrf_secret"),
    }


def _backend_environment(settings: StackSettings, name: str) -> dict[str, str]:
    own = service_secrets(settings, name)
    env = {
        **_common_environment(settings, name),
        **kafka_environment(settings, name),
        "DATABASE_URL": settings.database_url(name, name, own.database_password),
        "ADMIN_TOKEN": own.admin_token,
        # Links to traces (the article journey): the desk's journey page draws the trace.
        "TRACES_UI_URL": (
            f"http://{settings.host}:{settings.moderation_port}"
            "/desk/journey/{article_id}#trace-{trace_id}"
        ),
    }
    if name in bucket_grants(settings):
        env.update(
            S3_ENDPOINT=settings.s3_endpoint,
            S3_ACCESS_KEY=own.s3_access_key,
            S3_SECRET_KEY=own.s3_secret_key,
            S3_BUCKET=settings.s3_bucket,
        )
    env.update(_service_specific(settings, name))
    return env


def _service_specific(settings: StackSettings, name: str) -> dict[str, str]:
    if name == "ingest":
        return {
            "S3_RAW_BUCKET": settings.s3_raw_bucket,
            "KAFKA_PARTNER_BOOTSTRAP_SERVERS": settings.kafka_sasl_bootstrap,
            "KAFKA_PARTNER_CA_FILE": str(partner_ca_file(settings)),
            # Images uploaded in the desk, as normalize fetches them.
            "DESK_MEDIA_BASE_URL": (
                f"http://{settings.host}:{settings.ingest_port}/v1/desk-media/"
            ),
        }
    if name == "normalize":
        # The one internal server normalize may fetch images from: ingest's desk uploads.
        return {"IMAGE_FETCH_ALLOW_HOSTS": f"{settings.host}:{settings.ingest_port}"}
    if name == "moderation":
        # The desk calls ingest's admin API (keys, Kafka credentials) and links to public pages.
        return {
            "INGEST_URL": f"http://{settings.host}:{settings.ingest_port}",
            "INGEST_ADMIN_TOKEN": admin_token(settings, "ingest"),
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
    if name == "search":
        return {"OPENSEARCH_URL": settings.opensearch_url}
    if name == "engagement":
        # Readers' addresses are stored only as salted digests (report de-duplication).
        return {"CLIENT_HASH_SALT": named_secret(settings, name, "client_hash_salt")}
    return {}


class ServiceProcess(Component):
    """Instance ``instance`` of a service: the same settings as the others but its port and its
    instance id. Instance 1 is `service-<name>`, the others `service-<name>-<n>`."""

    def __init__(self, settings: StackSettings, service: str, instance: int = 1) -> None:
        super().__init__(settings)
        self.service = service
        self.instance = instance
        self.name = f"service-{service}" if instance == 1 else f"service-{service}-{instance}"

    @property
    def instance_id(self) -> str:
        return instance_id(self.service, self.instance)

    @property
    def port(self) -> int:
        return service_port(self.settings, self.service, self.instance)

    def command(self) -> list[str]:
        return [sys.executable, "-m", f"portal_{self.service}"]

    def _settings_environment(self) -> dict[str, str]:
        return service_environment(self.settings, self.service)

    def environment(self) -> dict[str, str]:
        return {
            **os.environ,
            **self._settings_environment(),
            "HTTP_PORT": str(self.port),
            "SERVICE_INSTANCE_ID": self.instance_id,
        }

    def endpoint(self) -> str:
        return f"http://{self.settings.host}:{self.port}"

    def probe(self) -> bool:
        return httpx.get(f"{self.endpoint()}/readyz", timeout=3.0).status_code == 200

    def readiness(self) -> str:
        try:
            resp = httpx.get(f"{self.endpoint()}/readyz", timeout=3.0)
        except httpx.HTTPError as exc:
            return f"not answering ({type(exc).__name__})"
        if resp.status_code == 200:
            return "ready"
        if resp.json().get("status") == "draining":
            return "draining (shutting down)"
        failing = [k for k, v in resp.json().get("checks", {}).items() if not v.get("ok")]
        return f"unavailable: {', '.join(failing)}"

    def version(self) -> str:
        return "0.1.0"


class EdgePurgerProcess(ServiceProcess):
    """Publishing's edge purger: `python -m portal_publishing.purger`."""

    def __init__(self, settings: StackSettings, instance: int = 1) -> None:
        super().__init__(settings, PURGER, instance)

    def command(self) -> list[str]:
        return [sys.executable, "-m", "portal_publishing.purger"]

    def _settings_environment(self) -> dict[str, str]:
        return purger_environment(self.settings)


def process(settings: StackSettings, name: str, instance: int = 1) -> ServiceProcess:
    """Instance ``instance`` of one of PROCESSES."""
    if name == PURGER:
        return EdgePurgerProcess(settings, instance)
    return ServiceProcess(settings, name, instance)
