"""What an API key grants, remembered for a bounded time (callers.py), without a database."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from portal_ingest.callers import KeyGrants
from portal_ingest.domain import SourceInfo
from portal_ingest.repository import KeyGrant

TTL = 2.0


class Store:
    """The keys as the database holds them; counts the reads."""

    def __init__(self) -> None:
        self.grants: dict[str, KeyGrant] = {}
        self.reads = 0
        self.gate: asyncio.Event | None = None  # holds a read until set
        self.began = asyncio.Event()  # set as each read begins

    def issue(self, key_id: str, *, active: bool = True) -> None:
        source = SourceInfo(code="tp-hue", active=active, sections=())
        self.grants[key_id] = KeyGrant(key_id, "hash", None, "tp-hue", source)

    def revoke(self, key_id: str) -> None:
        grant = self.grants[key_id]
        self.grants[key_id] = KeyGrant(
            key_id, grant.secret_hash, datetime.now(UTC), grant.source_code, grant.source
        )

    async def read_begun(self, reads: int) -> None:
        """Until ``reads`` reads have begun."""
        while self.reads < reads:
            self.began.clear()
            await self.began.wait()

    async def load(self, key_id: str) -> KeyGrant | None:
        self.reads += 1
        self.began.set()
        grant = self.grants.get(key_id)
        if self.gate is not None:
            await self.gate.wait()
        return grant


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_a_grant_is_read_once_within_the_bound_and_again_after_it() -> None:
    store, clock = Store(), Clock()
    grants = KeyGrants(store.load, TTL, clock=clock)
    store.issue("k1")
    first = await grants.get("k1")
    clock.now += TTL / 2
    second = await grants.get("k1")
    assert first is not None and first == second
    assert store.reads == 1

    # Revoked through another instance: this one sees it once the bound has passed.
    store.revoke("k1")
    clock.now += TTL / 2
    after = await grants.get("k1")
    assert after is not None and after.revoked_at is not None
    assert store.reads == 2


async def test_a_change_made_here_is_seen_at_once() -> None:
    store, clock = Store(), Clock()
    grants = KeyGrants(store.load, TTL, clock=clock)
    store.issue("k1")
    assert (await grants.get("k1")) is not None
    store.issue("k1", active=False)
    grants.forget()
    grant = await grants.get("k1")
    assert grant is not None and grant.source is not None and not grant.source.active


async def test_a_read_begun_before_a_change_is_not_remembered_after_it() -> None:
    store, clock = Store(), Clock()
    grants = KeyGrants(store.load, TTL, clock=clock)
    store.issue("k1")
    store.gate = asyncio.Event()
    reading = asyncio.create_task(grants.get("k1"))  # reads the key as it was
    await store.read_begun(1)
    store.revoke("k1")
    grants.forget()  # the revocation, committed while the read was under way
    store.gate.set()
    stale = await reading
    assert stale is not None and stale.revoked_at is None  # that request raced the revocation
    store.gate = None
    fresh = await grants.get("k1")
    assert fresh is not None and fresh.revoked_at is not None
    assert store.reads == 2


async def test_unknown_keys_are_never_remembered_and_a_zero_bound_remembers_nothing() -> None:
    store, clock = Store(), Clock()
    grants = KeyGrants(store.load, TTL, clock=clock)
    assert await grants.get("nope") is None
    store.issue("nope")
    assert await grants.get("nope") is not None

    uncached = KeyGrants(store.load, 0, clock=clock)
    await uncached.get("nope")
    await uncached.get("nope")
    assert store.reads == 4


async def test_the_oldest_grants_make_room_for_new_ones() -> None:
    store, clock = Store(), Clock()
    grants = KeyGrants(store.load, TTL, clock=clock, max_entries=2)
    for key_id in ("k1", "k2", "k3"):
        store.issue(key_id)
        await grants.get(key_id)
    await grants.get("k3")
    await grants.get("k2")
    assert store.reads == 3
    await grants.get("k1")  # dropped to keep two
    assert store.reads == 4


async def test_concurrent_requests_share_one_read_and_a_change_starts_another() -> None:
    store, clock = Store(), Clock()
    grants = KeyGrants(store.load, TTL, clock=clock)
    store.issue("k1")
    store.gate = asyncio.Event()
    burst = [asyncio.create_task(grants.get("k1")) for _ in range(5)]
    await store.read_begun(1)
    # One request goes away: the read it shares goes on for the others.
    burst[0].cancel()
    store.revoke("k1")
    grants.forget()
    after_change = asyncio.create_task(grants.get("k1"))  # does not join the older read
    await store.read_begun(2)
    store.gate.set()
    answers = await asyncio.gather(*burst[1:])
    assert all(a is not None and a.revoked_at is None for a in answers)
    fresh = await after_change
    assert fresh is not None and fresh.revoked_at is not None
    assert store.reads == 2
