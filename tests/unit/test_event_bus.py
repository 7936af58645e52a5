"""Event ids, the replay ring, fan-out and slow-subscriber handling."""

from __future__ import annotations

import pytest

from app.events.bus import Event, EventBus, TooManySubscribers


def test_ids_are_monotonic_and_frames_are_rendered_once() -> None:
    bus = EventBus(ring_size=3)
    seen: list[int] = []
    bus.add_listener(lambda e: seen.append(e.id))
    first = bus.publish({"type": "market", "symbol": "BTCUSDT", "price": 1.5})
    assert first.id == 1
    assert first.frame == (
        b'id: 1\nevent: market\ndata: {"type":"market","symbol":"BTCUSDT","price":1.5}\n\n'
    )
    assert bus.publish_many([{"type": "a"}, {"type": "b"}]) == 3
    assert seen == [1, 2, 3]
    assert bus.publish_many([]) == 3


def test_event_without_type_is_framed_as_event() -> None:
    event = Event.build(9, {"x": 1})
    assert event.frame.startswith(b"id: 9\nevent: event\n")
    assert event.with_id_json() == '{"x":1,"_id":9}'


def test_ring_keeps_the_newest_and_resume_filters_by_id() -> None:
    bus = EventBus(ring_size=3)
    for n in range(5):
        bus.publish({"type": "t", "n": n})
    assert [e.id for e in bus.recent()] == [3, 4, 5]
    assert [e.id for e in bus.recent(after=4)] == [5]
    assert bus.recent(after=5) == []


def test_restore_continues_ids_after_the_last_persisted_one() -> None:
    bus = EventBus(ring_size=10)
    bus.restore([Event.build(41, {"type": "t"}), Event.build(42, {"type": "t"})], last_id=42)
    assert bus.publish({"type": "t"}).id == 43
    assert [e.id for e in bus.recent(after=41)] == [42, 43]


async def test_subscribers_get_events_in_order() -> None:
    bus = EventBus()
    bus.publish({"type": "old"})
    subscription, backlog = bus.subscribe(after=None, queue_size=10)
    assert [e.type for e in backlog] == ["old"]
    bus.publish({"type": "new1"})
    bus.publish({"type": "new2"})
    batch = await subscription.next_batch(timeout=1)
    assert batch is not None
    assert [e.type for e in batch] == ["new1", "new2"]
    assert await subscription.next_batch(timeout=0.01) is None  # idle → keep-alive time


async def test_a_subscriber_that_falls_behind_is_cut_off() -> None:
    bus = EventBus()
    slow, _ = bus.subscribe(after=None, queue_size=2)
    fast, _ = bus.subscribe(after=None, queue_size=100)
    for n in range(5):
        bus.publish({"type": "t", "n": n})
    assert slow.overflowed and slow.closed
    assert await slow.next_batch(timeout=1) == []  # nothing held in memory any more
    batch = await fast.next_batch(timeout=1)
    assert batch is not None and len(batch) == 5


def test_subscriber_cap_and_shutdown() -> None:
    bus = EventBus(max_subscribers=1)
    first, _ = bus.subscribe(after=None, queue_size=1)
    with pytest.raises(TooManySubscribers):
        bus.subscribe(after=None, queue_size=1)
    bus.unsubscribe(first)
    second, _ = bus.subscribe(after=None, queue_size=1)
    bus.close()
    assert second.closed
    with pytest.raises(TooManySubscribers):
        bus.subscribe(after=None, queue_size=1)


async def test_gated_bus_sends_only_released_events() -> None:
    bus = EventBus(gated=True)
    bus.restore([Event.build(5, {"type": "old"})], last_id=5)
    subscription, backlog = bus.subscribe(after=None, queue_size=10)
    assert [e.id for e in backlog] == [5]
    folded: list[int] = []
    bus.add_listener(lambda e: folded.append(e.id))
    bus.publish({"type": "a"})
    bus.publish({"type": "b"})
    assert folded == [6, 7]  # state folding is not held back
    assert await subscription.next_batch(timeout=0.01) is None
    assert [e.id for e in bus.recent()] == [5]  # a new client's backlog stops at the durable id
    bus.release(6)
    batch = await subscription.next_batch(timeout=1)
    assert batch is not None and [e.id for e in batch] == [6]
    bus.release(7)
    batch = await subscription.next_batch(timeout=1)
    assert batch is not None and [e.id for e in batch] == [7]
    assert [e.id for e in bus.recent(after=5)] == [6, 7]


async def test_one_large_release_does_not_cut_off_a_client_that_keeps_up() -> None:
    bus = EventBus(gated=True)
    subscription, _ = bus.subscribe(after=None, queue_size=3)
    for n in range(10):
        bus.publish({"type": "t", "n": n})
    bus.release(10)  # e.g. after a slow commit: ten events at once
    assert not subscription.closed
    batch = await subscription.next_batch(timeout=1)
    assert batch is not None and len(batch) == 10
    for n in range(4):
        bus.publish({"type": "t", "n": n})
        bus.release(bus.last_id)
    assert subscription.overflowed  # four releases unread: it fell behind
