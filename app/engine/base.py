"""The Engine interface: what the gateway needs from anything that executes orders.

The in-process simulator, a bridge to an external engine process and a venue client all fit it.
Engines report what happens by publishing events (contract §6.3 field names) to the event bus;
the acknowledgements returned here are for the HTTP answer only.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

Side = Literal["BUY", "SELL"]
OrderType = Literal["limit", "market"]
TimeInForce = Literal["GTC", "IOC", "FOK"]

# Publishes a batch of events in order; returns the id of the last one.
EventSink = Callable[[list[dict[str, Any]]], int]


class EngineUnavailable(Exception):
    """The engine cannot take commands right now (not started, crashed, restarting)."""


class VenueNotConfigured(Exception):
    """The venue needs credentials that are not configured."""


@dataclass(frozen=True, slots=True)
class OrderCommand:
    client_order_id: str
    symbol: str
    side: Side
    qty: Decimal
    price: Decimal | None  # None for market orders
    order_type: OrderType = "limit"
    time_in_force: TimeInForce = "GTC"


@dataclass(frozen=True, slots=True)
class OrderAck:
    client_order_id: str
    accepted: bool
    status: str | None
    venue_order_id: str | None = None
    reason: str | None = None
    details: Any = None  # the venue's answer when it refused or its outcome is unknown


@dataclass(frozen=True, slots=True)
class CancelAck:
    client_order_id: str
    cancelled: bool
    status: str | None
    reason: str | None = None
    details: Any = None


class Engine(ABC):
    name: str = "engine"

    @property
    @abstractmethod
    def connected(self) -> bool:
        """True while the engine can take commands."""

    @abstractmethod
    async def start(self) -> None: ...

    @abstractmethod
    async def stop(self) -> None: ...

    @abstractmethod
    async def place_order(self, command: OrderCommand) -> OrderAck: ...

    @abstractmethod
    async def cancel_order(self, client_order_id: str, symbol: str | None) -> CancelAck: ...

    async def ping(self) -> dict[str, Any]:
        """The /api/execution/ping answer."""
        return {"ok": self.connected}
