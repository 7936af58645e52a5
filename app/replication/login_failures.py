"""Failed-login limits shared by replicas: limits' asyncio Redis storage over redis-py."""

from __future__ import annotations

from limits.aio.storage import RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter

from app.auth.login_limit import LOGIN_FAILURES, seconds_until


class RedisLoginFailures:
    def __init__(self, redis_url: str) -> None:
        uri = "async+" + redis_url if not redis_url.startswith("async+") else redis_url
        storage = RedisStorage(uri, implementation="redispy", key_prefix="veloz:login")
        self._limiter = MovingWindowRateLimiter(storage)

    async def allowed(self, client_ip: str, user_id: str) -> bool:
        return await self._limiter.test(LOGIN_FAILURES, client_ip, user_id)

    async def retry_after(self, client_ip: str, user_id: str) -> int:
        stats = await self._limiter.get_window_stats(LOGIN_FAILURES, client_ip, user_id)
        return seconds_until(stats.reset_time)

    async def failed(self, client_ip: str, user_id: str) -> None:
        await self._limiter.hit(LOGIN_FAILURES, client_ip, user_id)
