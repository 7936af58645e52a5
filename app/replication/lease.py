"""The leader lease: a Redis key holding the leader's replica id, expiring unless renewed."""

from __future__ import annotations

from redis.asyncio import Redis

from app.replication.keys import LEADER

# Renew or give up only what we hold: a lease that expired may belong to another replica now.
# A lease that is simply gone (Redis restarted empty) is taken again: nobody else holds it.
RENEW_SCRIPT = """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
if not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""
RELEASE_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class LeaderLease:
    def __init__(self, redis: Redis, replica_id: str, lease_ms: int) -> None:
        self._redis = redis
        self.replica_id = replica_id
        self.lease_ms = lease_ms
        self._renew = redis.register_script(RENEW_SCRIPT)
        self._release = redis.register_script(RELEASE_SCRIPT)

    async def acquire(self) -> bool:
        return bool(await self._redis.set(LEADER, self.replica_id, nx=True, px=self.lease_ms))

    async def renew(self) -> bool:
        return bool(await self._renew(keys=[LEADER], args=[self.replica_id, self.lease_ms]))

    async def release(self) -> None:
        await self._release(keys=[LEADER], args=[self.replica_id])

    async def holder(self) -> str | None:
        value: bytes | None = await self._redis.get(LEADER)  # type: ignore[assignment]
        return None if value is None else value.decode()
