"""docker-compose.yml cannot run here (no Docker engine), so it is kept honest by reading it:
every service's variables and ports must be real settings of that service, with the same names
the local launcher uses; and each service gets only its own credentials, from the environment."""

from __future__ import annotations

import importlib
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import yaml

from portal_launcher.components.postgres import SERVICE_DATABASES
from portal_launcher.components.s3 import bucket_grants
from portal_launcher.services import BACKENDS, PURGER, WEBSITE, service_environment
from portal_launcher.settings import StackSettings

ROOT = Path(__file__).resolve().parents[2]
TEXT = (ROOT / "docker-compose.yml").read_text()
COMPOSE = yaml.safe_load(TEXT)
REQUIRED = {
    "HTTP_HOST",
    "HTTP_PORT",
    "KAFKA_BOOTSTRAP_SERVERS",
    "KAFKA_SECURITY_PROTOCOL",
    "KAFKA_USERNAME",
    "KAFKA_PASSWORD",
    "DATABASE_URL",
    "ADMIN_TOKEN",
}
S3 = {"S3_ENDPOINT", "S3_ACCESS_KEY", "S3_SECRET_KEY", "S3_BUCKET"}
SECRETS = ("KAFKA_PASSWORD", "ADMIN_TOKEN", "S3_SECRET_KEY", "OPENSEARCH_PASSWORD")
# What the public reaches: the partner API and Kafka listener, the desk, the read APIs, Grafana,
# The website (8007) and the edge in front of it (6081) are the readers' way in.
PUBLIC_PORTS = {"8001", "8003", "8004", "8005", "8006", "8007", "6081", "9094", "3000"}


@pytest.fixture(autouse=True)
def _no_per_process_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    """The launcher's environment as configured, without a test session's own overrides
    (PORTAL_<SERVICE>_<NAME>, e.g. the e2e image server's allowed host)."""
    for key in list(os.environ):
        if key.startswith("PORTAL_") and not key.startswith("PORTAL_STACK_"):
            monkeypatch.delenv(key)


def _interpolated(value: str) -> str:
    """Replace ${VAR...} with a placeholder, as compose would with a value."""
    return re.sub(r"\$\{[^}]*\}", "value", value)


def _variables(value: str) -> list[str]:
    return re.findall(r"\$\{(\w+)", value)


def _settings_cls(service: str) -> type:
    return importlib.import_module(f"portal_{service}.settings").Settings  # type: ignore[no-any-return]


def _env(service: str) -> dict[str, Any]:
    env: dict[str, Any] = COMPOSE["services"][service]["environment"]
    return env


@pytest.mark.parametrize("service", BACKENDS)
def test_every_compose_variable_is_a_setting_of_the_service(service: str) -> None:
    env = _env(service)
    fields = {name.upper() for name in _settings_cls(service).model_fields}
    unknown = set(env) - fields
    assert not unknown, f"{service}: compose sets variables the service does not read: {unknown}"
    assert set(env) >= REQUIRED, f"{service}: missing {REQUIRED - set(env)}"
    # Object storage keys only for the services that store objects; OpenSearch only for search.
    assert (set(env) >= S3) == (service in bucket_grants(StackSettings())), service
    assert ("OPENSEARCH_URL" in env) == (service == "search"), service


@pytest.mark.parametrize("service", BACKENDS)
def test_compose_and_local_launcher_use_the_same_variable_names(service: str) -> None:
    # The OTLP endpoint is set locally only while a trace backend runs (or one is given).
    optional = {"LOG_LEVEL", "OTEL_EXPORTER_OTLP_ENDPOINT"}
    # The local OpenSearch runs without its security plugin (README: least privilege).
    compose_only = {"OPENSEARCH_USERNAME", "OPENSEARCH_PASSWORD", "OPENSEARCH_CA_FILE"}
    local = set(service_environment(StackSettings(), service)) - optional
    compose = set(_env(service)) - optional - compose_only
    assert local == compose


@pytest.mark.parametrize("service", BACKENDS)
def test_each_service_has_its_own_credentials_from_the_environment(service: str) -> None:
    env = _env(service)
    assert env["KAFKA_USERNAME"] == service
    db = urlparse(_interpolated(env["DATABASE_URL"]))
    assert (db.username, db.path) == (service, f"/{service}")
    own = service.upper()
    for key in (*SECRETS, "DATABASE_URL"):
        if key not in env:
            continue
        names = _variables(str(env[key]))
        assert names, f"{service}: {key} is written into compose"
        # Its own secret, never one another service also gets (ingest's admin token is lent to
        # moderation's desk, as INGEST_ADMIN_TOKEN, not as moderation's own).
        assert all(name.startswith(f"{own}_") for name in names), (service, key, names)


