"""Failed-login limits per client address and user id (contract §3: 5 per 5 minutes).

In memory for one process; replicas share the budget in Redis
(app/replication/login_failures.py), so a guesser cannot multiply it by spreading tries over
replicas.
"""

from __future__ import annotations

import math
import time
from typing import Protocol

from limits import parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

LOGIN_FAILURES = parse("5/5 minutes")


class LoginFailures(Protocol):
    async def allowed(self, client_ip: str, user_id: str) -> bool: ...

    async def retry_after(self, client_ip: str, user_id: str) -> int: ...

    async def failed(self, client_ip: str, user_id: str) -> None: ...


def seconds_until(reset_time: float) -> int:
    return max(1, math.ceil(reset_time - time.time()))


class MemoryLoginFailures:
    def __init__(self) -> None:
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    async def allowed(self, client_ip: str, user_id: str) -> bool:
        return self._limiter.test(LOGIN_FAILURES, client_ip, user_id)

    async def retry_after(self, client_ip: str, user_id: str) -> int:
        stats = self._limiter.get_window_stats(LOGIN_FAILURES, client_ip, user_id)
        return seconds_until(stats.reset_time)

    async def failed(self, client_ip: str, user_id: str) -> None:
        self._limiter.hit(LOGIN_FAILURES, client_ip, user_id)
