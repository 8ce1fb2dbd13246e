"""`portal`: the local stack, the six services and the website, on loopback, without Docker.

portal up [--with-traces]      stack + migrations + services + demo data, prints the URLs
portal down                    stops everything this data folder started
portal stack up [--with-traces]|down|status|logs
                               --with-traces (or PORTAL_STACK_TRACES=1) also runs Jaeger, the
                               trace backend, and the services send it their traces and metrics
portal services up [--instances normalize=3,publishing=2]|down
portal migrate
portal lag [--group G] [--json]  consumer lag per group, topic and partition
portal dlq list [TOPIC] | redrive TOPIC [--group G] [--reason-contains S] [--dry-run]
portal rebuild search | publishing
                               rebuild a read model or store from the log, through its service
portal edge purge KEY... [--hard]
                               invalidate surrogate keys on the stack's edge cache
portal tls DIR [--kafka-host H]  certificates for docker-compose (Kafka partners, OpenSearch)
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import typer

from portal_launcher import ops, ops_http, ops_kafka, seed, stack
from portal_launcher.components.jaeger import JaegerComponent
from portal_launcher.components.kafka import admin_client_options, partner_ca_file
from portal_launcher.components.varnish import purge_edge
from portal_launcher.credentials import secrets_dir
from portal_launcher.process import ComponentFailed
from portal_launcher.services import (
    BACKENDS,
    INSTANCE_PORT_OFFSET,
    INSTANCE_PORT_STRIDE,
    PROCESSES,
    WEBSITE,
    parse_instances,
    service_port,
)
from portal_launcher.settings import StackSettings
from portal_launcher.tls import ensure_server_cert
from portal_runtime.kafka_security import client_options
from portal_runtime.settings import ServiceSettings

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
stack_app = typer.Typer(
    no_args_is_help=True, help="Kafka, OpenSearch, PostgreSQL, S3 and the edge cache (Varnish)."
)
services_app = typer.Typer(
    no_args_is_help=True, help="The six portal services, the public website and the edge purger."
)
app.add_typer(stack_app, name="stack")
app.add_typer(services_app, name="services")
dlq_app = typer.Typer(no_args_is_help=True, help="Dead letters: count them, redrive them.")
rebuild_app = typer.Typer(no_args_is_help=True, help="Rebuild a read model or store.")
edge_app = typer.Typer(no_args_is_help=True, help="The edge cache (Varnish).")
app.add_typer(dlq_app, name="dlq")
app.add_typer(rebuild_app, name="rebuild")
app.add_typer(edge_app, name="edge")


def _settings(with_traces: bool = False) -> StackSettings:
    settings = StackSettings()
    if with_traces:
        settings.traces = True
    return settings


_WITH_TRACES = typer.Option(
    False,
    "--with-traces",
    help="Also run Jaeger (traces UI and query API); same as PORTAL_STACK_TRACES=1.",
)


def _fail(exc: Exception) -> None:
    typer.secho(f"\n{exc}", fg=typer.colors.RED, err=True)
    raise typer.Exit(1)


@stack_app.command("up")
def stack_up(with_traces: bool = _WITH_TRACES) -> None:
    """Start the infrastructure and wait until each component really answers."""
    try:
        stack.stack_up(_settings(with_traces))
    except ComponentFailed as exc:
        _fail(exc)


@stack_app.command("prepare")
def stack_prepare(with_traces: bool = _WITH_TRACES) -> None:
    """Fetch and build what the stack runs (Kafka and OpenSearch jars, Jaeger with traces)."""
    try:
        for comp in stack.infrastructure(_settings(with_traces)):
            comp.install()
            typer.echo(f"  {comp.name}: installed")
    except ComponentFailed as exc:
        _fail(exc)


@stack_app.command("down")
def stack_down() -> None:
    """Stop the services and the infrastructure started from this data folder."""
    stack.stack_down(_settings())


@stack_app.command("status")
def stack_status() -> None:
    """What runs, where, which version, and whether it answers."""
    rows = stack.status(_settings())
    typer.echo(f"{'component':<24} {'pid':>8}  {'endpoint':<28} {'version':<12} state")
    for r in rows:
        pid = str(r.pid) if r.pid else "-"
        typer.echo(f"{r.name:<24} {pid:>8}  {r.endpoint:<28} {r.version:<12} {r.detail}")


@stack_app.command("logs")
def stack_logs(
    component: str = typer.Argument(
        ..., help="e.g. kafka, opensearch, postgres, s3, varnish, jaeger, service-ingest"
    ),
    lines: int = typer.Option(50, "-n", help="How many lines"),
    follow: bool = typer.Option(False, "-f", help="Keep following"),
) -> None:
    """Show a component's log."""
    comps = {c.name: c for c in stack.all_components(_settings())}
    if component not in comps:
        _fail(ValueError(f"unknown component {component!r}; one of: {', '.join(comps)}"))
    log = comps[component].log_file
    if follow:
        subprocess.run(["tail", "-n", str(lines), "-F", str(log)], check=False)
    else:
        typer.echo(comps[component].log_tail(lines))


