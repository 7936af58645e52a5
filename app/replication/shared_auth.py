"""Rate-limit buckets, token revocations and identity changes shared through Redis."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from redis.asyncio import Redis

from app.replication.keys import IDENTITY_CHANNEL, RATE_BUCKET, REVOKED

log = logging.getLogger("veloz.replication")

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
    def __init__(self, redis: Redis, replica_id: str) -> None:
        self._redis = redis
        self._replica_id = replica_id
        self._bucket = redis.register_script(BUCKET_SCRIPT)
        self._listener: asyncio.Task[None] | None = None

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
        await self._redis.publish(IDENTITY_CHANNEL, self._replica_id)

    def on_identity_change(self, reload: Callable[[], Awaitable[None]]) -> None:
        self._listener = asyncio.create_task(self._listen(reload), name="veloz-identity-sync")

    async def _listen(self, reload: Callable[[], Awaitable[None]]) -> None:
        while True:
            try:
                async with self._redis.pubsub(ignore_subscribe_messages=True) as pubsub:
                    await pubsub.subscribe(IDENTITY_CHANNEL)
                    await reload()  # changes made while we were not subscribed
                    async for message in pubsub.listen():
                        if message.get("data") != self._replica_id.encode():
                            await reload()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("identity change listener failed; resubscribing")
                await asyncio.sleep(1)

    async def stop(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
