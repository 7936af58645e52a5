"""Engine events through a Redis Stream: the leader appends every durable event with its id as
the entry id; every other replica reads them in order and takes them as its own.

Entry ids equal event ids, so a client gets the same ids from any replica and `Last-Event-ID`
resumes anywhere. Only durable events are appended, so a new leader that continues from the
database never contradicts what a replica has shown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any, cast

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from app.events.bus import Event
from app.replication.keys import EVENTS
from app.replication.tasks import cancel_and_wait

log = logging.getLogger("veloz.replication")

STREAM_LENGTH = 20_000  # entries kept (approximately): what a lagging replica can catch up on
READ_COUNT = 1000
BLOCK_MS = 1000


class StaleLeader(Exception):
    """Another leader already appended these ids: this replica must not write any more."""


def entry_id(event_id: int) -> str:
    return f"{event_id}-0"


class EventPublisher:
    """The leader's side: appends released events in order, retrying until Redis takes them."""

    def __init__(self, redis: Redis, on_stale: Callable[[], None]) -> None:
        self._redis = redis
        self._on_stale = on_stale
        self._pending: list[Event] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.published_id = 0

    def on_release(self, event: Event) -> None:
        """Bus release listener."""
        self._pending.append(event)
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="veloz-event-publisher")

    async def stop(self) -> None:
        """Append what is still pending, then stop."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._task), 5)
            self._task.cancel()

    async def _run(self) -> None:
        delay = 0.05
        while True:
            if not self._pending:
                if self._stopping:
                    return
                await self._wake.wait()
                self._wake.clear()
                continue
            batch, self._pending = self._pending, []
            try:
                await self._append(batch)
            except StaleLeader:
                log.critical("event %d already in the stream: another replica leads", batch[0].id)
                self._on_stale()
                return
            except Exception:
                log.exception("appending events to Redis failed; retrying in %.2fs", delay)
                self._pending = batch + self._pending
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)
                continue
            delay = 0.05

    async def _append(self, batch: list[Event]) -> None:
        fresh = [event for event in batch if event.id > self.published_id]
        if not fresh:
            return
        async with self._redis.pipeline(transaction=False) as pipe:
            for event in fresh:
                pipe.xadd(
                    EVENTS,
                    {"data": event.json},
                    id=entry_id(event.id),
                    maxlen=STREAM_LENGTH,
                    approximate=True,
                )
            results = await pipe.execute(raise_on_error=False)
        for event, result in zip(fresh, results, strict=True):
            if isinstance(result, ResponseError):
                if "equal or smaller" in str(result):
                    if event.id <= self.published_id:
                        continue
                    raise StaleLeader(str(result))
                raise result
            self.published_id = event.id

    async def last_published(self) -> int:
        """The newest event id in the stream (0 when empty)."""
        newest = cast(Entries, await self._redis.xrevrange(EVENTS, count=1))
        return int(newest[0][0].split(b"-")[0]) if newest else 0


Entries = list[tuple[bytes, dict[bytes, bytes]]]


def stream_entries(answer: Any) -> list[Entries]:
    """XREAD's answer, typed: the entries of each stream read."""
    return [entries for _stream, entries in cast(list[tuple[bytes, Entries]], answer or [])]


def decode_entries(entries: Entries) -> list[Event]:
    return [
        Event.decode(int(entry_id.split(b"-")[0]), fields[b"data"].decode())
        for entry_id, fields in entries
    ]


class EventFollower:
    """A follower's side: reads the stream after the newest id it has, hands events over."""

    def __init__(
        self,
        redis: Redis,
        last_id: Callable[[], int],
        deliver: Callable[[list[Event]], None],
        fill_gap: Callable[[int, int], list[Event]],
    ) -> None:
        self._redis = redis
        self._last_id = last_id
        self._deliver = deliver
        self._fill_gap = fill_gap  # (after, before) -> stored events: the stream was trimmed
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="veloz-event-follower")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None

    async def catch_up(self) -> None:
        """Everything in the stream now (a follower about to lead)."""
        while True:
            entries = cast(
                Entries,
                await self._redis.xrange(
                    EVENTS, min=f"({entry_id(self._last_id())}", count=READ_COUNT
                ),
            )
            if not entries:
                return
            await self._take(decode_entries(entries))

    async def _run(self) -> None:
        while True:
            try:
                answer = await self._redis.xread(
                    {EVENTS: entry_id(self._last_id())}, count=READ_COUNT, block=BLOCK_MS
                )
                for entries in stream_entries(answer):
                    await self._take(decode_entries(entries))
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("following the event stream failed; retrying")
                await asyncio.sleep(0.5)

    async def _take(self, events: list[Event]) -> None:
        if not events:
            return
        expected = self._last_id() + 1
        if events[0].id > expected:
            # Trimmed away before we read it: the database still has it.
            missing = await asyncio.to_thread(self._fill_gap, expected - 1, events[0].id)
            log.warning("event stream gap %d..%d filled from the database", expected,
                        events[0].id - 1)  # fmt: skip
            self._deliver(missing)
        self._deliver(events)
