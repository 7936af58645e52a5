"""Argon2 password hashing (pwdlib), off the event loop and with a concurrency cap."""

from __future__ import annotations

import asyncio

from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

MAX_CONCURRENT_HASHES = 4  # argon2 is memory-hard: bound the memory and CPU a burst can take


class PasswordHasher:
    def __init__(self) -> None:
        self._hash = PasswordHash((Argon2Hasher(),))
        self._slots = asyncio.Semaphore(MAX_CONCURRENT_HASHES)
        # Verifying unknown users against this keeps the time the same as for real ones.
        self._dummy = self._hash.hash("veloz-dummy-password")

    async def hash(self, password: str) -> str:
        async with self._slots:
            return await asyncio.to_thread(self._hash.hash, password)

    async def verify(self, password: str, stored: str | None) -> bool:
        async with self._slots:
            ok = await asyncio.to_thread(self._hash.verify, password, stored or self._dummy)
        return ok and stored is not None
