"""Failed-login limits per client address and user id (contract §3: 5 per 5 minutes).

In memory for one process; in Redis (limits' asyncio storage over redis-py) when replicas
share the budget, so a guesser cannot multiply it by spreading tries over replicas.
"""

from __future__ import annotations

import math
import time
from typing import Protocol

from limits import parse
from limits.aio.storage import RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter as AsyncMovingWindow
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

LOGIN_FAILURES = parse("5/5 minutes")


class LoginFailures(Protocol):
    async def allowed(self, client_ip: str, user_id: str) -> bool: ...

    async def retry_after(self, client_ip: str, user_id: str) -> int: ...

    async def failed(self, client_ip: str, user_id: str) -> None: ...


def _seconds_until(reset_time: float) -> int:
    return max(1, math.ceil(reset_time - time.time()))


class MemoryLoginFailures:
    def __init__(self) -> None:
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    async def allowed(self, client_ip: str, user_id: str) -> bool:
        return self._limiter.test(LOGIN_FAILURES, client_ip, user_id)

    async def retry_after(self, client_ip: str, user_id: str) -> int:
        stats = self._limiter.get_window_stats(LOGIN_FAILURES, client_ip, user_id)
        return _seconds_until(stats.reset_time)

    async def failed(self, client_ip: str, user_id: str) -> None:
        self._limiter.hit(LOGIN_FAILURES, client_ip, user_id)


class RedisLoginFailures:
    def __init__(self, redis_url: str) -> None:
        uri = "async+" + redis_url if not redis_url.startswith("async+") else redis_url
        storage = RedisStorage(uri, implementation="redispy", key_prefix="veloz:login")
        self._limiter = AsyncMovingWindow(storage)

    async def allowed(self, client_ip: str, user_id: str) -> bool:
        return await self._limiter.test(LOGIN_FAILURES, client_ip, user_id)

    async def retry_after(self, client_ip: str, user_id: str) -> int:
        stats = await self._limiter.get_window_stats(LOGIN_FAILURES, client_ip, user_id)
        return _seconds_until(stats.reset_time)

    async def failed(self, client_ip: str, user_id: str) -> None:
        await self._limiter.hit(LOGIN_FAILURES, client_ip, user_id)
