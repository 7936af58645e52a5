"""Tells the other replicas that something they hold in memory changed in the database.

One Redis pub/sub channel; a message is `<topic> <replica id>`. Each replica reloads what the
topic names (identity, GUI settings, run-time configuration) from the database, which stays the
only source of truth: a lost message costs freshness, never correctness of what is stored.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from redis.asyncio import Redis

from app.replication.keys import CHANGES_CHANNEL
from app.replication.tasks import cancel_and_wait

log = logging.getLogger("veloz.replication")

Reload = Callable[[], Awaitable[None]]


class ChangeFeed:
    def __init__(self, redis: Redis, replica_id: str) -> None:
        self._redis = redis
        self._replica_id = replica_id
        self._handlers: dict[str, Reload] = {}
        self._task: asyncio.Task[None] | None = None

    async def publish(self, topic: str) -> None:
        await self._redis.publish(CHANGES_CHANNEL, f"{topic} {self._replica_id}")

    def subscribe(self, topic: str, reload: Reload) -> None:
        self._handlers[topic] = reload
        if self._task is None:
            self._task = asyncio.create_task(self._listen(), name="veloz-change-feed")

    async def _listen(self) -> None:
        while True:
            try:
                async with self._redis.pubsub(ignore_subscribe_messages=True) as pubsub:
                    await pubsub.subscribe(CHANGES_CHANNEL)
                    for reload in list(self._handlers.values()):
                        await reload()  # whatever changed while we were not subscribed
                    async for message in pubsub.listen():
                        await self._dispatch(message.get("data"))
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("change feed failed; subscribing again")
                await asyncio.sleep(1)

    async def _dispatch(self, data: object) -> None:
        if not isinstance(data, bytes):
            return
        topic, _, sender = data.decode().partition(" ")
        reload = self._handlers.get(topic)
        if reload is None or sender == self._replica_id:
            return
        try:
            await reload()
        except Exception:
            log.exception("reloading %s after a change elsewhere failed", topic)

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None
