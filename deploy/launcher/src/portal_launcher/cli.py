"""`portal`: the local stack and the six services, on loopback, without Docker.

portal up [--with-traces]      stack + migrations + services + demo data, prints the URLs
portal down                    stops everything this data folder started
portal stack up [--with-traces]|down|status|logs
                               --with-traces (or PORTAL_STACK_TRACES=1) also runs Jaeger, the
                               trace backend, and the services send it their traces and metrics
portal services up|down
portal migrate
"""

from __future__ import annotations

import subprocess
import sys
import time
from typing import Any

import typer

from portal_launcher import seed, stack
from portal_launcher.components.jaeger import JaegerComponent
from portal_launcher.process import ComponentFailed
from portal_launcher.services import SERVICES, service_port
from portal_launcher.settings import StackSettings

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
stack_app = typer.Typer(no_args_is_help=True, help="Kafka, OpenSearch, PostgreSQL and S3.")
services_app = typer.Typer(no_args_is_help=True, help="The six portal services.")
app.add_typer(stack_app, name="stack")
app.add_typer(services_app, name="services")


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
        stack.migrate(settings)
        stack.services_up(settings)
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


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
