"""Dashboards and alerts as code (deploy/observability/) are kept honest without running them:

* the alert rules pass `promtool check rules` and their unit tests (`promtool test rules`), with
  Debian's prometheus package (deploy/system-deps.sh installs it);
* the Grafana dashboard JSON is what tools/make_dashboard.py renders;
* every metric the rules and the dashboard query is one the services really export (read from
  a service's own /metrics, built in-process) or one Prometheus itself makes;
* docker-compose wires the collector, Jaeger, Prometheus and Grafana to these files.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
OBS = ROOT / "deploy" / "observability"
RULES = OBS / "prometheus" / "alerts.yml"
DASHBOARD = OBS / "grafana" / "dashboards" / "portal-pipeline.json"
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())

# Made by Prometheus (scrape health) or by FastStream's middleware only once messages flow.
EXTERNAL = {"up", "messaging_publish_duration_seconds"}


def _promtool() -> str:
    found = shutil.which("promtool")
    assert found, "promtool is missing: deploy/system-deps.sh installs Debian's prometheus package"
    return found


def test_alert_rules_pass_promtool_check() -> None:
    result = subprocess.run(
        [_promtool(), "check", "rules", str(RULES)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_alert_rules_fire_as_their_unit_tests_expect() -> None:
    result = subprocess.run(
        [_promtool(), "test", "rules", "alerts.test.yml"],
        cwd=RULES.parent,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_prometheus_config_is_valid() -> None:
    result = subprocess.run(
        [_promtool(), "check", "config", str(OBS / "prometheus" / "prometheus.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_alerts_cover_what_sres_asked_for() -> None:
    rules = [r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]
    exprs = " ".join(r["expr"] for r in rules)
    for metric in (
        "portal_kafka_consumer_lag",
        "portal_dead_letters_total",
        "http_server_request_duration_seconds_count",
        "portal_review_backlog",
    ):
        assert metric in exprs, f"no alert on {metric}"
    for rule in rules:
        assert rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]


def _render_dashboard() -> str:
    spec = importlib.util.spec_from_file_location(
        "make_dashboard", OBS / "tools" / "make_dashboard.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rendered: str = module.render()
    return rendered


def test_dashboard_json_is_current() -> None:
    assert DASHBOARD.read_text() == _render_dashboard(), (
        "run: uv run --no-sync python deploy/observability/tools/make_dashboard.py"
    )
    board = json.loads(DASHBOARD.read_text())
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    assert all(p["gridPos"]["x"] + p["gridPos"]["w"] <= 24 for p in board["panels"])


def _queried_metrics() -> set[str]:
    board = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in board["panels"] for t in p.get("targets", [])]
    rules = yaml.safe_load(RULES.read_text())["groups"]
    exprs += [r["expr"] for g in rules for r in g["rules"]]
    names: set[str] = set()
    for expr in exprs:
        # Drop grouping clauses and label matchers: what is left names metrics and functions.
        expr = re.sub(r"\b(by|without)\s*\([^)]*\)", " ", expr)
        expr = re.sub(r"\{[^}]*\}", "{}", expr)
        for name in re.findall(r"\b([a-z_][a-z0-9_]*)\b(?!\s*\()", expr):
            if name.startswith(("portal_", "http_", "process_", "messaging_", "up")):
                names.add(re.sub(r"_(bucket|count|sum)$", "", name))
    return names


def _exported_metrics() -> set[str]:
    """Metric families a real service exposes, once each kind of instrument has a value."""
    from portal_runtime import metrics as m
    from portal_runtime.service import Service
    from portal_runtime.settings import ServiceSettings

    service = Service(ServiceSettings(service_name="contract"), migrations_dir=None)
    app = service.create_app(title="contract", description="")
    m.MESSAGES_PROCESSED.add(0, {"topic": "t", "consumer_group": "g", "outcome": "ok"})
    m.PROCESSING_DURATION.record(0.0, {"topic": "t", "consumer_group": "g", "outcome": "ok"})
    m.MESSAGE_RETRIES.add(0, {"topic": "t", "consumer_group": "g", "error_type": "transient"})
    m.DEAD_LETTERS.add(0, {"topic": "t", "dead_letter_topic": "t.dlq", "consumer_group": "g"})
    m.OUTBOX_RELAYED.add(0, {"topic": "t"})
    # What the pollers would have read (lag, outbox, and ingest's review backlog).
    import portal_ingest.journey as journey  # declares the review backlog gauges

    service.metrics.observed.values.update(
        {
            m.CONSUMER_LAG: {m.labels(topic="t", partition=0, consumer_group="g"): 0.0},
            m.OUTBOX_BACKLOG: {(): 0.0},
            m.OUTBOX_OLDEST_AGE: {(): 0.0},
            journey.REVIEW_BACKLOG: {m.labels(source="s"): 0.0},
            journey.REVIEW_BACKLOG_OLDEST: {m.labels(source="s"): 0.0},
        }
    )

    async def scrape() -> str:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://contract") as client:
            await client.get("/nowhere")  # one request, so the HTTP instruments have a value
            return (await client.get("/metrics")).text

    text = asyncio.run(scrape())
    service.metrics.close()
    names = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            name = line.split()[2]
            names.add(name)
            names.add(re.sub(r"_total$", "", name))
    return names | {f"{n}_total" for n in names}


def test_every_queried_metric_is_exported() -> None:
    exported = _exported_metrics()
    missing = {n for n in _queried_metrics() if n not in exported and n not in EXTERNAL}
    assert not missing, f"queried but not exported by the services: {sorted(missing)}"


def _mounts(service: str) -> dict[str, str]:
    out = {}
    for volume in COMPOSE["services"][service].get("volumes", []):
        parts = volume.split(":")
        if parts[0].startswith("./"):
            out[parts[0][2:]] = parts[1]
    return out


@pytest.mark.parametrize(
    ("service", "files"),
    [
        ("otel-collector", ["deploy/observability/otel-collector.yaml"]),
        (
            "prometheus",
            [
                "deploy/observability/prometheus/prometheus.yml",
                "deploy/observability/prometheus/alerts.yml",
            ],
        ),
        (
            "grafana",
            [
                "deploy/observability/grafana/provisioning",
                "deploy/observability/grafana/dashboards",
            ],
        ),
    ],
)
def test_compose_wires_the_observability_files(service: str, files: list[str]) -> None:
    mounts = _mounts(service)
    for path in files:
        assert path in mounts, f"{service} does not mount {path}"
        assert (ROOT / path).exists()


def test_services_send_telemetry_to_the_collector_which_feeds_jaeger() -> None:
    for name in ("ingest", "normalize", "moderation", "publishing", "engagement", "search", "web"):
        env = COMPOSE["services"][name]["environment"]
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector:4318"
    collector: dict[str, Any] = yaml.safe_load((OBS / "otel-collector.yaml").read_text())
    pipelines = collector["service"]["pipelines"]
    assert pipelines["traces"]["exporters"] == ["otlp/jaeger"]
    assert collector["exporters"]["otlp/jaeger"]["endpoint"].startswith("jaeger:")
    assert "metrics" in pipelines
    scrape = yaml.safe_load((OBS / "prometheus" / "prometheus.yml").read_text())
    jobs = {job["job_name"] for job in scrape["scrape_configs"]}
    assert {
        "ingest",
        "normalize",
        "moderation",
        "publishing",
        "engagement",
        "search",
        "web",
    } <= jobs
