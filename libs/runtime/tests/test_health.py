"""Readiness reports each dependency and answers 503 when one does not answer."""

from __future__ import annotations

import asyncio

import httpx
from fastapi import FastAPI

from portal_runtime.health import health_router


async def _ok() -> None:
    return None


async def _down() -> None:
    raise ConnectionError("connection refused")


async def _hangs() -> None:
    await asyncio.sleep(30)


def _client(checks: dict) -> httpx.AsyncClient:
    app = FastAPI()
    app.include_router(health_router("demo", checks, timeout_s=0.2))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


async def test_ready_when_every_check_passes() -> None:
    async with _client({"database": _ok, "kafka": _ok}) as client:
        resp = await client.get("/readyz")
    assert resp.status_code == 200
    assert resp.json()["checks"]["kafka"]["ok"] is True


async def test_unavailable_names_the_failing_dependency() -> None:
    async with _client({"database": _ok, "kafka": _down, "opensearch": _hangs}) as client:
        resp = await client.get("/readyz")
        live = await client.get("/healthz")
    assert resp.status_code == 503
    body = resp.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"]["ok"] is True
    assert "connection refused" in body["checks"]["kafka"]["error"]
    assert body["checks"]["opensearch"]["error"].startswith("TimeoutError")
    assert live.status_code == 200  # alive even when a dependency is down


async def test_readiness_fails_at_once_when_the_process_drains() -> None:
    state = {"draining": False}
    app = FastAPI()
    app.include_router(
        health_router("demo", {"kafka": _ok}, timeout_s=0.2, draining=lambda: state["draining"])
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        before = await client.get("/readyz")
        state["draining"] = True
        during = await client.get("/readyz")
        live = await client.get("/healthz")
    assert before.status_code == 200
    assert during.status_code == 503
    assert during.json()["status"] == "draining"
    assert live.status_code == 200  # alive while it finishes its work
