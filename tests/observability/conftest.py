"""The six services as processes on the test stack, sending traces and metrics to the stack's own
trace backend (Jaeger, started here when the stack runs without it), as `portal up --with-traces`
does. Tests read traces through Jaeger's query API and metrics from each service's /metrics.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from portal_launcher import stack as launcher
from portal_launcher.components.jaeger import JaegerComponent
from portal_launcher.credentials import admin_token as service_admin_token
from portal_launcher.seed import seed as load_structure
from portal_launcher.services import service_port
from portal_launcher.settings import StackSettings
from tests.support import OutsideClient


@dataclass
class ObservedPortal:
    settings: StackSettings
    http: httpx.Client = field(default_factory=lambda: OutsideClient(timeout=30.0))

    def admin_token(self, service: str) -> str:
        """``service``'s own admin token (each service has its own)."""
        return service_admin_token(self.settings, service)

    def url(self, service: str, path: str = "") -> str:
        return f"http://{self.settings.host}:{service_port(self.settings, service)}{path}"

    @property
    def jaeger(self) -> str:
        return self.settings.jaeger_ui_url

    def admin(self, method: str, service: str, path: str, body: Any = None) -> Any:
        resp = self.http.request(
            method,
            self.url(service, path),
            json=body,
            headers={"Authorization": f"Bearer {self.admin_token(service)}"},
        )
        assert resp.status_code < 300, f"{method} {path}: {resp.status_code} {resp.text}"
        return resp.json() if resp.content else None

    def api_key(self, source: str) -> str:
        key: str = self.admin("POST", "ingest", f"/admin/v1/sources/{source}/api-keys", {})[
            "api_key"
        ]
        return key

    def metrics(self, service: str) -> str:
        resp = self.http.get(self.url(service, "/metrics"))
        assert resp.status_code == 200, resp.text
        return resp.text

    def wait_for(
        self, check: Callable[[], Any], timeout_s: float = 90.0, what: str = "condition"
    ) -> Any:
        deadline = time.monotonic() + timeout_s
        last: Any = None
        while time.monotonic() < deadline:
            last = check()
            if last:
                return last
            time.sleep(0.5)
        raise AssertionError(f"timed out after {timeout_s}s waiting for {what}; last: {last!r}")


# Package scope: the deep tracing settings end with these tests, before a later suite starts
# the services again.
@pytest.fixture(scope="package")
def observed(stack_settings: StackSettings) -> Iterator[ObservedPortal]:
    jaeger = JaegerComponent(stack_settings)
    started_jaeger = not jaeger.is_running()
    if started_jaeger:
        jaeger.start()  # builds it first when the binary is not cached yet
        jaeger.wait_ready()
    saved = {
        k: os.environ.get(k)
        for k in (
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "OTEL_BSP_SCHEDULE_DELAY",
            "OTEL_BSP_MAX_QUEUE_SIZE",
            "TRACE_SQL_STATEMENTS",
        )
    }
    # The services export to Jaeger, as the launcher does when it runs; spans leave quickly.
    os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = stack_settings.jaeger_otlp_endpoint
    os.environ["OTEL_BSP_SCHEDULE_DELAY"] = "300"
    # A busy test machine makes many spans: a large queue so none are dropped before export.
    os.environ["OTEL_BSP_MAX_QUEUE_SIZE"] = "100000"
    # The deep look an SRE turns on: a span per SQL statement (off by default).
    os.environ["TRACE_SQL_STATEMENTS"] = "true"
    launcher.services_down(stack_settings, say=lambda _: None)
    try:
        launcher.services_up(stack_settings, say=lambda _: None)
        load_structure(stack_settings, demo=False, say=lambda _: None)
        yield ObservedPortal(stack_settings)
    finally:
        launcher.services_down(stack_settings, say=lambda _: None)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        if started_jaeger:
            jaeger.stop()


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(5)}"
