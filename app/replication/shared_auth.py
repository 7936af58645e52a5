"""Rate-limit buckets, token revocations and identity changes shared through Redis."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from redis.asyncio import Redis

from app.replication.changes import ChangeFeed
from app.replication.keys import RATE_BUCKET, REVOKED

IDENTITY_TOPIC = "identity"

# One atomic token bucket. Redis's own clock, so replicas with skewed clocks agree; the key
# expires once the bucket would be full again, so idle identities cost nothing.
BUCKET_SCRIPT = """
local capacity = tonumber(ARGV[1])
local refill = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local bucket = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(bucket[1]) or capacity
local last = tonumber(bucket[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - last) * refill)
local allowed = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil((capacity - tokens) / refill * 1000) + 1000)
return {allowed, tostring(tokens)}
"""


class RedisSharedAuth:
    def __init__(self, redis: Redis, changes: ChangeFeed) -> None:
        self._redis = redis
        self._changes = changes
        self._bucket = redis.register_script(BUCKET_SCRIPT)

    async def take_token(self, identity: str, capacity: int, refill: float) -> tuple[bool, float]:
        allowed, tokens = await self._bucket(keys=[RATE_BUCKET + identity], args=[capacity, refill])
        return bool(allowed), float(tokens)

    async def any_revoked(self, token_ids: list[str]) -> bool:
        return bool(await self._redis.exists(*(REVOKED + token_id for token_id in token_ids)))

    async def revoke(self, token_ids: dict[str, int]) -> None:
        now = int(time.time())
        async with self._redis.pipeline(transaction=False) as pipe:
            for token_id, expires_at in token_ids.items():
                pipe.set(REVOKED + token_id, b"1", exat=max(expires_at, now + 1))
            await pipe.execute()

    async def identity_changed(self) -> None:
        await self._changes.publish(IDENTITY_TOPIC)

    def on_identity_change(self, reload: Callable[[], Awaitable[None]]) -> None:
        self._changes.subscribe(IDENTITY_TOPIC, reload)
