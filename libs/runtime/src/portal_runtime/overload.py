"""Backpressure at the HTTP edge: per-client rate limits and a cap on requests in progress.

A flood from one client (a partner's script gone wrong, a scraper) gets 429 with Retry-After
while everyone else is still served; a flood from everyone at once (more than this instance can
work through) gets an immediate 503 with Retry-After instead of a queue where every request
waits until it times out. Both answers are JSON with a ``reason``.

* Clients: the address of the peer (``scope["client"]``; ``X-Forwarded-For`` is honoured only
  from the proxies listed in ``TRUSTED_PROXIES``, see ``Service.create_app``) and, for requests
  with ``Authorization: Bearer <token>``, the token (a partner's API key, an editor's token),
  kept only as a digest.
* The cap counts requests until their response starts: a long server-sent event stream holds
  no slot once it runs (engagement caps live streams itself).
* Health and metrics are never limited; the admin API with the valid admin token neither, so
  operators can act during an overload.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from limits import RateLimitItem
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from portal_runtime.metrics import meter
from portal_runtime.ratelimit import Check, RateLimiter, Refusal, parse_rules
from portal_runtime.settings import ServiceSettings

ALWAYS_EXEMPT = ("/healthz", "/readyz", "/metrics")
ADMIN_PREFIX = "/admin/"

REJECTED = meter.create_counter(
    "portal.http.requests.rejected",
    unit="{request}",
    description="Requests answered at once without being handled: rate_limited (429, one "
    "client over its limit) or overloaded (503, too many requests in progress).",
)


@dataclass(frozen=True)
class OverloadPolicy:
    per_ip: Sequence[RateLimitItem] = ()
    per_api_key: Sequence[RateLimitItem] = ()
    max_in_flight: int = 0  # 0: no cap
    retry_after_s: int = 1  # what a shed request is told
    admin_token: str = field(default="", repr=False)

    @classmethod
    def from_settings(cls, settings: ServiceSettings) -> OverloadPolicy:
        return cls(
            per_ip=parse_rules(settings.rate_limit_per_ip),
            per_api_key=parse_rules(settings.rate_limit_per_api_key),
            max_in_flight=settings.max_in_flight_requests,
            retry_after_s=settings.overload_retry_after_s,
            admin_token=settings.admin_token.get_secret_value(),
        )

    @property
    def enabled(self) -> bool:
        return bool(self.per_ip or self.per_api_key or self.max_in_flight)


def bearer_token(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    for name, value in headers:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            token = token.strip()
            return token if scheme.lower() == "bearer" and token else None
    return None


def token_digest(token: str) -> str:
    # Never keep a secret as a counter key (memory dumps, a Redis storage later).
    return hashlib.sha256(token.encode()).hexdigest()[:32]


def is_exempt(path: str, token: str | None, admin_token: str) -> bool:
    if path in ALWAYS_EXEMPT:
        return True
    return (
        path.startswith(ADMIN_PREFIX)
        and bool(admin_token)
        and token is not None
        and hmac.compare_digest(token.encode(), admin_token.encode())
    )


def client_checks(policy: OverloadPolicy, address: str, token: str | None) -> list[Check]:
    """What one request is counted against: its address, and its bearer token if it has one."""
    checks: list[Check] = []
    if policy.per_ip:
        checks.append(("ip", address, policy.per_ip))
    if policy.per_api_key and token is not None:
        checks.append(("api_key", token_digest(token), policy.per_api_key))
    return checks


def rate_limited_body(refusal: Refusal) -> dict[str, object]:
    return {
        "detail": refusal.message,
        "reason": "rate_limited",
        "scope": refusal.scope,
        "limit": refusal.limit,
        "retry_after_s": refusal.retry_after_s,
    }


def overloaded_body(cap: int, retry_after_s: int) -> dict[str, object]:
    return {
        "detail": f"the service is at capacity ({cap} requests in progress); "
        f"retry in {retry_after_s} seconds",
        "reason": "overloaded",
        "retry_after_s": retry_after_s,
    }


class Overload:
    """ASGI middleware: the rate limits, then the in-flight cap, then the app."""

    def __init__(
        self, app: ASGIApp, policy: OverloadPolicy, limiter: RateLimiter | None = None
    ) -> None:
        self.app = app
        self.policy = policy
        self.limiter = limiter or RateLimiter()
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.policy.enabled:
            await self.app(scope, receive, send)
            return
        token = bearer_token(scope.get("headers") or ())
        if is_exempt(scope["path"], token, self.policy.admin_token):
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        address = client[0] if client else "unknown"
        refusal = self.limiter.hit_all(client_checks(self.policy, address, token))
        if refusal is not None:
            REJECTED.add(1, {"reason": "rate_limited", "scope": refusal.scope})
            await _answer(send, 429, rate_limited_body(refusal), refusal.retry_after_s)
            return
        cap = self.policy.max_in_flight
        if cap and self.in_flight >= cap:
            REJECTED.add(1, {"reason": "overloaded", "scope": "instance"})
            retry = self.policy.retry_after_s
            await _answer(send, 503, overloaded_body(cap, retry), retry)
            return
        await self._handle(scope, receive, send)

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.in_flight += 1
        held = True

        def release() -> None:
            nonlocal held
            if held:
                held = False
                self.in_flight -= 1

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                release()
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            release()


async def _answer(send: Send, status: int, body: dict[str, object], retry_after_s: int) -> None:
    data = json.dumps(body, ensure_ascii=False).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(data)).encode()),
                (b"retry-after", str(retry_after_s).encode()),
                (b"cache-control", b"no-store"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": data})
