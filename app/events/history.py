"""The last order-related events, backing /api/orders (contract §4.4)."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from app.events.bus import Event
from app.state.orders import is_order_related

ORDER_HISTORY_SIZE = 200


class OrderHistory:
    def __init__(self, size: int = ORDER_HISTORY_SIZE) -> None:
        self._events: deque[Event] = deque(maxlen=size)

    def restore(self, events: Iterable[Event]) -> None:
        self._events.extend(events)

    def on_event(self, event: Event) -> None:
        if is_order_related(event.type, event.data):
            self._events.append(event)

    def events(self) -> list[Event]:
        return list(self._events)
