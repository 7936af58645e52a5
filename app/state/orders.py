"""Order state folded from engine events (contract §6.4, with decision F12: VWAP avg_price)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from app.core.jsonutil import to_decimal

# Event types folded into order state.
ORDER_STATE_EVENTS = frozenset({"order_received", "order_update", "fill", "order_state"})
# Event types kept in the /api/orders history (contract §4.4).
ORDER_HISTORY_EVENTS = frozenset({"order_received", "order_update", "fill", "error"})
# Errors that are about market data, not orders: never in the history (contract §7.2).
MARKET_ERRORS = frozenset({"market_source_error"})
FINAL_STATUSES = frozenset({"FILLED", "CANCELLED", "REJECTED", "EXPIRED"})
OPEN_STATUSES = frozenset({"PENDING", "ACCEPTED", "PARTIALLY_FILLED"})
# A fill never moves an order out of these (contract §6.4).
_FILL_KEEPS = frozenset({"CANCELLED", "REJECTED", "EXPIRED"})
_FILL_TOLERANCE = Decimal("1e-12")


def is_order_related(kind: str, data: Mapping[str, Any]) -> bool:
    """Whether an event belongs in the /api/orders history."""
    if kind == "error":
        return data.get("message") not in MARKET_ERRORS
    return kind in ORDER_HISTORY_EVENTS


def _truthy(value: Any) -> bool:
    return value is not None and value != "" and value != 0


def _float(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


@dataclass(slots=True)
class OrderState:
    client_order_id: str
    symbol: str | None = None
    side: str | None = None
    order_type: str | None = None
    order_qty: Decimal | None = None
    limit_price: Decimal | None = None
    venue_order_id: str | None = None
    status: str | None = None
    reason: str | None = None
    executed_qty: Decimal = Decimal(0)
    avg_price: Decimal | None = None
    last_ts_ns: int | None = None
    # Beyond the contract's 12 fields: what the gateway needs for idempotency and recovery.
    time_in_force: str | None = None
    request_fingerprint: str | None = None
    seq: int = 0

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def remaining_qty(self) -> Decimal:
        if self.order_qty is None:
            return Decimal(0)
        return max(self.order_qty - self.executed_qty, Decimal(0))

    def to_public(self) -> dict[str, Any]:
        """The contract's OrderState record: exactly these 12 fields, in this order."""
        return {
            "client_order_id": self.client_order_id,
            "symbol": self.symbol,
            "side": self.side,
            "order_type": self.order_type,
            "order_qty": _float(self.order_qty),
            "limit_price": _float(self.limit_price),
            "venue_order_id": self.venue_order_id,
            "status": self.status,
            "reason": self.reason,
            "executed_qty": float(self.executed_qty),
            "avg_price": _float(self.avg_price),
            "last_ts_ns": self.last_ts_ns,
        }


class OrderStore:
    """Every order the gateway has seen, in first-seen order; tracks which changed since a flush."""

    def __init__(self) -> None:
        self._orders: dict[str, OrderState] = {}
        self._next_seq = 1
        self.dirty: set[str] = set()

    def __len__(self) -> int:
        return len(self._orders)

    def __iter__(self) -> Iterator[OrderState]:
        return iter(self._orders.values())

    def get(self, client_order_id: str) -> OrderState | None:
        return self._orders.get(client_order_id)

    def restore(self, orders: list[OrderState]) -> None:
        for order in sorted(orders, key=lambda o: o.seq):
            self._orders[order.client_order_id] = order
            self._next_seq = max(self._next_seq, order.seq + 1)

    def take_dirty(self) -> list[OrderState]:
        changed = [self._orders[cid] for cid in self.dirty if cid in self._orders]
        self.dirty.clear()
        return changed

    def _ensure(self, client_order_id: str) -> OrderState:
        order = self._orders.get(client_order_id)
        if order is None:
            order = OrderState(client_order_id=client_order_id, seq=self._next_seq)
            self._next_seq += 1
            self._orders[client_order_id] = order
        self.dirty.add(client_order_id)
        return order

    def note_order_params(
        self,
        client_order_id: str,
        *,
        symbol: str | None,
        side: str | None,
        qty: Decimal | None,
        price: Decimal | None,
        order_type: str | None = None,
        time_in_force: str | None = None,
        fingerprint: str | None = None,
    ) -> OrderState:
        """Record what the client asked for, before the venue answers. Never sets the status."""
        order = self._ensure(client_order_id)
        if symbol:
            order.symbol = symbol
        if side:
            order.side = side
        if qty is not None:
            order.order_qty = qty
        if price is not None:
            order.limit_price = price
        if order_type:
            order.order_type = order_type
        if time_in_force:
            order.time_in_force = time_in_force
        if fingerprint:
            order.request_fingerprint = fingerprint
        return order

    def apply(self, event: Mapping[str, Any]) -> OrderState | None:
        """Fold one event; returns the changed order, or None if the event is not about orders."""
        kind = event.get("type")
        if kind not in ORDER_STATE_EVENTS:
            return None
        cid = event.get("client_order_id")
        if not cid:
            return None
        order = self._ensure(str(cid))
        if kind == "order_received":
            _fold_received(order, event)
        elif kind == "order_update":
            _fold_update(order, event)
        elif kind == "fill":
            _fold_fill(order, event)
        else:
            _fold_snapshot(order, event)
        return order


