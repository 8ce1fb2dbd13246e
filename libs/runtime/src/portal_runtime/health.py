"""``/healthz`` (the process answers) and ``/readyz`` (every dependency really answers)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel

Check = Callable[[], Awaitable[None]]


class CheckResult(BaseModel):
    ok: bool
    latency_ms: float
    error: str | None = None


class Readiness(BaseModel):
    status: str
    service: str
    checks: dict[str, CheckResult]


async def _run(check: Check, timeout_s: float) -> CheckResult:
    start = time.perf_counter()
    try:
        await asyncio.wait_for(check(), timeout=timeout_s)
        return CheckResult(ok=True, latency_ms=round((time.perf_counter() - start) * 1000, 1))
    except Exception as exc:
        return CheckResult(
            ok=False,
            latency_ms=round((time.perf_counter() - start) * 1000, 1),
            error=f"{type(exc).__name__}: {exc}"[:300] or type(exc).__name__,
        )


def health_router(
    service: str,
    checks: Mapping[str, Check],
    timeout_s: float = 3.0,
    draining: Callable[[], bool] = lambda: False,
) -> APIRouter:
    """``draining``: true once the process shuts down; /readyz then fails at once, so load
    balancers stop sending it requests while it finishes what it has."""
    router = APIRouter(tags=["health"])

    @router.get("/healthz", summary="The process is alive")
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": service}

    @router.get(
        "/readyz",
        summary="Every dependency answers",
        response_model=Readiness,
        responses={
            503: {
                "model": Readiness,
                "description": "A dependency does not answer, or the process shuts down",
            }
        },
    )
    async def readyz() -> JSONResponse:
        if draining():
            body = Readiness(status="draining", service=service, checks={})
            return JSONResponse(body.model_dump(), status_code=503)
        names = list(checks)
        results = await asyncio.gather(*(_run(checks[n], timeout_s) for n in names))
        by_name = dict(zip(names, results, strict=True))
        ready = all(r.ok for r in results)
        body = Readiness(
            status="ready" if ready else "unavailable", service=service, checks=by_name
        )
        return JSONResponse(body.model_dump(), status_code=200 if ready else 503)

    return router
