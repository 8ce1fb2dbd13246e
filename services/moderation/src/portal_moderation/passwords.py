"""Editors' passwords: argon2id (argon2-cffi), hashed off the event loop, a bounded number at
once: each hash costs 64 MiB and a core, so a burst waits briefly and is then refused."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_LENGTH = 10
MAX_LENGTH = 256  # argon2 accepts more, but a huge password is only a way to burn CPU

T = TypeVar("T")


class HashingBusy(Exception):
    """Every hashing slot stayed taken for the whole wait: try again in ``retry_after_s``."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__("too many sign-ins at once; try again shortly")
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class Verified:
    ok: bool
    new_hash: str | None = None  # set when the stored hash uses outdated parameters


class Passwords:
    def __init__(
        self,
        hasher: PasswordHasher | None = None,
        *,
        at_once: int = 4,
        wait_s: float = 2.0,
    ) -> None:
        self.hasher = hasher or PasswordHasher()
        self._dummy: str | None = None
        self._slots = asyncio.Semaphore(at_once)
        self._wait_s = wait_s
        self.hashes_run = 0  # hashes and verifications computed (a figure for operators)

    async def hash(self, password: str) -> str:
        return await self._bounded(self.hasher.hash, password)

    async def _bounded(self, work: Callable[..., T], *args: object) -> T:
        try:
            await asyncio.wait_for(self._slots.acquire(), self._wait_s)
        except TimeoutError:
            raise HashingBusy(max(1, round(self._wait_s))) from None
        try:
            self.hashes_run += 1
            return await asyncio.to_thread(work, *args)
        finally:
            self._slots.release()

    async def verify(self, stored_hash: str | None, password: str) -> Verified:
        """Check ``password``; an unknown user (``None``) costs the same time as a known one."""
        if stored_hash is None:
            if self._dummy is None:
                self._dummy = await self.hash("not-a-password-of-anyone")
            await self._bounded(self._check, self._dummy, password)
            return Verified(ok=False)
        if not await self._bounded(self._check, stored_hash, password):
            return Verified(ok=False)
        if self.hasher.check_needs_rehash(stored_hash):
            return Verified(ok=True, new_hash=await self.hash(password))
        return Verified(ok=True)

    def _check(self, stored_hash: str, password: str) -> bool:
        try:
            return self.hasher.verify(stored_hash, password)
        except (VerificationError, InvalidHashError):
            return False
