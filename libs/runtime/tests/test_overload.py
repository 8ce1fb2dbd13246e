"""Backpressure without I/O: window maths, client identity, Retry-After, and the middleware
in front of a small ASGI app (the services' wiring is tested against the stack)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from portal_runtime.overload import (
    Overload,
    OverloadPolicy,
    bearer_token,
    client_checks,
    is_exempt,
    token_digest,
)
from portal_runtime.ratelimit import RateLimiter, parse_rules, retry_after_s
from portal_runtime.settings import ServiceSettings

# -- window maths --------------------------------------------------------------------------


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock(1_000_000.0)
    monkeypatch.setattr(time, "time", fake)
    return fake


def test_retry_after_rounds_up_and_is_at_least_one_second() -> None:
    assert retry_after_s(reset_time=110.2, now=100.0) == 11
    assert retry_after_s(reset_time=110.0, now=100.0) == 10
    assert retry_after_s(reset_time=100.0, now=100.0) == 1
    assert retry_after_s(reset_time=99.0, now=100.0) == 1


def test_moving_window_frees_a_slot_when_the_oldest_hit_leaves_it(clock: Clock) -> None:
    limiter = RateLimiter()
    rules = parse_rules("3/minute")
    for _ in range(3):
        assert limiter.hit("ip", "a", rules) is None
        clock.now += 10  # hits at t=0, 10, 20
    clock.now = 1_000_000.0 + 30
    refusal = limiter.hit("ip", "a", rules)
    # The window moves: the first hit (t=0) leaves it at t=60, 30 s from now.
    assert refusal is not None and refusal.retry_after_s == 30
    clock.now = 1_000_000.0 + 60.5
    assert limiter.hit("ip", "a", rules) is None
    # Now the hits at 10, 20 and 60.5 fill it: the next slot frees at 70.
    refusal = limiter.hit("ip", "a", rules)
    assert refusal is not None and refusal.retry_after_s == 10


def test_rate_limiter_refuses_with_retry_after_and_counts_nothing_refused() -> None:
    limiter = RateLimiter()
    rules = parse_rules("3/minute;5/hour")
    assert [limiter.hit("ip", "1.2.3.4", rules) for _ in range(3)] == [None, None, None]
    refusal = limiter.hit("ip", "1.2.3.4", rules)
    assert refusal is not None and refusal.limit.startswith("3 per 1 minute")
    assert 1 <= refusal.retry_after_s <= 60
    assert "retry in" in refusal.message and "network address" in refusal.message
    # Another client is not affected; a refusal does not eat the hour's budget.
    assert limiter.hit("ip", "5.6.7.8", rules) is None
    assert parse_rules("") == []
    with pytest.raises(ValueError):
        parse_rules("ten per minute")


def test_a_refused_check_counts_none_of_the_others() -> None:
    limiter = RateLimiter()
    one = parse_rules("1/minute")
    many = parse_rules("100/minute")
    assert limiter.hit("api_key", "k", one) is None
    refusal = limiter.hit_all([("ip", "addr", many), ("api_key", "k", one)])
    assert refusal is not None and refusal.scope == "api_key"
    assert "API key" in refusal.message
    # The address was not charged for the refused request: 100 more pass.
    assert all(limiter.hit("ip", "addr", many) is None for _ in range(100))


def test_a_request_of_many_items_costs_as_many_and_a_refused_cost_counts_nothing() -> None:
    limiter = RateLimiter()
    for rules in (parse_rules("5/minute"), parse_rules("5/minute;50/hour")):
        key = str(len(rules))
        assert limiter.hit("api_key", key, rules, cost=3) is None
        refused = limiter.hit("api_key", key, rules, cost=3)
        assert refused is not None and refused.scope == "api_key"
        # Nothing of the refused cost was counted: two single requests still fit.
        assert limiter.hit("api_key", key, rules) is None
        assert limiter.hit("api_key", key, rules) is None
        assert limiter.hit("api_key", key, rules) is not None


# -- client identity ---------------------------------------------------------------------------


def test_bearer_token_is_read_from_the_authorization_header_only() -> None:
    assert bearer_token([(b"authorization", b"Bearer pk_ab_cd")]) == "pk_ab_cd"
    assert bearer_token([(b"authorization", b"bearer  tok ")]) == "tok"
    assert bearer_token([(b"authorization", b"Basic dXNlcjpwdw==")]) is None
    assert bearer_token([(b"authorization", b"Bearer ")]) is None
    assert bearer_token([(b"x-api-key", b"tok")]) is None


def test_a_key_is_counted_by_its_digest_never_by_the_secret() -> None:
    policy = OverloadPolicy(per_ip=parse_rules("10/minute"), per_api_key=parse_rules("5/minute"))
    checks = client_checks(policy, "198.51.100.7", "pk_0123_secret")
    assert [(scope, key) for scope, key, _ in checks] == [
        ("ip", "198.51.100.7"),
        ("api_key", token_digest("pk_0123_secret")),
    ]
    assert "secret" not in token_digest("pk_0123_secret")
    assert token_digest("a") != token_digest("b")
    # Without a token only the address counts; without per-key rules, tokens do not matter.
    assert [s for s, _, _ in client_checks(policy, "198.51.100.7", None)] == ["ip"]
    only_ip = OverloadPolicy(per_ip=parse_rules("10/minute"))
    assert [s for s, _, _ in client_checks(only_ip, "198.51.100.7", "tok")] == ["ip"]


def test_health_metrics_and_the_admin_api_with_the_admin_token_are_exempt() -> None:
    assert is_exempt("/healthz", None, "adm")
    assert is_exempt("/readyz", None, "")
    assert is_exempt("/metrics", "anything", "adm")
    assert is_exempt("/admin/v1/sources", "adm", "adm")
    # A wrong or missing admin token is an ordinary client, and so is any other path.
    assert not is_exempt("/admin/v1/sources", "guess", "adm")
    assert not is_exempt("/admin/v1/sources", None, "adm")
    assert not is_exempt("/admin/v1/sources", "", "")
    assert not is_exempt("/v1/articles", "adm", "adm")
    assert not is_exempt("/healthz/x", None, "adm")


def test_settings_take_rules_and_refuse_malformed_ones() -> None:
    settings = ServiceSettings(rate_limit_per_ip="2/second;10/minute", max_in_flight_requests=0)
    policy = OverloadPolicy.from_settings(settings)
    assert [str(r) for r in policy.per_ip] == ["2 per 1 second", "10 per 1 minute"]
    assert policy.enabled
    off = OverloadPolicy.from_settings(ServiceSettings(max_in_flight_requests=0))
    assert not off.enabled
    with pytest.raises(ValidationError, match="rate_limit_per_api_key"):
        ServiceSettings(rate_limit_per_api_key="lots")


# -- the middleware in front of an app -----------------------------------------------------


class SlowApp:
    """An app whose /slow requests wait until the test lets them go."""

    def __init__(self) -> None:
        self.inside = 0
        self.expected = 2
        self.all_inside = asyncio.Event()
        self.gate = asyncio.Event()

        async def slow(request: Request) -> JSONResponse:
            self.inside += 1
            if self.inside >= self.expected:
                self.all_inside.set()
            await self.gate.wait()
            return JSONResponse({"ok": True})

        async def fast(request: Request) -> JSONResponse:
            return JSONResponse({"client": request.client.host if request.client else None})

        self.app = Starlette(
            routes=[
                Route("/slow", slow),
                Route("/v1/fast", fast),
                Route("/healthz", fast),
                Route("/admin/v1/x", fast),
            ]
        )


def client_for(app: Any, address: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, client=(address, 40000)), base_url="http://svc"
    )


async def test_one_flooding_client_gets_429_while_another_is_served() -> None:
    target = SlowApp()
    app = Overload(target.app, OverloadPolicy(per_ip=parse_rules("3/minute")))
    async with client_for(app, "203.0.113.1") as flood, client_for(app, "203.0.113.2") as other:
        assert [(await flood.get("/v1/fast")).status_code for _ in range(3)] == [200] * 3
        refused = await flood.get("/v1/fast")
        assert refused.status_code == 429
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        body = refused.json()
        assert body["reason"] == "rate_limited" and body["scope"] == "ip"
        assert body["retry_after_s"] == int(refused.headers["retry-after"])
        assert (await other.get("/v1/fast")).status_code == 200
        assert (await flood.get("/healthz")).status_code == 200


async def test_requests_beyond_the_in_flight_cap_are_shed_at_once() -> None:
    target = SlowApp()
    app = Overload(target.app, OverloadPolicy(max_in_flight=2, retry_after_s=3, admin_token="adm"))
    async with client_for(app, "203.0.113.9") as client:
        held = [asyncio.create_task(client.get("/slow")) for _ in range(2)]
        await target.all_inside.wait()
        shed = await client.get("/v1/fast")
        assert shed.status_code == 503
        assert shed.headers["retry-after"] == "3"
        assert shed.json()["reason"] == "overloaded"
        # Probes and operators still get through.
        assert (await client.get("/healthz")).status_code == 200
        admin = {"Authorization": "Bearer adm"}
        assert (await client.get("/admin/v1/x", headers=admin)).status_code == 200
        assert (await client.get("/admin/v1/x")).status_code == 503
        target.gate.set()
        assert [(await t).status_code for t in held] == [200, 200]
        assert (await client.get("/v1/fast")).status_code == 200
    assert app.in_flight == 0


async def test_forwarded_for_counts_only_behind_a_trusted_proxy() -> None:
    target = SlowApp()
    limited = Overload(target.app, OverloadPolicy(per_ip=parse_rules("1/minute")))
    app = ProxyHeadersMiddleware(limited, trusted_hosts="10.0.0.0/8")  # type: ignore[arg-type]
    async with client_for(app, "10.1.2.3") as proxy, client_for(app, "198.51.100.1") as direct:
        first = await proxy.get("/v1/fast", headers={"X-Forwarded-For": "192.0.2.1"})
        assert first.json()["client"] == "192.0.2.1"
        # Another reader behind the same proxy has its own budget.
        second = await proxy.get("/v1/fast", headers={"X-Forwarded-For": "192.0.2.2"})
        assert second.status_code == 200
        assert (
            await proxy.get("/v1/fast", headers={"X-Forwarded-For": "192.0.2.1"})
        ).status_code == 429
        # A client that is no proxy cannot pick a fresh address per request.
        spoofed = await direct.get("/v1/fast", headers={"X-Forwarded-For": "192.0.2.3"})
        assert spoofed.json()["client"] == "198.51.100.1"
        again = await direct.get("/v1/fast", headers={"X-Forwarded-For": "192.0.2.4"})
        assert again.status_code == 429