@services_app.command("up")
def services_up(
    only: list[str] = typer.Option(list(PROCESSES), "--only", help="Start only these services"),
    instances: str = typer.Option(
        "",
        "--instances",
        help="Instances per service, e.g. normalize=3,publishing=2 (others: 1). Instance n >= 2 "
        f"listens on the service's port + {INSTANCE_PORT_OFFSET} + "
        f"{INSTANCE_PORT_STRIDE}*(n-2); running instances beyond the count are stopped.",
    ),
) -> None:
    """Start the services (the stack must be up) and wait for /readyz."""
    try:
        counts = parse_instances(instances)
        stack.services_up(_settings(), tuple(only), instances=counts)
    except (ComponentFailed, ValueError) as exc:
        _fail(exc)


@services_app.command("down")
def services_down() -> None:
    stack.services_down(_settings())


@app.command("migrate")
def migrate() -> None:
    """Run every service's database migrations."""
    stack.migrate(_settings())


@app.command("seed")
def seed_cmd(
    demo: bool = typer.Option(False, "--demo", help="Also demo keys, accounts and articles"),
) -> None:
    """Load deploy/seed/ (sources, sub-sites, sections) into the running services."""
    creds = seed.seed(_settings(), demo=demo)
    if creds:
        _print_credentials(creds)


def _print_credentials(creds: dict[str, Any]) -> None:
    settings = _settings()
    typer.echo(
        "\nDemo credentials (generated for this data folder, also in "
        f"{settings.data_dir / 'demo-credentials.json'}):"
    )
    for username, user in creds["users"].items():
        typer.echo(f"  editor {username:<12} role {user['role']:<17} password {user['password']}")
    for source, key in creds["api_keys"].items():
        typer.echo(f"  partner {source:<14} API key {key}")
    kafka = creds.get("kafka") or {}
    if kafka:
        typer.echo(
            f"  kafka partner {kafka['username']} password {kafka['password']} "
            f"topic {kafka['topic']} at {kafka['bootstrap_servers']} "
            f"({kafka.get('security_protocol', 'SASL_SSL')}, {kafka['mechanism']}; CA "
            f"{partner_ca_file(settings)})"
        )


@app.command("up")
def up(with_traces: bool = _WITH_TRACES) -> None:
    """Everything: stack, migrations, services, demo data; then print the URLs."""
    settings = _settings(with_traces)
    started = time.monotonic()
    try:
        stack.stack_up(settings)
        stack.services_up(settings)  # each service migrates its own database as it starts
        creds = seed.seed(settings, demo=True)
    except (ComponentFailed, RuntimeError, ValueError) as exc:
        _fail(exc)
    typer.echo(f"\nThe portal is up ({time.monotonic() - started:.0f}s).")
    typer.echo(
        f"  the portal  {settings.edge_url}/   (the readers' entry point: the edge cache in "
        "front of the public website and publishing, purged on every publication)"
    )
    typer.echo(
        f"  website     http://{settings.host}:{service_port(settings, WEBSITE)}/   "
        "(the public website itself, behind the edge)"
    )
    for name in BACKENDS:
        base = f"http://{settings.host}:{service_port(settings, name)}"
        typer.echo(f"  {name:<11} {base}/docs   (ready: {base}/readyz)")
    typer.echo(
        f"  kafka       {settings.kafka_bootstrap} (partners, SASL_SSL + SCRAM: "
        f"{settings.kafka_sasl_bootstrap}, CA certificate {partner_ca_file(settings)})"
    )
    typer.echo(f"  secrets     {secrets_dir(settings)} (one file per service, mode 0600)")
    typer.echo(f"  opensearch  {settings.opensearch_url}")
    typer.echo(f"  s3          {settings.s3_endpoint}")
    if JaegerComponent(settings).is_running():
        typer.echo(
            f"  traces      {settings.jaeger_ui_url}   (Jaeger UI and query API; OTLP "
            f"{settings.jaeger_otlp_endpoint}; OTLP metrics for Prometheus "
            f"http://{settings.host}:{settings.jaeger_metrics_port}/metrics)"
        )
    else:
        typer.echo("  traces      off (portal up --with-traces, or PORTAL_STACK_TRACES=1)")
    typer.echo(
        "  metrics     GET /metrics on every service (Prometheus); journeys: "
        "GET /admin/v1/articles/{article_id}/journey on ingest"
    )
    if creds:
        _print_credentials(creds)
    typer.echo("Stop everything with: portal down   (or: make down)")


