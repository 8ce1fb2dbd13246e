"""Editors' passwords: argon2id (argon2-cffi), hashed off the event loop."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_LENGTH = 10
MAX_LENGTH = 256  # argon2 accepts more, but a huge password is only a way to burn CPU


@dataclass(frozen=True)
class Verified:
    ok: bool
    new_hash: str | None = None  # set when the stored hash uses outdated parameters


class Passwords:
    def __init__(self, hasher: PasswordHasher | None = None) -> None:
        self.hasher = hasher or PasswordHasher()
        self._dummy: str | None = None

    async def hash(self, password: str) -> str:
        return await asyncio.to_thread(self.hasher.hash, password)

    async def verify(self, stored_hash: str | None, password: str) -> Verified:
        """Check ``password``; an unknown user (``None``) costs the same time as a known one."""
        if stored_hash is None:
            if self._dummy is None:
                self._dummy = await self.hash("not-a-password-of-anyone")
            await asyncio.to_thread(self._check, self._dummy, password)
            return Verified(ok=False)
        if not await asyncio.to_thread(self._check, stored_hash, password):
            return Verified(ok=False)
        if self.hasher.check_needs_rehash(stored_hash):
            return Verified(ok=True, new_hash=await self.hash(password))
        return Verified(ok=True)

    def _check(self, stored_hash: str, password: str) -> bool:
        try:
            return self.hasher.verify(stored_hash, password)
        except (VerificationError, InvalidHashError):
            return False
