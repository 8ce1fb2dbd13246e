"""Backpressure of the public read API on the real stack: one reader address that floods gets
429 with Retry-After; another reader is still served, and so are probes. The app runs
in-process with a tiny per-address limit (the setting SREs would tune)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from portal_launcher.services import service_environment
from portal_launcher.settings import StackSettings
from portal_publishing.app import create_app
from portal_publishing.settings import Settings

pytestmark = pytest.mark.stack


@pytest.fixture(scope="module")
async def app(stack_settings: StackSettings) -> AsyncIterator[FastAPI]:
    env = {k.lower(): v for k, v in service_environment(stack_settings, "publishing").items()}
    settings = Settings(**{**env, "rate_limit_per_ip": "5/minute"})  # type: ignore[arg-type]
    application = create_app(settings)
    async with LifespanManager(application, startup_timeout=120, shutdown_timeout=60):
        yield application


def reader(app: FastAPI, address: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(address, 52000))
    return httpx.AsyncClient(transport=transport, base_url="http://publishing")


async def test_a_flooding_reader_gets_429_while_another_reader_is_served(app: FastAPI) -> None:
    async with reader(app, "203.0.113.10") as flood, reader(app, "203.0.113.20") as other:
        served = [await flood.get("/v1/site") for _ in range(5)]
        assert [r.status_code for r in served] == [200] * 5
        refused = await flood.get("/v1/home")
        assert refused.status_code == 429
        retry_after = int(refused.headers["Retry-After"])
        assert 1 <= retry_after <= 60
        assert refused.headers["Cache-Control"] == "no-store"  # never cached by a CDN
        body = refused.json()
        assert body == {
            "detail": body["detail"],
            "reason": "rate_limited",
            "scope": "ip",
            "limit": "5 per 1 minute",
            "retry_after_s": retry_after,
        }
        assert "network address" in body["detail"]

        assert (await other.get("/v1/site")).status_code == 200
        # Probes and scrapes from the flooding address are never limited.
        assert (await flood.get("/healthz")).status_code == 200
        assert (await flood.get("/metrics")).status_code == 200


async def test_forwarded_for_from_an_untrusted_peer_does_not_reset_the_budget(
    app: FastAPI,
) -> None:
    async with reader(app, "203.0.113.30") as client:
        for i in range(5):
            resp = await client.get("/v1/site", headers={"X-Forwarded-For": f"192.0.2.{i}"})
            assert resp.status_code == 200
        spoofed = await client.get("/v1/site", headers={"X-Forwarded-For": "192.0.2.99"})
        assert spoofed.status_code == 429