@app.command("down")
def down() -> None:
    stack.stack_down(_settings())


# --- repair and replay ----------------------------------------------------------------------

_BOOTSTRAP = typer.Option(
    None,
    "--bootstrap",
    help="Kafka bootstrap servers (default: the local stack's, as its operator). With another "
    "cluster, credentials come from KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_MECHANISM, "
    "KAFKA_USERNAME, KAFKA_PASSWORD and KAFKA_SSL_CA_FILE.",
)
_JSON = typer.Option(False, "--json", help="Print JSON instead of a table.")


def _bootstrap(value: str | None) -> dict[str, Any]:
    """Address and credentials of the Kafka clients of an ops command."""
    if value is None:
        return admin_client_options(_settings())
    return client_options(ServiceSettings(kafka_bootstrap_servers=value))


@app.command("lag")
def lag(
    group: str | None = typer.Option(None, "--group", help="Only this consumer group"),
    as_json: bool = _JSON,
    bootstrap: str | None = _BOOTSTRAP,
) -> None:
    """Consumer lag (committed offset vs end offset) per group, topic and partition."""
    rows = asyncio.run(ops_kafka.consumer_lag(_bootstrap(bootstrap), group))
    typer.echo(ops.lag_json(rows) if as_json else ops.lag_table(rows))


def _dlq_name(topic: str) -> str:
    try:
        return ops.resolve_dead_letter_topic(topic)
    except ops.UnknownTopic as exc:
        _fail(exc)
        raise  # unreachable: _fail exits


@dlq_app.command("list")
def dlq_list(
    topic: str | None = typer.Argument(None, help="A dead-letter topic (default: all of them)"),
    as_json: bool = _JSON,
    bootstrap: str | None = _BOOTSTRAP,
) -> None:
    """Dead letters per dead-letter topic, failed consumer group and reason, and how many wait
    for a redrive."""
    from portal_contracts.topics import DEAD_LETTER_TOPICS

    names = [_dlq_name(topic)] if topic else [t.name for t in DEAD_LETTER_TOPICS]
    server = _bootstrap(bootstrap)

    async def collect() -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for name in names:
            letters = await ops_kafka.read_dead_letters(server, name)
            pending: dict[str, int] = {}
            for g in ops.failed_groups(letters.records):
                marks = await ops_kafka.read_marks(server, ops.redrive_group_id(name, g), name)
                plan = ops.plan_redrive(name, letters.records, letters.ends, marks, g)
                pending[g] = len(plan.send)
            out.append(
                {
                    "topic": name,
                    "total": len(letters.records),
                    "pending": pending,
                    "counts": [c.__dict__ for c in ops.summarize(name, letters.records)],
                }
            )
        return out

    report = asyncio.run(collect())
    if as_json:
        typer.echo(json.dumps(report, indent=2, ensure_ascii=False))
        return
    for item in report:
        if not item["total"] and topic is None:
            continue
        waiting = ", ".join(f"{g} {n}" for g, n in item["pending"].items()) or "none"
        typer.echo(f"{item['topic']}: {item['total']} dead letters; not yet redriven: {waiting}")
        for c in item["counts"]:
            typer.echo(
                f"  {c['count']:>6}  {c['consumer_group']:<22} {c['error_type']:<14} {c['reason']}"
            )
    if not any(item["total"] for item in report):
        typer.echo("no dead letters")


