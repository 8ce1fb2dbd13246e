"""Writes deploy/observability/grafana/dashboards/portal-pipeline.json (the dashboard as code).

Edit the panels here and run `uv run --no-sync python deploy/observability/tools/make_dashboard.py`;
a contract test checks that the JSON is current and that every query names a metric the
services export.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parents[1] / "grafana" / "dashboards" / "portal-pipeline.json"
DS = {"type": "prometheus", "uid": "${datasource}"}
JOBS = 'job=~"$job"'


def _target(expr: str, legend: str, ref: str) -> dict[str, Any]:
    return {"datasource": DS, "expr": expr, "legendFormat": legend, "refId": ref, "range": True}


def timeseries(
    title: str,
    targets: list[tuple[str, str]],
    unit: str,
    description: str,
    *,
    stack: bool = False,
) -> dict[str, Any]:
    return {
        "type": "timeseries",
        "title": title,
        "description": description,
        "datasource": DS,
        "fieldConfig": {
            "defaults": {
                "unit": unit,
                "min": 0,
                "custom": {
                    "drawStyle": "line",
                    "lineWidth": 1,
                    "fillOpacity": 10,
                    "stacking": {"mode": "normal" if stack else "none"},
                },
            },
            "overrides": [],
        },
        "options": {
            "legend": {
                "displayMode": "table",
                "placement": "bottom",
                "calcs": ["lastNotNull", "max"],
            },
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
        "targets": [_target(e, legend, chr(ord("A") + i)) for i, (e, legend) in enumerate(targets)],
    }


def stat(title: str, expr: str, unit: str, description: str, red_above: float) -> dict[str, Any]:
    return {
        "type": "stat",
        "title": title,
        "description": description,
        "datasource": DS,
        "fieldConfig": {
            "defaults": {
                "unit": unit,
                "thresholds": {
                    "mode": "absolute",
                    "steps": [
                        {"color": "green", "value": None},
                        {"color": "red", "value": red_above},
                    ],
                },
            },
            "overrides": [],
        },
        "options": {
            "colorMode": "background",
            "graphMode": "area",
            "reduceOptions": {"calcs": ["lastNotNull"]},
        },
        "targets": [_target(expr, title, "A")],
    }


def row(title: str) -> dict[str, Any]:
    return {"type": "row", "title": title, "collapsed": False, "panels": []}


def layout(
    rows: list[tuple[dict[str, Any], list[tuple[dict[str, Any], int, int]]]],
) -> list[dict[str, Any]]:
    """Place rows of (panel, width, height) left to right on Grafana's 24-column grid."""
    panels: list[dict[str, Any]] = []
    y = 0
    pid = 1
    for header, items in rows:
        header = {**header, "id": pid, "gridPos": {"x": 0, "y": y, "w": 24, "h": 1}}
        panels.append(header)
        pid += 1
        y += 1
        x = 0
        tallest = 0
        for panel, w, h in items:
            if x + w > 24:
                x, y = 0, y + tallest
                tallest = 0
            panels.append({**panel, "id": pid, "gridPos": {"x": x, "y": y, "w": w, "h": h}})
            pid += 1
            x += w
            tallest = max(tallest, h)
        y += tallest
    return panels


