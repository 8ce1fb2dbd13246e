"""docker-compose.yml cannot run here (no Docker engine), so it is kept honest by reading it:
every service's variables and ports must be real settings of that service, with the same names
the local launcher uses."""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml

from portal_launcher.services import BACKENDS, SERVICES, WEBSITE, service_environment
from portal_launcher.settings import StackSettings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
COMMON = {"HTTP_HOST", "HTTP_PORT"}
REQUIRED = {
    *COMMON,
    "KAFKA_BOOTSTRAP_SERVERS",
    "DATABASE_URL",
    "S3_ENDPOINT",
    "S3_ACCESS_KEY",
    "S3_SECRET_KEY",
    "S3_BUCKET",
    "OPENSEARCH_URL",
}


def _interpolated(value: str) -> str:
    """Replace ${VAR...} with a placeholder, as compose would with a value."""
    return re.sub(r"\$\{[^}]*\}", "value", value)


def _settings_cls(service: str) -> type:
    return importlib.import_module(f"portal_{service}.settings").Settings  # type: ignore[no-any-return]


@pytest.mark.parametrize("service", SERVICES)
def test_every_compose_variable_is_a_setting_of_the_service(service: str) -> None:
    env = COMPOSE["services"][service]["environment"]
    fields = {name.upper() for name in _settings_cls(service).model_fields}
    unknown = set(env) - fields
    assert not unknown, f"{service}: compose sets variables the service does not read: {unknown}"
    required = REQUIRED if service in BACKENDS else COMMON
    assert set(env) >= required, f"{service}: missing {required - set(env)}"


@pytest.mark.parametrize("service", SERVICES)
def test_compose_and_local_launcher_use_the_same_variable_names(service: str) -> None:
    # The OTLP endpoint is set locally only while a trace backend runs (or one is given).
    optional = {"LOG_LEVEL", "OTEL_EXPORTER_OTLP_ENDPOINT"}
    local = set(service_environment(StackSettings(), service)) - optional
    compose = set(COMPOSE["services"][service]["environment"]) - optional
    assert local == compose


@pytest.mark.parametrize("service", SERVICES)
def test_ports_match_settings_dockerfile_and_mapping(service: str) -> None:
    spec = COMPOSE["services"][service]
    port = int(spec["environment"]["HTTP_PORT"])
    assert _settings_cls(service)().http_port == port
    _host_port, container_port = spec["ports"][0].split(":")
    assert int(container_port) == port
    dockerfile = (ROOT / spec["build"]["dockerfile"]).read_text()
    assert re.search(rf"^EXPOSE {port}$", dockerfile, re.M)
    assert f'"portal_{service}"' in dockerfile
    assert f"--package portal-{service}" in dockerfile


@pytest.mark.parametrize("service", BACKENDS)
def test_each_service_has_its_own_database_and_reachable_dependencies(service: str) -> None:
    env = COMPOSE["services"][service]["environment"]
    db = urlparse(_interpolated(env["DATABASE_URL"]))
    assert db.scheme == "postgresql+asyncpg"
    assert db.path == f"/{service}"
    for var in ("KAFKA_BOOTSTRAP_SERVERS", "S3_ENDPOINT", "OPENSEARCH_URL", "DATABASE_URL"):
        value = _interpolated(env[var])
        host = urlparse(value if "://" in value else f"tcp://{value}").hostname
        assert host in COMPOSE["services"], f"{service}: {var} points at unknown host {host}"
    deps = set(COMPOSE["services"][service]["depends_on"])
    assert {"kafka", "postgres", "minio", "opensearch"} <= deps


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


def test_databases_created_for_every_service() -> None:
    init = (ROOT / "deploy/compose/postgres-init.sql").read_text()
    for service in BACKENDS:
        assert f"CREATE DATABASE {service};" in init


def test_no_secret_values_in_compose() -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    for line in text.splitlines():
        if re.search(r"(PASSWORD|SECRET|ACCESS_KEY)\w*:", line) and "${" not in line:
            pytest.fail(f"secret written into docker-compose.yml: {line.strip()}")


def test_the_edge_purger_reads_every_compose_variable_as_locally() -> None:
    from portal_launcher.services import purger_environment
    from portal_publishing.purger import PurgerSettings

    spec = COMPOSE["services"]["edge-purger"]
    env = spec["environment"]
    fields = {name.upper() for name in PurgerSettings.model_fields}
    assert set(env) <= fields, set(env) - fields
    optional = {"LOG_LEVEL", "OTEL_EXPORTER_OTLP_ENDPOINT"}
    assert set(purger_environment(StackSettings())) - optional == set(env) - optional
    assert spec["command"] == ["python", "-m", "portal_publishing.purger"]
    assert urlparse(env["EDGE_PURGE_URLS"]).hostname == "edge"
    assert PurgerSettings().http_port == int(env["HTTP_PORT"])


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
    assert "${EDGE_PURGE_TOKEN:?" in edge["environment"]["EDGE_PURGE_TOKEN"]
