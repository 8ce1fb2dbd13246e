"""Rate limits per client IP and per identity (the ``limits`` library, moving windows).

The counters are in this process's memory: with several instances behind a load balancer each
keeps its own, so the effective limit is the configured one times the instances (set the rates
for that, or switch the storage URI to Redis). Limits are settings, e.g. "5/minute;30/hour".
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter


@dataclass(frozen=True)
class Refusal:
    scope: str
    limit: str
    retry_after_s: int

    @property
    def message(self) -> str:
        who = {"ip": "this network address", "identity": "this e-mail or phone number"}.get(
            self.scope, self.scope
        )
        return (
            f"too many requests from {who} (limit {self.limit}); "
            f"retry in {self.retry_after_s} seconds"
        )


class RateLimiter:
    def __init__(self) -> None:
        self._storage = MemoryStorage()
        self._limiter = MovingWindowRateLimiter(self._storage)

    def hit(self, scope: str, key: str, rules: list[RateLimitItem]) -> Refusal | None:
        """Count one request of ``key`` against every rule; a refusal counts nothing.

        The test and the hits run without an await in between, so two requests of one event
        loop can never both slip through the last free slot.
        """
        for rule in rules:
            if not self._limiter.test(rule, scope, key):
                stats = self._limiter.get_window_stats(rule, scope, key)
                retry = max(1, math.ceil(stats.reset_time - time.time()))
                return Refusal(scope, str(rule), retry)
        for rule in rules:
            self._limiter.hit(rule, scope, key)
        return None

    def reset(self) -> None:
        self._storage.reset()


def parse_rules(value: str) -> list[RateLimitItem]:
    """'5/minute;30/hour' -> the rules; an empty string means no limit."""
    return list(parse_many(value)) if value.strip() else []