def test_no_two_services_share_a_secret() -> None:
    seen: dict[str, str] = {}
    for service in (*BACKENDS, WEBSITE):
        env = _env(service)
        for key in (*SECRETS, "CSRF_SECRET", "EDGE_PURGE_TOKEN"):
            for name in _variables(str(env.get(key, ""))):
                assert name not in seen, f"{name} given to {seen.get(name)} and {service}"
                seen[name] = service


@pytest.mark.parametrize("service", (*BACKENDS, WEBSITE))
def test_ports_match_settings_and_dockerfile(service: str) -> None:
    spec = COMPOSE["services"][service]
    port = int(spec["environment"]["HTTP_PORT"])
    # The default, read without building settings (some have required secrets).
    assert _settings_cls(service).model_fields["http_port"].default == port
    for mapping in spec.get("ports", []):
        assert int(mapping.rsplit(":", 1)[1]) == port
    # One Dockerfile for every service, named by its build arguments.
    build = spec["build"]
    assert build["dockerfile"] == "deploy/service.Dockerfile"
    assert build["args"] == {"SERVICE": service, "PORT": str(port)}
    dockerfile = (ROOT / build["dockerfile"]).read_text()
    assert re.search(r"^EXPOSE \$\{PORT\}$", dockerfile, re.M)
    assert '--package "portal-${SERVICE}"' in dockerfile
    assert "PORTAL_MODULE=portal_${SERVICE}" in dockerfile
    # What the arguments name exists: the workspace package and its entry point.
    project = (ROOT / "services" / service / "pyproject.toml").read_text()
    assert f'name = "portal-{service}"' in project
    assert (ROOT / "services" / service / "src" / f"portal_{service}" / "__main__.py").is_file()


def test_only_public_ports_are_published() -> None:
    published: set[str] = set()
    for name, spec in COMPOSE["services"].items():
        for mapping in spec.get("ports", []):
            parts = str(mapping).split(":")
            if parts[0] == "127.0.0.1":
                continue  # the host's loopback only
            published.add(parts[-2] if len(parts) > 1 else parts[0])
            assert parts[-2] in PUBLIC_PORTS, f"{name} publishes {mapping}"
    assert published == PUBLIC_PORTS
    for internal in ("opensearch", "minio", "postgres", "normalize"):
        assert not COMPOSE["services"][internal].get("ports"), internal
    for unauthenticated in ("jaeger", "prometheus"):
        assert all(
            str(m).startswith("127.0.0.1:") for m in COMPOSE["services"][unauthenticated]["ports"]
        )


def test_opensearch_runs_its_security_plugin_with_a_user_for_search() -> None:
    opensearch = COMPOSE["services"]["opensearch"]
    assert "DISABLE_SECURITY_PLUGIN" not in opensearch["environment"]
    assert opensearch["environment"]["DISABLE_INSTALL_DEMO_CONFIG"] == "true"
    config = yaml.safe_load((ROOT / "deploy/compose/opensearch/opensearch.yml").read_text())
    assert config["plugins.security.ssl.http.enabled"] is True
    search = _env("search")
    assert search["OPENSEARCH_URL"].startswith("https://")
    assert search["OPENSEARCH_USERNAME"] == "search"
    mapping = yaml.safe_load((ROOT / "deploy/compose/opensearch/roles_mapping.yml").read_text())
    roles = yaml.safe_load((ROOT / "deploy/compose/opensearch/roles.yml").read_text())
    assert mapping["portal_search"]["users"] == ["search"]
    patterns = roles["portal_search"]["index_permissions"][0]["index_patterns"]
    assert patterns == ["articles*", "questions*"]  # the search service's own aliases


