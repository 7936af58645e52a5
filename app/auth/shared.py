"""What several replicas must share about identity, independent of where it is kept.

With one replica nothing is shared (the AuthService keeps all of it in memory); with several,
app/replication/shared_auth.py keeps it in Redis.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol


class SharedAuth(Protocol):
    async def take_token(self, identity: str, capacity: int, refill: float) -> tuple[bool, float]:
        """Take one token from the identity's bucket: (allowed, tokens left)."""

    async def any_revoked(self, token_ids: list[str]) -> bool: ...

    async def revoke(self, token_ids: dict[str, int]) -> None:
        """Revoke ids until their unix expiry time."""

    async def identity_changed(self) -> None:
        """Tell every other replica that users, roles or keys changed in the database."""

    def on_identity_change(self, reload: Callable[[], Awaitable[None]]) -> None: ...
