"""Fuzzing fixtures: the six services run as real processes on the test stack, with credentials
that reach past authentication (admin token, a partner API key, an editor's bearer token).

The budget is fixed and the generation seeded, so a CI run is reproducible; both can be changed
with FUZZ_MAX_EXAMPLES (API examples per operation), FUZZ_MESSAGES (bad messages per topic) and
FUZZ_SEED. The terminal summary says how many requests and messages were tried.
"""

from __future__ import annotations

import os
import secrets
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from portal_launcher import stack as launcher
from portal_launcher.credentials import admin_token as service_admin_token
from portal_launcher.seed import seed as load_structure
from portal_launcher.services import SERVICES, service_port
from portal_launcher.settings import StackSettings
from tests.support import OutsideClient

FUZZ_SEED = int(os.environ.get("FUZZ_SEED", "20260901"))
FUZZ_MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "8"))
FUZZ_MESSAGES = int(os.environ.get("FUZZ_MESSAGES", "30"))

# Requests sent per service, and bad messages produced per topic (summary at the end).
REQUESTS: Counter[str] = Counter()
RESPONSES: dict[str, Counter[int]] = {}
MESSAGES: Counter[str] = Counter()
DEAD_LETTERS: Counter[str] = Counter()

# The partner agency the fuzzer's API key belongs to (a source of deploy/seed/sources.yaml).
FUZZ_SOURCE = "van-phong-trung-uong"

# Rate limits would answer most fuzzed submissions with 429 before their bodies are validated.
_NO_RATE_LIMITS = {
    "PORTAL_ENGAGEMENT_RATE_LIMIT_SUBMIT_PER_IP": "",
    "PORTAL_ENGAGEMENT_RATE_LIMIT_SUBMIT_PER_IDENTITY": "",
    "PORTAL_ENGAGEMENT_RATE_LIMIT_REPORT_PER_IP": "",
    "PORTAL_ENGAGEMENT_RATE_LIMIT_READ_PER_IP": "",
    # The fuzzer's wrong sign-ins come from loopback, as do later suites' sign-ins in one run.
    "PORTAL_MODERATION_LOGIN_MAX_FAILURES_PER_ADDRESS": "0",
    # ... and the per-client limits every service's API shares (portal_runtime.overload).
    **{
        f"PORTAL_{name.upper()}_{limit}": ""
        for name in SERVICES
        for limit in ("RATE_LIMIT_PER_IP", "RATE_LIMIT_PER_API_KEY")
    },
}


@dataclass
class FuzzPortal:
    settings: StackSettings
    http: httpx.Client = field(default_factory=lambda: OutsideClient(timeout=30.0))
    partner_key: str = ""
    editor_token: str = ""

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

    def make_editor_token(self, role: str) -> str:
        username = f"fuzz{secrets.token_hex(4)}"
        password = secrets.token_urlsafe(16)
        self.admin(
            "PUT",
            "moderation",
            f"/admin/v1/users/{username}",
            {"password": password, "role": role, "display_name": username},
        )
        resp = self.http.post(
            self.url("moderation", "/v1/auth/token"),
            json={"username": username, "password": password},
        )
        assert resp.status_code == 200, resp.text
        token: str = resp.json()["access_token"]
        return token

    def auth_headers(self, service: str, path: str) -> dict[str, str]:
        """The credentials an operation needs, so fuzzing reaches the code behind them."""
        token = ""
        if path.startswith("/admin/") or path == "/metrics":
            token = self.admin_token(service)
        elif service == "ingest" and path.startswith("/v1/"):
            token = self.partner_key
        elif service == "moderation" and path.startswith("/v1/") and path != "/v1/auth/logout":
            token = self.editor_token  # logout would end the session every other call uses
        return {"Authorization": f"Bearer {token}"} if token else {}


# Package scope: the services restart without rate limits for these tests only, and the limits
# are back (the environment restored, the services stopped) before any later suite starts them.
@pytest.fixture(scope="package")
def fuzz_portal(stack_settings: StackSettings) -> Iterator[FuzzPortal]:
    saved = {k: os.environ.get(k) for k in _NO_RATE_LIMITS}
    os.environ.update(_NO_RATE_LIMITS)
    # Always (re)started here: services already running (another suite's, a developer's) were
    # started with their rate limits on, and would answer most fuzzed requests with 429.
    try:
        launcher.services_down(stack_settings, say=lambda _: None)
        launcher.services_up(stack_settings, say=lambda _: None)
        load_structure(stack_settings, demo=False, say=lambda _: None)
        portal = FuzzPortal(stack_settings)
        portal.partner_key = portal.admin(
            "POST", "ingest", f"/admin/v1/sources/{FUZZ_SOURCE}/api-keys", {}
        )["api_key"]
        portal.editor_token = portal.make_editor_token("chief_editor")
        yield portal
    finally:
        launcher.services_down(stack_settings, say=lambda _: None)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # schemathesis' lazy schemas read `node._nodeid`, which pytest 9.2 no longer has.
    for item in items:
        if not hasattr(item, "_nodeid"):
            item._nodeid = item.nodeid  # type: ignore[attr-defined]


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not REQUESTS and not MESSAGES:
        return
    write = terminalreporter.write_line
    terminalreporter.section("fuzzing")
    write(
        f"seed {FUZZ_SEED}, {FUZZ_MAX_EXAMPLES} examples per operation, "
        f"{FUZZ_MESSAGES} bad messages per topic"
    )
    for service in SERVICES:
        if service in REQUESTS:
            codes = ", ".join(f"{c}: {n}" for c, n in sorted(RESPONSES[service].items()))
            write(f"  {service}: {REQUESTS[service]} requests ({codes})")
    if REQUESTS:
        write(f"  HTTP total: {sum(REQUESTS.values())} requests")
    for topic, count in sorted(MESSAGES.items()):
        write(f"  {topic}: {count} messages, {DEAD_LETTERS[topic]} dead letters checked")
    if MESSAGES:
        write(f"  Kafka total: {sum(MESSAGES.values())} messages")
