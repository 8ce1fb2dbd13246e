"""End-to-end fixtures: the six services run as real processes on the test stack.

Spans from every service are exported to an in-test OTLP receiver, so a test can follow one
article's trace across all of them.
"""

from __future__ import annotations

import functools
import os
import secrets
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from portal_launcher import stack as launcher
from portal_launcher.credentials import admin_token as service_admin_token
from portal_launcher.seed import load_seed
from portal_launcher.seed import seed as load_structure
from portal_launcher.services import service_port
from portal_launcher.settings import StackSettings
from tests.e2e.otlp_receiver import OtlpReceiver
from tests.support import OutsideClient


@dataclass
class Portal:
    settings: StackSettings
    traces: OtlpReceiver
    http: httpx.Client = field(default_factory=lambda: OutsideClient(timeout=30.0))

    def admin_token(self, service: str) -> str:
        """``service``'s own admin token (each service has its own)."""
        return service_admin_token(self.settings, service)

    def url(self, service: str, path: str = "") -> str:
        return f"http://{self.settings.host}:{service_port(self.settings, service)}{path}"

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

    def editor_token(self, role: str = "editor", source: str | None = None) -> str:
        username = f"{role.replace('_', '')}{secrets.token_hex(4)}"
        password = secrets.token_urlsafe(16)
        body: dict[str, Any] = {"password": password, "role": role, "display_name": username}
        if source:
            body["source"] = source
        self.admin("PUT", "moderation", f"/admin/v1/users/{username}", body)
        resp = self.http.post(
            self.url("moderation", "/v1/auth/token"),
            json={"username": username, "password": password},
        )
        assert resp.status_code == 200, resp.text
        token: str = resp.json()["access_token"]
        return token

    def wait_for(self, check: Any, timeout_s: float = 60.0, what: str = "condition") -> Any:
        deadline = time.monotonic() + timeout_s
        last: Any = None
        while time.monotonic() < deadline:
            last = check()
            if last:
                return last
            time.sleep(0.25)
        raise AssertionError(f"timed out after {timeout_s}s waiting for {what}; last: {last!r}")


class PartnerImages:
    """A partner's image server on loopback (normalize is allowed to fetch from it)."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="e2e-images-"))
        handler = functools.partial(_QuietFiles, directory=str(self.folder))
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def add(self, name: str, data: bytes) -> str:
        (self.folder / name).write_bytes(data)
        return f"http://{self.host}/{name}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        shutil.rmtree(self.folder, ignore_errors=True)


class _QuietFiles(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="session")
def partner_images() -> Iterator[PartnerImages]:
    images = PartnerImages()
    os.environ["PORTAL_NORMALIZE_IMAGE_FETCH_ALLOW_HOSTS"] = images.host
    try:
        yield images
    finally:
        os.environ.pop("PORTAL_NORMALIZE_IMAGE_FETCH_ALLOW_HOSTS", None)
        images.stop()


@pytest.fixture(scope="session")
def portal(stack_settings: StackSettings, partner_images: PartnerImages) -> Iterator[Portal]:
    receiver = OtlpReceiver().start()
    os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = receiver.endpoint
    os.environ["OTEL_BSP_SCHEDULE_DELAY"] = "300"
    # A busy test machine makes many spans: a large queue so none are dropped before export.
    os.environ["OTEL_BSP_MAX_QUEUE_SIZE"] = "100000"
    launcher.services_down(stack_settings, say=lambda _: None)
    try:
        launcher.services_up(stack_settings, say=lambda _: None)
        load_structure(stack_settings, demo=False, say=lambda _: None)
        yield Portal(stack_settings, receiver)
    finally:
        launcher.services_down(stack_settings, say=lambda _: None)
        receiver.stop()
        os.environ.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
        os.environ.pop("OTEL_BSP_SCHEDULE_DELAY", None)
        os.environ.pop("OTEL_BSP_MAX_QUEUE_SIZE", None)


@pytest.fixture(scope="session")
def seed_data() -> tuple[dict[str, Any], dict[str, Any]]:
    return load_seed()
