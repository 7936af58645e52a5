"""Orders and cancels from followers to the leader: a Redis Stream read by the leader through a
consumer group, answers on a stream per replica.

A follower answers its client only with the leader's answer, and the leader answers only once
the order is durable. A command nobody answered in time is answered 503 by the follower, and the
leader drops commands whose deadline has passed. One already under way when the follower gave
up may still be placed: a retry with the same client_order_id then answers its result.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from app.core.jsonutil import dumps, loads
from app.replication.event_stream import stream_entries
from app.replication.keys import COMMAND_GROUP, COMMANDS, REPLIES
from app.replication.tasks import cancel_and_wait

log = logging.getLogger("veloz.replication")

QUEUE_LENGTH = 10_000
REPLY_LENGTH = 1_000
REPLY_TTL_SECONDS = 60  # a replica that is gone leaves no stream behind for long
BLOCK_MS = 1000

Handler = Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]]


def _enqueued_ms(entry_id: bytes) -> int:
    return int(entry_id.split(b"-")[0])


class LeaderUnreachable(Exception):
    """No leader answered in time."""


async def redis_now_ms(redis: Redis) -> int:
    """Redis's clock: the one that stamped the command's entry id, whatever ours says."""
    seconds, micros = await redis.time()
    return int(seconds) * 1000 + int(micros) // 1000


class CommandForwarder:
    """A replica's side: sends a command, waits for the leader's answer."""

    def __init__(self, redis: Redis, replica_id: str) -> None:
        self._redis = redis
        self._reply_stream = REPLIES + replica_id
        self._replica_id = replica_id
        self._waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._read_replies(), name="veloz-command-replies")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        with contextlib.suppress(Exception):
            await self._redis.delete(self._reply_stream)

    async def call(self, kind: str, body: dict[str, Any], timeout: float) -> dict[str, Any]:
        command_id = secrets.token_hex(8)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[command_id] = future
        try:
            await self._redis.xadd(
                COMMANDS,
                {
                    "id": command_id,
                    "reply_to": self._replica_id,
                    "kind": kind,
                    "body": dumps(body),
                    "timeout_ms": str(int(timeout * 1000)),
                },
                maxlen=QUEUE_LENGTH,
                approximate=True,
            )
            async with asyncio.timeout(timeout):
                return await future
        except TimeoutError as exc:
            raise LeaderUnreachable("the leader did not answer in time") from exc
        except RedisError as exc:
            raise LeaderUnreachable(f"Redis is unreachable: {exc}") from exc
        finally:
            self._waiting.pop(command_id, None)

    async def _read_replies(self) -> None:
        last = "0-0"  # the stream is this replica's own and new: read all of it
        while True:
            try:
                answer = await self._redis.xread({self._reply_stream: last}, block=BLOCK_MS)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("reading command answers failed; retrying")
                await asyncio.sleep(0.5)
                continue
            for entries in stream_entries(answer):
                for entry_id, fields in entries:
                    last = entry_id.decode()
                    future = self._waiting.get(fields[b"id"].decode())
                    if future is not None and not future.done():
                        future.set_result(loads(fields[b"reply"]))


class CommandConsumer:
    """The leader's side: takes commands, runs each concurrently, answers, acknowledges."""

    def __init__(self, redis: Redis, replica_id: str, handle: Handler) -> None:
        self._redis = redis
        self._replica_id = replica_id
        self._handle = handle
        self._task: asyncio.Task[None] | None = None
        self._running: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        await self._create_group()
        self._task = asyncio.create_task(self._run(), name="veloz-command-consumer")

    async def _create_group(self) -> None:
        with contextlib.suppress(ResponseError):  # BUSYGROUP: a former leader made it
            # From the start of the stream: commands sent while no replica led are taken
            # now, unless their deadline passed.
            await self._redis.xgroup_create(COMMANDS, COMMAND_GROUP, id="0", mkstream=True)

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        if self._running:
            await asyncio.wait(self._running, timeout=5)

    async def _run(self) -> None:
        while True:
            try:
                await self._take_batch()
            except asyncio.CancelledError:
                raise
            except ResponseError as exc:
                if "NOGROUP" in str(exc):  # Redis restarted empty
                    with contextlib.suppress(Exception):
                        await self._create_group()
                    continue
                log.exception("reading commands failed; retrying")
                await asyncio.sleep(0.5)
            except Exception:
                log.exception("reading commands failed; retrying")
                await asyncio.sleep(0.5)

    async def _take_batch(self) -> None:
        answer = await self._redis.xreadgroup(
            COMMAND_GROUP, self._replica_id, {COMMANDS: ">"}, count=100, block=BLOCK_MS
        )
        batches = stream_entries(answer)
        now_ms = await redis_now_ms(self._redis) if batches else 0
        for entries in batches:
            for entry_id, fields in entries:
                expired = _enqueued_ms(entry_id) + int(fields[b"timeout_ms"]) < now_ms
                task = asyncio.create_task(self._one(entry_id, fields, expired))
                self._running.add(task)
                task.add_done_callback(self._running.discard)

    async def _one(self, entry_id: bytes, fields: dict[bytes, bytes], expired: bool) -> None:
        try:
            if expired:  # the sender has answered 503 already
                log.warning("dropping a %s command past its deadline", fields[b"kind"].decode())
                return
            reply = await self._handle(fields[b"kind"].decode(), loads(fields[b"body"]))
            stream = REPLIES + fields[b"reply_to"].decode()
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.xadd(
                    stream,
                    {"id": fields[b"id"], "reply": dumps(reply)},
                    maxlen=REPLY_LENGTH,
                    approximate=True,
                )
                pipe.expire(stream, REPLY_TTL_SECONDS)
                await pipe.execute()
        except Exception:
            log.exception("a forwarded command failed")
        finally:
            with contextlib.suppress(Exception):
                await self._redis.xack(COMMANDS, COMMAND_GROUP, entry_id)