def _set_text(order: OrderState, event: Mapping[str, Any], keys: tuple[str, ...]) -> None:
    for key in keys:
        value = event.get(key)
        if _truthy(value):
            setattr(order, key, str(value))


def _fold_received(order: OrderState, event: Mapping[str, Any]) -> None:
    _set_text(order, event, ("symbol", "side", "order_type"))
    if event.get("quantity") is not None:
        order.order_qty = to_decimal(event["quantity"])
    if event.get("price") is not None:
        order.limit_price = to_decimal(event["price"])
    order.status = "PENDING"


def _fold_update(order: OrderState, event: Mapping[str, Any]) -> None:
    _set_text(order, event, ("symbol", "side", "venue_order_id", "status", "reason", "order_type"))
    if event.get("qty") is not None:
        order.order_qty = to_decimal(event["qty"])
    if event.get("price") is not None:
        order.limit_price = to_decimal(event["price"])
    if _truthy(event.get("time_in_force")):
        order.time_in_force = str(event["time_in_force"])
    if _truthy(event.get("ts_ns")):
        order.last_ts_ns = int(event["ts_ns"])


def _fold_fill(order: OrderState, event: Mapping[str, Any]) -> None:
    if _truthy(event.get("symbol")):
        order.symbol = str(event["symbol"])
    qty = to_decimal(event.get("qty")) or Decimal(0)
    price = to_decimal(event.get("price"))
    previous = order.executed_qty
    order.executed_qty = previous + qty
    if order.executed_qty > 0 and price is not None:
        # F12: the volume-weighted average of all fills, not the last fill's price.
        if order.avg_price is None or previous <= 0:
            order.avg_price = price
        else:
            order.avg_price = (order.avg_price * previous + price * qty) / order.executed_qty
    if _truthy(event.get("ts_ns")):
        order.last_ts_ns = int(event["ts_ns"])
    if order.order_qty is not None and order.order_qty > 0 and order.status not in _FILL_KEEPS:
        if order.executed_qty + _FILL_TOLERANCE >= order.order_qty:
            order.status = "FILLED"
        elif order.executed_qty > 0:
            order.status = "PARTIALLY_FILLED"


def _fold_snapshot(order: OrderState, event: Mapping[str, Any]) -> None:
    _set_text(order, event, ("symbol", "side", "venue_order_id", "status", "reason", "order_type"))
    for source, target in (
        ("order_qty", "order_qty"),
        ("limit_price", "limit_price"),
        ("avg_price", "avg_price"),
    ):
        if event.get(source) is not None:
            setattr(order, target, to_decimal(event[source]))
    if event.get("executed_qty") is not None:
        order.executed_qty = to_decimal(event["executed_qty"]) or Decimal(0)
    if _truthy(event.get("last_ts_ns")):
        order.last_ts_ns = int(event["last_ts_ns"])
