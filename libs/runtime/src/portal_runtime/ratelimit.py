"""Rate limits per client (the ``limits`` library, moving windows).

One limiter for every service: the overload middleware (``overload.py``) counts requests per
client address and per API key, and engagement counts its submissions per address and per
e-mail or phone number.

The counters are in this process's memory: with several instances behind a load balancer each
keeps its own, so the effective limit is the configured one times the instances (set the rates
for that, or switch the storage URI to Redis). Limits are settings, e.g. "5/minute;30/hour".
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

# How a refusal names the client it counted.
_WHO = {
    "ip": "this network address",
    "api_key": "this API key",
    "identity": "this e-mail or phone number",
}


@dataclass(frozen=True)
class Refusal:
    scope: str
    limit: str
    retry_after_s: int

    @property
    def message(self) -> str:
        who = _WHO.get(self.scope, self.scope)
        return (
            f"too many requests from {who} (limit {self.limit}); "
            f"retry in {self.retry_after_s} seconds"
        )


def retry_after_s(reset_time: float, now: float) -> int:
    """Whole seconds until a moving window frees a slot (at ``reset_time``); at least 1.

    Rounded up: a client that waits this long is never refused again by the same window.
    """
    return max(1, math.ceil(reset_time - now))


# One count: (scope, key within the scope, the rules it is held to).
Check = tuple[str, str, Sequence[RateLimitItem]]


class RateLimiter:
    def __init__(self) -> None:
        self._storage = MemoryStorage()
        self._limiter = MovingWindowRateLimiter(self._storage)

    def hit(
        self, scope: str, key: str, rules: Sequence[RateLimitItem], cost: int = 1
    ) -> Refusal | None:
        """Count ``cost`` requests of ``key`` against every rule; a refusal counts nothing."""
        return self.hit_all([(scope, key, rules)], cost)

    def hit_all(self, checks: Sequence[Check], cost: int = 1) -> Refusal | None:
        """Count ``cost`` requests against every check, or against none if any refuses.

        The tests and the hits run without an await in between, so two requests of one event
        loop can never both slip through the last free slot.
        """
        if len(checks) == 1 and len(checks[0][2]) == 1:
            # One rule (the usual case): its hit is already all-or-nothing, no test first.
            scope, key, (rule,) = checks[0]
            if self._limiter.hit(rule, scope, key, cost=cost):
                return None
            stats = self._limiter.get_window_stats(rule, scope, key)
            return Refusal(scope, str(rule), retry_after_s(stats.reset_time, time.time()))
        for scope, key, rules in checks:
            for rule in rules:
                if not self._limiter.test(rule, scope, key, cost=cost):
                    stats = self._limiter.get_window_stats(rule, scope, key)
                    return Refusal(scope, str(rule), retry_after_s(stats.reset_time, time.time()))
        for scope, key, rules in checks:
            for rule in rules:
                self._limiter.hit(rule, scope, key, cost=cost)
        return None

    def reset(self) -> None:
        self._storage.reset()


def parse_rules(value: str) -> list[RateLimitItem]:
    """'5/minute;30/hour' -> the rules; an empty string means no limit."""
    return list(parse_many(value)) if value.strip() else []
