"""The bound on password hashes running at once (no database: argon2 with a held thread)."""

from __future__ import annotations

import asyncio
import threading

import pytest
from argon2 import PasswordHasher

from portal_moderation.passwords import HashingBusy, Passwords


class HeldHasher(PasswordHasher):
    """Hashes only once ``release`` is set, so a test can keep a slot taken."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=8, parallelism=1)
        self.started = threading.Event()
        self.release = threading.Event()

    def hash(self, password: str | bytes, *, salt: bytes | None = None) -> str:
        self.started.set()
        self.release.wait(timeout=10)
        return super().hash(password, salt=salt)


async def test_a_hash_beyond_the_bound_is_refused_after_the_wait_not_queued() -> None:
    hasher = HeldHasher()
    passwords = Passwords(hasher, at_once=1, wait_s=0.05)
    first = asyncio.create_task(passwords.hash("mat-khau-dau-tien"))
    await asyncio.to_thread(hasher.started.wait, 10)
    with pytest.raises(HashingBusy) as busy:
        await passwords.hash("mat-khau-thu-hai")
    assert busy.value.retry_after_s >= 1
    hasher.release.set()
    assert passwords.hasher.verify(await first, "mat-khau-dau-tien")
    # The slot is free again: the next hash goes through.
    assert passwords.hasher.verify(await passwords.hash("mat-khau-thu-ba"), "mat-khau-thu-ba")
    assert passwords.hashes_run == 2