def dashboard() -> dict[str, Any]:
    rate = "$__rate_interval"
    overview = [
        (
            stat(
                "Consumer lag (all groups)",
                f"sum(portal_kafka_consumer_lag{{{JOBS}}})",
                "short",
                "Messages waiting for a consumer, all topics and groups.",
                1000,
            ),
            6,
            4,
        ),
        (
            stat(
                "Dead letters (range)",
                f"sum(increase(portal_dead_letters_total{{{JOBS}}}[$__range]))",
                "short",
                "Messages sent to dead-letter topics in the selected time range.",
                0.5,
            ),
            6,
            4,
        ),
        (
            stat(
                "HTTP 5xx ratio",
                f'sum(rate(http_server_request_duration_seconds_count{{{JOBS},http_response_status_code=~"5.."}}[{rate}])) / sum(rate(http_server_request_duration_seconds_count{{{JOBS}}}[{rate}]))',
                "percentunit",
                "Share of requests answered with a server error.",
                0.05,
            ),
            6,
            4,
        ),
        (
            stat(
                "Articles in review",
                "sum(portal_review_backlog)",
                "short",
                "Partner articles waiting for an editor.",
                500,
            ),
            6,
            4,
        ),
    ]
    kafka = [
        (
            timeseries(
                "Consumer lag by group and topic",
                [
                    (
                        f"sum by (consumer_group, topic) (portal_kafka_consumer_lag{{{JOBS}}})",
                        "{{consumer_group}} ← {{topic}}",
                    )
                ],
                "short",
                "Log end offset minus the group's committed offset (messages not yet processed).",
            ),
            12,
            8,
        ),
        (
            timeseries(
                "Messages processed per second",
                [
                    (
                        f"sum by (job, topic, outcome) (rate(portal_messages_processed_total{{{JOBS}}}[{rate}]))",
                        "{{job}} {{topic}} {{outcome}}",
                    )
                ],
                "ops",
                "Messages finished by each consumer: ok, or dead_letter.",
                stack=True,
            ),
            12,
            8,
        ),
        (
            timeseries(
                "Batch processing time p50 / p95",
                [
                    (
                        f"histogram_quantile(0.5, sum by (le, job, topic) (rate(portal_message_processing_duration_seconds_bucket{{{JOBS}}}[{rate}])))",
                        "p50 {{job}} {{topic}}",
                    ),
                    (
                        f"histogram_quantile(0.95, sum by (le, job, topic) (rate(portal_message_processing_duration_seconds_bucket{{{JOBS}}}[{rate}])))",
                        "p95 {{job}} {{topic}}",
                    ),
                ],
                "s",
                "Time to apply one batch of a topic's messages, from receiving it to committing it, retries included.",
            ),
            12,
            8,
        ),
        (
            timeseries(
                "Dead letters and retries per minute",
                [
                    (
                        f"sum by (job, topic, error_type) (rate(portal_dead_letters_total{{{JOBS}}}[{rate}])) * 60",
                        "dead letters {{job}} {{topic}} {{error_type}}",
                    ),
                    (
                        f"sum by (job, topic, error_type) (rate(portal_message_retries_total{{{JOBS}}}[{rate}])) * 60",
                        "retries {{job}} {{topic}} {{error_type}}",
                    ),
                ],
                "short",
                "Dead-lettered messages by reason class, and retried attempts (transient: a dependency is down).",
            ),
            12,
            8,
        ),
        (
            timeseries(
                "Outbox backlog",
                [
                    (f"sum by (job) (portal_outbox_backlog{{{JOBS}}})", "{{job}} events waiting"),
                    (
                        f"max by (job) (portal_outbox_oldest_age_seconds{{{JOBS}}})",
                        "{{job}} oldest (s)",
                    ),
                ],
                "short",
                "Events committed and not yet on Kafka; the oldest one's age in seconds.",
            ),
            12,
            8,
        ),
        (
            timeseries(
                "Kafka publish time p95 (FastStream)",
                [
                    (
                        f"histogram_quantile(0.95, sum by (le, job) (rate(messaging_publish_duration_seconds_bucket{{{JOBS}}}[{rate}])))",
                        "publish {{job}}",
                    ),
                ],
                "s",
                "Broker acknowledgement time of the outbox relay's publishes.",
            ),
            12,
            8,
        ),
    ]
    http = [
        (
            timeseries(
                "Requests per second by status",
                [
                    (
                        f"sum by (job, http_response_status_code) (rate(http_server_request_duration_seconds_count{{{JOBS}}}[{rate}]))",
                        "{{job}} {{http_response_status_code}}",
                    )
                ],
                "reqps",
                "HTTP requests answered, by service and status code.",
                stack=True,
            ),
            12,
            8,
        ),
        (
            timeseries(
                "Latency p95 by route",
                [
                    (
                        f"histogram_quantile(0.95, sum by (le, job, http_route) (rate(http_server_request_duration_seconds_bucket{{{JOBS}}}[{rate}])))",
                        "{{job}} {{http_route}}",
                    )
                ],
                "s",
                "95th percentile of request duration per route.",
            ),
            12,
            8,
        ),
        (
            timeseries(
                "5xx ratio by service",
                [
                    (
                        f'sum by (job) (rate(http_server_request_duration_seconds_count{{{JOBS},http_response_status_code=~"5.."}}[{rate}])) / sum by (job) (rate(http_server_request_duration_seconds_count{{{JOBS}}}[{rate}]))',
                        "{{job}}",
                    )
                ],
                "percentunit",
                "Share of server errors per service.",
            ),
            12,
            8,
        ),
        (
            timeseries(
                "Requests in flight",
                [(f"sum by (job) (http_server_active_requests{{{JOBS}}})", "{{job}}")],
                "short",
                "Requests being handled right now.",
            ),
            12,
            8,
        ),
    ]
    editors = [
        (
            timeseries(
                "Articles waiting for review, by source",
                [("sum by (source) (portal_review_backlog)", "{{source}}")],
                "short",
                "Partner articles in review (status in_review as ingest sees it).",
                stack=True,
            ),
            12,
            8,
        ),
        (
            timeseries(
                "Longest wait for review, by source",
                [("max by (source) (portal_review_backlog_oldest_age_seconds)", "{{source}}")],
                "s",
                "How long the oldest article in review has waited.",
            ),
            12,
            8,
        ),
    ]
    runtime = [
        (
            timeseries(
                "Resident memory",
                [(f"process_resident_memory_bytes{{{JOBS}}}", "{{job}} {{instance}}")],
                "bytes",
                "Memory of each service process.",
            ),
            8,
            7,
        ),
        (
            timeseries(
                "CPU",
                [(f"rate(process_cpu_seconds_total{{{JOBS}}}[{rate}])", "{{job}} {{instance}}")],
                "percentunit",
                "CPU time per second of each service process.",
            ),
            8,
            7,
        ),
        (
            timeseries(
                "Up",
                [(f"up{{{JOBS}}}", "{{job}} {{instance}}")],
                "short",
                "1 when Prometheus could scrape the service.",
            ),
            8,
            7,
        ),
    ]
    return {
        "uid": "portal-pipeline",
        "title": "Portal pipeline",
        "description": "Kafka consumers, dead letters, outboxes, HTTP and the review backlog of the six portal services.",
        "tags": ["portal"],
        "timezone": "browser",
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "refresh": "30s",
        "time": {"from": "now-3h", "to": "now"},
        "links": [
            {
                "title": "Traces (Jaeger)",
                "type": "link",
                "url": "/explore?left=%7B%22datasource%22:%22jaeger%22%7D",
                "targetBlank": True,
            },
        ],
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "label": "Prometheus",
                    "type": "datasource",
                    "query": "prometheus",
                    "current": {},
                    "hide": 0,
                },
                {
                    "name": "job",
                    "label": "Service",
                    "type": "query",
                    "datasource": DS,
                    "query": {
                        "query": 'label_values(up{job=~"ingest|normalize|moderation|publishing|engagement|search"}, job)',
                        "refId": "jobs",
                    },
                    "definition": 'label_values(up{job=~"ingest|normalize|moderation|publishing|engagement|search"}, job)',
                    "multi": True,
                    "includeAll": True,
                    "allValue": ".*",
                    "current": {"text": "All", "value": "$__all"},
                    "refresh": 2,
                    "hide": 0,
                },
            ]
        },
        "annotations": {"list": []},
        "panels": layout(
            [
                (row("Overview"), overview),
                (row("Kafka: consumers, dead letters, outboxes"), kafka),
                (row("HTTP"), http),
                (row("Editors: review backlog"), editors),
                (row("Processes"), runtime),
            ]
        ),
    }


def render() -> str:
    return json.dumps(dashboard(), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(render())
    print(f"wrote {OUT}")
