"""The event bus: monotonic ids, a replay ring, and fan-out to stream subscribers.

Each event is rendered to JSON and to its SSE frame once, when it is published, so sending it to
a thousand clients costs a thousand queue appends and no extra encoding.

With `gated=True` events reach stream clients only once `release(id)` says they are durable:
a client never sees an event (or an id) that a crash could take back, so ids never repeat.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from app.core.jsonutil import dumps, loads


def now_ns() -> int:
    return time.time_ns()


@dataclass(slots=True, frozen=True)
class Event:
    id: int
    type: str
    data: dict[str, Any]  # includes "type"; numbers may be Decimal
    json: str  # `data` rendered once, numbers as JSON numbers
    frame: bytes  # the SSE block: id, event, data, blank line

    @classmethod
    def build(cls, event_id: int, data: dict[str, Any]) -> Event:
        kind = str(data.get("type") or "event")
        text = dumps(data)
        frame = f"id: {event_id}\nevent: {kind}\ndata: {text}\n\n".encode()
        return cls(event_id, kind, data, text, frame)

    @classmethod
    def decode(cls, event_id: int, text: str) -> Event:
        """An event another replica built, from its JSON text (not re-encoded)."""
        data = loads(text)
        kind = str(data.get("type") or "event")
        frame = f"id: {event_id}\nevent: {kind}\ndata: {text}\n\n".encode()
        return cls(event_id, kind, data, text, frame)

    def with_id_json(self) -> str:
        """The event as JSON with its `_id`, as /api/orders lists it."""
        return (
            f'{self.json[:-1]},"_id":{self.id}}}' if self.json != "{}" else f'{{"_id":{self.id}}}'
        )


class TooManySubscribers(Exception):
    pass


class Subscription:
    """One stream client's bounded queue. A client that falls too far behind is cut off."""

    __slots__ = ("_limit", "_pending", "_wake", "closed", "overflowed")

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._pending: deque[Event] = deque()
        self._wake = asyncio.Event()
        self.closed = False
        self.overflowed = False

    def push(self, events: list[Event]) -> None:
        """Queue events released together. Only what was already waiting counts against the
        limit: a client that keeps up is never cut off because one release was large."""
        if self.closed:
            return
        if len(self._pending) >= self._limit:
            self.overflowed = True
            self.closed = True
            self._pending.clear()  # free the memory now; the client resumes by id
        else:
            self._pending.extend(events)
        self._wake.set()

    def close(self) -> None:
        self.closed = True
        self._wake.set()

    async def next_batch(self, timeout: float) -> list[Event] | None:
        """Everything queued so far; [] once closed; None when `timeout` passes idle."""
        if not self._pending and not self.closed:
            try:
                async with asyncio.timeout(timeout):  # no extra task, unlike wait_for on 3.11
                    await self._wake.wait()
            except TimeoutError:
                return None
        self._wake.clear()
        batch = list(self._pending)
        self._pending.clear()
        return batch


Listener = Callable[[Event], None]


class EventBus:
    def __init__(
        self, ring_size: int = 500, max_subscribers: int = 2000, gated: bool = False
    ) -> None:
        self._ring: deque[Event] = deque(maxlen=ring_size)
        self._next_id = 1
        self._gated = gated
        self._released_id = 0  # the newest id stream clients may see
        self._unreleased: deque[Event] = deque()
        self._listeners: list[Listener] = []
        self._release_listeners: list[Listener] = []
        self._subscribers: set[Subscription] = set()
        self.max_subscribers = max_subscribers
        self.closed = False

    @property
    def last_id(self) -> int:
        return self._next_id - 1

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    def restore(self, events: Iterable[Event], last_id: int) -> None:
        """Reload the replay ring after a restart; ids continue after `last_id`."""
        self._ring.extend(events)
        self._next_id = max(self._next_id, last_id + 1)
        self._released_id = max(self._released_id, last_id)

    def add_listener(self, listener: Listener) -> None:
        """Listeners run synchronously, in order, for every event (state folding, persistence)."""
        self._listeners.append(listener)

    def add_release_listener(self, listener: Listener) -> None:
        """Runs for every event when stream clients get it, i.e. once it is durable."""
        self._release_listeners.append(listener)

    def publish(self, data: dict[str, Any]) -> Event:
        event = Event.build(self._next_id, data)
        self._next_id += 1
        self._ring.append(event)
        for listener in self._listeners:
            listener(event)
        if self._gated:
            self._unreleased.append(event)
        else:
            self._fan_out([event])
        return event

    def replicate(self, events: list[Event]) -> None:
        """Events another replica published and made durable: kept with their ids, folded
        by the listeners and sent to stream clients at once. Ids already seen are skipped."""
        fresh = [event for event in events if event.id >= self._next_id]
        if not fresh:
            return
        for event in fresh:
            self._next_id = event.id + 1
            self._ring.append(event)
            for listener in self._listeners:
                listener(event)
        self._fan_out(fresh)

    def release(self, up_to_id: int) -> None:
        """Events up to `up_to_id` are durable: send them to stream clients."""
        released = []
        while self._unreleased and self._unreleased[0].id <= up_to_id:
            released.append(self._unreleased.popleft())
        if released:
            self._fan_out(released)

    def _fan_out(self, events: list[Event]) -> None:
        self._released_id = events[-1].id
        for listener in self._release_listeners:
            for event in events:
                listener(event)
        for subscriber in self._subscribers:
            subscriber.push(events)

    def publish_many(self, events: Iterable[dict[str, Any]]) -> int:
        """Publish in order; returns the last id (or the current last id when there were none)."""
        last = self.last_id
        for data in events:
            last = self.publish(data).id
        return last

    def recent(self, after: int | None = None) -> list[Event]:
        """Released events in the replay ring, all or those after an id."""
        low = -1 if after is None else after
        high = self._released_id
        return [event for event in self._ring if low < event.id <= high]

    def subscribe(self, after: int | None, queue_size: int) -> tuple[Subscription, list[Event]]:
        """A new subscription plus the backlog to send first (events after `after`, or all)."""
        if self.closed:
            raise TooManySubscribers("shutting down")
        if len(self._subscribers) >= self.max_subscribers:
            raise TooManySubscribers(f"{self.max_subscribers} stream clients connected")
        subscription = Subscription(queue_size)
        self._subscribers.add(subscription)
        return subscription, self.recent(after)

    def unsubscribe(self, subscription: Subscription) -> None:
        self._subscribers.discard(subscription)

    def close(self) -> None:
        """End every stream (shutdown)."""
        self.closed = True
        for subscriber in list(self._subscribers):
            subscriber.close()
