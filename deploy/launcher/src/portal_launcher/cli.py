"""`portal`: the local stack and the six services, on loopback, without Docker.

portal up [--with-traces]      stack + migrations + services + demo data, prints the URLs
portal down                    stops everything this data folder started
portal stack up [--with-traces]|down|status|logs
                               --with-traces (or PORTAL_STACK_TRACES=1) also runs Jaeger, the
                               trace backend, and the services send it their traces and metrics
portal services up|down
portal migrate
portal lag [--group G] [--json]  consumer lag per group, topic and partition
portal dlq list [TOPIC] | redrive TOPIC [--group G] [--reason-contains S] [--dry-run]
portal rebuild search | publishing
                               rebuild a read model or store from the log, through its service
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from typing import Any

import typer

from portal_launcher import ops, ops_http, ops_kafka, seed, stack
from portal_launcher.components.jaeger import JaegerComponent
from portal_launcher.process import ComponentFailed
from portal_launcher.services import SERVICES, service_port
from portal_launcher.settings import StackSettings

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
stack_app = typer.Typer(no_args_is_help=True, help="Kafka, OpenSearch, PostgreSQL and S3.")
services_app = typer.Typer(no_args_is_help=True, help="The six portal services.")
app.add_typer(stack_app, name="stack")
app.add_typer(services_app, name="services")
dlq_app = typer.Typer(no_args_is_help=True, help="Dead letters: count them, redrive them.")
rebuild_app = typer.Typer(no_args_is_help=True, help="Rebuild a read model or store.")
app.add_typer(dlq_app, name="dlq")
app.add_typer(rebuild_app, name="rebuild")


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
    typer.echo(f"{'component':<20} {'pid':>8}  {'endpoint':<28} {'version':<12} state")
    for r in rows:
        pid = str(r.pid) if r.pid else "-"
        typer.echo(f"{r.name:<20} {pid:>8}  {r.endpoint:<28} {r.version:<12} {r.detail}")


@stack_app.command("logs")
def stack_logs(
    component: str = typer.Argument(
        ..., help="e.g. kafka, opensearch, postgres, s3, jaeger, service-ingest"
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
    only: list[str] = typer.Option(list(SERVICES), "--only", help="Start only these services"),
) -> None:
    """Start the services (the stack must be up) and wait for /readyz."""
    try:
        stack.services_up(_settings(), tuple(only))
    except ComponentFailed as exc:
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
            f"topic {kafka['topic']} at {kafka['bootstrap_servers']} ({kafka['mechanism']})"
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
    for name in SERVICES:
        base = f"http://{settings.host}:{service_port(settings, name)}"
        typer.echo(f"  {name:<11} {base}/docs   (ready: {base}/readyz)")
    typer.echo(
        f"  kafka       {settings.kafka_bootstrap} (partners, SASL/SCRAM: "
        f"{settings.kafka_sasl_bootstrap})"
    )
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
    None, "--bootstrap", help="Kafka bootstrap servers (default: the local stack's)."
)
_JSON = typer.Option(False, "--json", help="Print JSON instead of a table.")


def _bootstrap(value: str | None) -> str:
    return value or _settings().kafka_bootstrap


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


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
