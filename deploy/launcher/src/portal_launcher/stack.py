"""Brings the local stack up and down: components first, then migrations, then services."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from portal_contracts.topics import ALL_TOPICS
from portal_launcher.components.jaeger import JaegerComponent
from portal_launcher.components.kafka import (
    KafkaComponent,
    admin_client_options,
    ensure_service_access,
    ensure_topics,
)
from portal_launcher.components.opensearch import OpenSearchComponent
from portal_launcher.components.postgres import PostgresComponent
from portal_launcher.components.s3 import S3Component
from portal_launcher.components.varnish import VarnishComponent
from portal_launcher.credentials import service_secrets
from portal_launcher.ops_kafka import Assigned, describe_assignment, group_assignments
from portal_launcher.process import Component, ComponentFailed
from portal_launcher.services import (
    BACKENDS,
    KAFKA_PRINCIPALS,
    PROCESSES,
    ServiceProcess,
    process,
    running_instances,
    service_environment,
)
from portal_launcher.settings import StackSettings

Say = Callable[[str], None]


def infrastructure(settings: StackSettings) -> list[Component]:
    """What `stack up` starts: the trace backend too when asked (settings.traces)."""
    comps: list[Component] = [
        PostgresComponent(settings),
        S3Component(settings),
        KafkaComponent(settings),
        OpenSearchComponent(settings),
        VarnishComponent(settings),
    ]
    if settings.traces:
        comps.append(JaegerComponent(settings))
    return comps


def optional_components(settings: StackSettings) -> list[Component]:
    """Components started only when asked, but stopped, listed and shown whenever they run."""
    if settings.traces:
        return []
    return [JaegerComponent(settings)]


def services(
    settings: StackSettings,
    only: tuple[str, ...] = PROCESSES,
    instances: Mapping[str, int] | None = None,
) -> list[ServiceProcess]:
    """The processes of ``only``: ``instances[name]`` instances of a service named there, else
    every instance it has (instance 1 and the others this data folder runs)."""
    out: list[ServiceProcess] = []
    for name in only:
        count = (instances or {}).get(name)
        numbers = range(1, count + 1) if count else running_instances(settings, name)
        out.extend(process(settings, name, n) for n in numbers)
    return out


@dataclass
class Status:
    name: str
    running: bool
    pid: int | None
    endpoint: str
    version: str
    detail: str


def _start_all(components: list[Component], say: Say) -> None:
    """Start every process first (they boot in parallel), then wait for each to answer."""
    started = time.monotonic()
    for comp in components:
        if comp.is_running():
            say(f"  {comp.name}: already running (pid {comp.pid()})")
            continue
        say(f"  {comp.name}: starting")
        comp.start()
    failures: list[str] = []
    for comp in components:
        try:
            comp.wait_ready()
            comp.after_ready()
            say(f"  {comp.name}: ready at {comp.endpoint()} ({time.monotonic() - started:.1f}s)")
        except ComponentFailed as exc:
            failures.append(str(exc))
            say(f"  {comp.name}: FAILED")
    if failures:
        raise ComponentFailed("\n\n".join(failures))


def stack_up(settings: StackSettings, say: Say = print) -> None:
    say(f"Local stack in {settings.data_dir}")
    comps = infrastructure(settings)
    _start_all(comps, say)
    asyncio.run(ensure_topics(settings, ALL_TOPICS))
    say(f"  kafka: {len(ALL_TOPICS)} topics from the contracts registry present")
    ensure_service_access(
        settings,
        {name: service_secrets(settings, name).kafka_password for name in KAFKA_PRINCIPALS},
    )
    say(f"  kafka: {len(KAFKA_PRINCIPALS)} service users, each with the ACLs of its own topics")


def stack_down(settings: StackSettings, say: Say = print) -> None:
    comps = [*optional_components(settings), *infrastructure(settings)]
    for comp in [*services(settings), *reversed(comps)]:
        if comp.stop():
            say(f"  {comp.name}: stopped")


def migrate(settings: StackSettings, say: Say = print) -> None:
    """Run every service's Alembic migrations against its own database."""
    import importlib

    from portal_runtime.db import run_migrations

    for name in BACKENDS:
        module = importlib.import_module(f"portal_{name}.app")
        run_migrations(module.MIGRATIONS, service_environment(settings, name)["DATABASE_URL"])
        say(f"  {name}: database migrated")


def services_up(
    settings: StackSettings,
    only: tuple[str, ...] = PROCESSES,
    say: Say = print,
    instances: Mapping[str, int] | None = None,
) -> None:
    """Start ``only`` (``instances[name]`` instances of those named there, one of the others),
    and stop the instances beyond the count asked for (a scale-down: SIGTERM, drained)."""
    counts = {name: (instances or {}).get(name, 1) for name in only}
    _start_all(list[Component](services(settings, only, counts)), say)
    for name, count in (instances or {}).items():
        for n in running_instances(settings, name):
            if n > count and process(settings, name, n).stop():
                say(f"  {process(settings, name, n).name}: stopped (scaled to {count})")


def services_down(settings: StackSettings, say: Say = print) -> None:
    for comp in services(settings):
        if comp.stop():
            say(f"  {comp.name}: stopped")


def status(settings: StackSettings) -> list[Status]:
    out: list[Status] = []
    optional = [c for c in optional_components(settings) if c.is_running()]
    kafka = KafkaComponent(settings)
    assigned: dict[str, list[Assigned]] = {}
    if kafka.is_running():
        with contextlib.suppress(Exception):  # partitions are a bonus; the table comes first
            assigned = group_assignments(admin_client_options(settings))
    for comp in [*infrastructure(settings), *optional, *services(settings)]:
        running = comp.is_running()
        version, detail = "", "stopped"
        if running:
            try:
                ok = comp.probe()
            except Exception:
                ok = False
            detail = "answering" if ok else "not answering"
            if isinstance(comp, ServiceProcess):
                detail = comp.readiness()
                held = assigned.get(comp.instance_id)
                if held:
                    detail += "; " + describe_assignment(held)
            try:
                version = comp.version() if ok else ""
            except Exception as exc:
                version = f"? ({type(exc).__name__})"
        out.append(Status(comp.name, running, comp.pid(), comp.endpoint(), version, detail))
    return out


def all_components(settings: StackSettings) -> list[Component]:
    return [*infrastructure(settings), *optional_components(settings), *services(settings)]


def component(settings: StackSettings, name: str) -> Component:
    """One component ("kafka", "postgres", "opensearch", "s3", "varnish", "jaeger") or service
    ("ingest", "edge-purger")."""
    for comp in all_components(settings):
        if comp.name in (name, f"service-{name}"):
            return comp
    raise KeyError(f"no component or service named {name!r}")


def start_one(settings: StackSettings, name: str, say: Say = print) -> None:
    """Start one component or service (after a `stop`/`kill` of it) and wait until it answers."""
    _start_all([component(settings, name)], say)


def stop_one(settings: StackSettings, name: str) -> bool:
    """Stop one component or service the usual way; the rest of the stack keeps running."""
    return component(settings, name).stop()
