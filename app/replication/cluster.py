"""One replica's part in a group of gateways sharing PostgreSQL and Redis (VELOZ_REDIS_URL)."""

from __future__ import annotations

import logging
import os
import secrets
import socket
from typing import TYPE_CHECKING

from redis.asyncio import Redis

from app.auth.login_limit import RedisLoginFailures
from app.replication.shared_auth import RedisSharedAuth

if TYPE_CHECKING:
    from app.runtime import Runtime

log = logging.getLogger("veloz.replication")


def new_replica_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


class Replication:
    def __init__(self, runtime: Runtime, redis_url: str) -> None:
        self.runtime = runtime
        self.replica_id = new_replica_id()
        self.redis = Redis.from_url(redis_url, health_check_interval=10)
        self.shared_auth = RedisSharedAuth(self.redis, self.replica_id)
        runtime.auth.shared = self.shared_auth
        runtime.auth.login_failures = RedisLoginFailures(redis_url)

    async def connect(self) -> None:
        """Before anything else starts: Redis must answer."""
        await self.redis.ping()
        log.info("replica %s joined through Redis", self.replica_id)

    async def stop(self) -> None:
        await self.shared_auth.stop()
        await self.redis.aclose()