def test_kafka_takes_no_unauthenticated_client_and_partners_only_over_tls() -> None:
    kafka = COMPOSE["services"]["kafka"]["environment"]
    protocols = dict(p.split(":") for p in kafka["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    assert protocols == {
        "INTERNAL": "SASL_PLAINTEXT",
        "CONTROLLER": "SASL_PLAINTEXT",
        "PARTNER": "SASL_SSL",
    }
    assert kafka["KAFKA_SUPER_USERS"] == "User:portal-admin"
    assert kafka["KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND"] == "false"
    assert kafka["KAFKA_LISTENER_NAME_PARTNER_SASL_ENABLED_MECHANISMS"] == "SCRAM-SHA-512"
    init = (ROOT / "deploy/compose/kafka-init.sh").read_text()
    assert "kafka-acls.txt" in init and "services.txt" in init


def test_databases_and_roles_created_for_every_service() -> None:
    listed = (ROOT / "deploy/compose/services.txt").read_text().splitlines()
    rows = [line.split() for line in listed if line and not line.startswith("#")]
    assert [r[0] for r in rows if r[2] == "yes"] == list(SERVICE_DATABASES)
    init = (ROOT / "deploy/compose/postgres-init.sh").read_text()
    for clause in ("NOSUPERUSER", "NOCREATEDB", "NOCREATEROLE", "OWNER", "FROM PUBLIC"):
        assert clause in init
    postgres = COMPOSE["services"]["postgres"]["environment"]
    assert {f"{s.upper()}_DB_PASSWORD" for s in SERVICE_DATABASES} <= set(postgres)


def test_no_secret_values_and_no_default_secrets_in_compose() -> None:
    for line in TEXT.splitlines():
        if re.search(r"(PASSWORD|SECRET|TOKEN|SALT)\w*:", line) and "${" not in line:
            pytest.fail(f"secret written into docker-compose.yml: {line.strip()}")
    for match in re.finditer(r"\$\{(\w+)(:?[-?])?", TEXT):
        name, operator = match.group(1), match.group(2)
        if re.search(r"PASSWORD|SECRET|TOKEN|SALT|ROOT_USER", name):
            assert operator == ":?", f"${{{name}}} needs ':?' (no default, no empty value)"


def test_the_website_reads_only_the_public_apis_and_owns_no_data() -> None:
    spec = COMPOSE["services"][WEBSITE]
    env = spec["environment"]
    assert not {"DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS", "S3_ENDPOINT", "ADMIN_TOKEN"} & set(env)
    for var, service in (
        ("PUBLISHING_URL", "publishing"),
        ("SEARCH_URL", "search"),
        ("ENGAGEMENT_URL", "engagement"),
    ):
        assert urlparse(env[var]).hostname == service
        assert service in spec["depends_on"]
    fields = {name.upper() for name in _settings_cls(WEBSITE).model_fields}
    assert set(env) <= fields, set(env) - fields
    optional = {"LOG_LEVEL", "OTEL_EXPORTER_OTLP_ENDPOINT"}
    local = set(service_environment(StackSettings(), WEBSITE)) - optional
    assert local == set(env) - optional


def test_the_edge_purger_reads_every_compose_variable_as_locally() -> None:
    from portal_launcher.services import purger_environment
    from portal_publishing.purger import PurgerSettings

    spec = COMPOSE["services"][PURGER]
    env = spec["environment"]
    fields = {name.upper() for name in PurgerSettings.model_fields}
    assert set(env) <= fields, set(env) - fields
    optional = {"LOG_LEVEL", "OTEL_EXPORTER_OTLP_ENDPOINT"}
    assert set(purger_environment(StackSettings())) - optional == set(env) - optional
    assert spec["command"] == ["python", "-m", "portal_publishing.purger"]
    assert urlparse(env["EDGE_PURGE_URLS"]).hostname == "edge"
    assert PurgerSettings().http_port == int(env["HTTP_PORT"])
    # Publishing's second process: publishing's Kafka user and database, nothing more.
    assert env["KAFKA_USERNAME"] == "publishing"
    assert _variables(env["KAFKA_PASSWORD"]) == ["PUBLISHING_KAFKA_PASSWORD"]
    assert not {"ADMIN_TOKEN", "S3_SECRET_KEY"} & set(env)
    db = urlparse(_interpolated(env["DATABASE_URL"]))
    assert (db.username, db.path) == ("publishing", "/publishing")


def test_the_edge_runs_the_local_vcl_with_its_compose_origins() -> None:
    from portal_launcher.components.varnish import render_backends

    edge = COMPOSE["services"]["edge"]
    assert edge["image"].startswith("varnish:")  # the official image ships varnish-modules
    mounts = {v.split(":")[1]: v.split(":")[0] for v in edge["volumes"]}
    assert mounts["/etc/varnish/default.vcl"] == "./deploy/edge/portal.vcl"
    backends = ROOT / mounts["/etc/varnish/backends.vcl"]
    subnet = COMPOSE["networks"]["default"]["ipam"]["config"][0]["subnet"]
    port = int(COMPOSE["services"]["publishing"]["environment"]["HTTP_PORT"])
    web_port = int(COMPOSE["services"]["web"]["environment"]["HTTP_PORT"])
    # The file is what the launcher renders for these origins (regenerate it, never edit it).
    assert backends.read_text() == render_backends(
        publishing=("publishing", port), website=("web", web_port), purgers=subnet
    )
    edge_ip = edge["networks"]["default"]["ipv4_address"]
    assert edge_ip in COMPOSE["services"]["publishing"]["environment"]["TRUSTED_PROXIES"]
    assert edge_ip in COMPOSE["services"]["web"]["environment"]["TRUSTED_PROXIES"]
    assert "${EDGE_PURGE_TOKEN:?" in edge["environment"]["EDGE_PURGE_TOKEN"]