@dlq_app.command("redrive")
def dlq_redrive(
    topic: str = typer.Argument(..., help="The dead-letter topic (or the topic it collects for)"),
    group: str | None = typer.Option(
        None, "--group", help="Only dead letters of this failed consumer group"
    ),
    reason_contains: str | None = typer.Option(
        None, "--reason-contains", help="Only dead letters whose reason contains this text"
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Count what would be sent; send none"),
    as_json: bool = _JSON,
    bootstrap: str | None = _BOOTSTRAP,
) -> None:
    """Send dead letters back to their original topic (original key, value and headers), once:
    what a run redrove is remembered, so running it again sends nothing new."""
    name = _dlq_name(topic)
    try:
        plans = asyncio.run(
            ops_kafka.redrive(
                _bootstrap(bootstrap),
                name,
                group=group,
                reason_contains=reason_contains,
                dry_run=dry_run,
            )
        )
    except ops.RedriveStateTooLarge as exc:
        _fail(exc)
    rows = [
        {
            "consumer_group": p.failed_group,
            "redriven": len(p.send),
            "already_redriven": p.already,
            "left_pending": p.left,
        }
        for p in plans
    ]
    total = sum(len(p.send) for p in plans)
    if as_json:
        typer.echo(json.dumps({"topic": name, "dry_run": dry_run, "groups": rows, "sent": total}))
        return
    verb = "would redrive" if dry_run else "redriven"
    for r in rows:
        typer.echo(
            f"{name} {r['consumer_group']}: {verb} {r['redriven']}, "
            f"already redriven {r['already_redriven']}, left pending {r['left_pending']}"
        )
    typer.echo(f"{verb} {total} in all" + (" (dry run: nothing sent)" if dry_run else ""))


def _rebuild(target: str, url: str | None) -> None:
    try:
        steps = ops_http.rebuild(_settings(), target, base_url=url)
    except ops_http.RebuildFailed as exc:
        _fail(exc)
    for step in steps:
        typer.echo(f"{step.url}: " + json.dumps(step.result, ensure_ascii=False))


_URL = typer.Option(None, "--url", help="The service's base URL (default: the local stack's).")


@rebuild_app.command("search")
def rebuild_search(url: str | None = _URL) -> None:
    """Rebuild the search indexes (articles, answered questions) from the compacted
    article.published and question.answered topics, with no downtime."""
    _rebuild("search", url)


@rebuild_app.command("publishing")
def rebuild_publishing(url: str | None = _URL) -> None:
    """Restore publishing's store from article.published (missing or older rows only; no event
    is emitted)."""
    _rebuild("publishing", url)


@edge_app.command("purge")
def edge_purge(
    keys: list[str] = typer.Argument(..., help="Surrogate keys, e.g. feed, site, article:<id>"),
    hard: bool = typer.Option(
        False,
        "--hard",
        help="Remove the objects (default: mark them stale, still served while the origin fails)",
    ),
) -> None:
    """Invalidate every cached page carrying one of the keys (what the purger does on events)."""
    try:
        count = purge_edge(_settings(), keys, hard=hard)
    except ComponentFailed as exc:
        _fail(exc)
    if count is None:
        _fail(RuntimeError("the edge cache does not run (portal stack up)"))
    typer.echo(f"{'removed' if hard else 'made stale'}: {count} objects")


@app.command("tls")
def tls_files(
    folder: Path = typer.Argument(..., help="Where to write them (keep it out of git)."),
    kafka_host: list[str] = typer.Option(
        ["localhost"],
        "--kafka-host",
        help="A name partners reach Kafka's partner listener by (repeat for several).",
    ),
    uid: int | None = typer.Option(
        None, "--uid", help="Give the private keys to this user (the containers run as 1000)."
    ),
) -> None:
    """A CA and the certificates docker-compose mounts: Kafka's partner listener (SASL_SSL) and
    OpenSearch (node and admin). Made once; kept while current (private keys 0600)."""
    made = [
        ensure_server_cert(folder, "kafka-server", [*kafka_host, "kafka"]),
        ensure_server_cert(folder, "opensearch-node", ["opensearch"], client_auth=True),
        ensure_server_cert(
            folder, "opensearch-admin", ["portal-opensearch-admin"], client_auth=True
        ),
    ]
    if uid is not None:
        os.chown(folder, uid, -1)
        for files in made:
            for path in (files.key_and_chain, files.key, files.cert, files.ca_cert):
                os.chown(path, uid, -1)
    typer.echo(f"CA certificate (give it to partners): {made[0].ca_cert}")
    for files in made:
        typer.echo(f"  {files.key_and_chain.name}, {files.key.name}, {files.cert.name}")


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
