"""What the gateway knows of each venue order, and the events that move it forward.

The user-data stream, the REST poller and reconciliation after an unknown outcome all report
the same facts (status, cumulative filled quantity and quote amount). Each report is turned
into events against what was already emitted, so a fill reported twice, or by both paths, is
published once: only growth of the cumulative quantity becomes a `fill`, and only a changed
status becomes an `order_update`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from app.core.jsonutil import to_decimal
from app.state.orders import FINAL_STATUSES, OrderState

STATUS_MAP = {"NEW": "ACCEPTED", "CANCELED": "CANCELLED", "PENDING_NEW": "ACCEPTED"}
# How far along an order is; a report never moves it back (the paths deliver out of order).
_PROGRESS = {"UNKNOWN": -1, "ACCEPTED": 0, "PARTIALLY_FILLED": 1}
_FINAL_PROGRESS = 3


def _progress(status: str | None) -> int:
    if status is None:
        return -2
    if status in FINAL_STATUSES:
        return _FINAL_PROGRESS
    return _PROGRESS.get(status, 2)  # PENDING_CANCEL and the like: past partial fills


def map_status(venue_status: Any) -> str:
    """The venue's order status in the gateway's vocabulary (contract §7.3)."""
    text = str(venue_status or "").strip().upper()
    if not text:
        return "UNKNOWN"
    return STATUS_MAP.get(text, text)


@dataclass(slots=True)
class VenueReport:
    """One observation of a venue order, from any path."""

    client_order_id: str
    symbol: str | None
    status: str | None  # the venue's word, e.g. NEW, PARTIALLY_FILLED, CANCELED
    cum_qty: Decimal | None = None
    cum_quote: Decimal | None = None
    venue_order_id: str | None = None
    side: str | None = None
    orig_qty: Decimal | None = None
    price: Decimal | None = None
    ts_ns: int | None = None
    last_qty: Decimal | None = None  # stream only: this trade's quantity and price
    last_price: Decimal | None = None

    @classmethod
    def from_rest(cls, order: dict[str, Any], ts_ns: int) -> VenueReport:
        """`GET /api/v3/order` (and the POST answer)."""
        update_ms = order.get("updateTime") or order.get("transactTime")
        return cls(
            # A cancel's answer names the order in origClientOrderId (clientOrderId is the
            # cancel's own id).
            client_order_id=str(order.get("origClientOrderId") or order.get("clientOrderId") or ""),
            symbol=order.get("symbol"),
            status=order.get("status"),
            cum_qty=to_decimal(order.get("executedQty")),
            cum_quote=to_decimal(order.get("cummulativeQuoteQty")),
            venue_order_id=_text(order.get("orderId")),
            side=order.get("side"),
            orig_qty=to_decimal(order.get("origQty")),
            price=to_decimal(order.get("price")),
            ts_ns=int(update_ms) * 1_000_000 if isinstance(update_ms, int) else ts_ns,
        )

    @classmethod
    def from_execution_report(cls, event: dict[str, Any], ts_ns: int) -> VenueReport:
        """A stream `executionReport` (c, C, s, S, i, X, q, p, z, Z, l, L, E)."""
        event_ms = event.get("E")
        return cls(
            # A cancel's report names the cancel request in `c` and the order in `C`.
            client_order_id=str(event.get("C") or event.get("c") or ""),
            symbol=event.get("s"),
            status=event.get("X"),
            cum_qty=to_decimal(event.get("z")),
            cum_quote=to_decimal(event.get("Z")),
            venue_order_id=_text(event.get("i")),
            side=event.get("S"),
            orig_qty=to_decimal(event.get("q")),
            price=to_decimal(event.get("p")),
            ts_ns=int(event_ms) * 1_000_000 if isinstance(event_ms, int) else ts_ns,
            last_qty=to_decimal(event.get("l")),
            last_price=to_decimal(event.get("L")),
        )


@dataclass(slots=True)
class TrackedOrder:
    client_order_id: str
    symbol: str
    side: str | None = None
    status: str | None = None  # the gateway status last published
    executed: Decimal = Decimal(0)
    quote: Decimal = Decimal(0)
    unknown_since: float | None = None  # monotonic time the outcome became unknown

    @property
    def final(self) -> bool:
        return self.status in FINAL_STATUSES


class OrderTracker:
    """Venue orders by client id; turns reports into events, once."""

    def __init__(self, lookup: Callable[[str], OrderState | None] | None = None) -> None:
        self._orders: dict[str, TrackedOrder] = {}
        # The folded state, for orders this process has not tracked yet (after a restart).
        self.lookup = lookup or (lambda _cid: None)

    def __contains__(self, client_order_id: str) -> bool:
        return client_order_id in self._orders

    def get(self, client_order_id: str) -> TrackedOrder | None:
        return self._orders.get(client_order_id)

    def track(self, client_order_id: str, symbol: str, side: str | None = None) -> TrackedOrder:
        order = self._orders.get(client_order_id)
        if order is None:
            order = self._from_state(client_order_id) or TrackedOrder(client_order_id, symbol)
            self._orders[client_order_id] = order
        order.symbol = symbol or order.symbol
        order.side = side or order.side
        return order

    def open_orders(self) -> list[TrackedOrder]:
        return [o for o in self._orders.values() if not o.final]

    def unknown_orders(self) -> list[TrackedOrder]:
        return [o for o in self._orders.values() if o.unknown_since is not None]

    def forget_final(self) -> None:
        """Finished orders leave the tracker; the folded state keeps what they reached."""
        for cid in [cid for cid, o in self._orders.items() if o.final and o.unknown_since is None]:
            del self._orders[cid]

    def _from_state(self, client_order_id: str) -> TrackedOrder | None:
        state = self.lookup(client_order_id)
        if state is None:
            return None
        executed = state.executed_qty
        return TrackedOrder(
            client_order_id=client_order_id,
            symbol=state.symbol or "",
            side=state.side,
            status=state.status,
            executed=executed,
            quote=executed * (state.avg_price or Decimal(0)),
        )

    def apply(self, report: VenueReport, ts_ns: int) -> list[dict[str, Any]]:
        """The events this report adds to what was published before: an `order_update` when
        the status changed (or is first learned), then a `fill` for new executed quantity."""
        cid = report.client_order_id
        if not cid:
            return []
        order = self.track(cid, report.symbol or "", report.side)
        order.unknown_since = None
        events: list[dict[str, Any]] = []
        status = map_status(report.status) if report.status else order.status
        ts = report.ts_ns or ts_ns
        stale = report.cum_qty is not None and report.cum_qty < order.executed
        moves_on = _progress(status) > _progress(order.status) or (
            _progress(status) == _progress(order.status) != _FINAL_PROGRESS
        )
        if status is not None and status != order.status and moves_on and not stale:
            update: dict[str, Any] = {
                "type": "order_update",
                "ts_ns": ts,
                "client_order_id": cid,
                "venue_order_id": report.venue_order_id,
                "status": status,
                "symbol": order.symbol or None,
                "side": order.side,
                "qty": _positive(report.orig_qty),
                "price": _positive(report.price),
            }
            events.append({k: v for k, v in update.items() if v is not None})
            order.status = status
        fill = self._fill(order, report, ts)
        if fill is not None:
            events.append(fill)
        return events

    @staticmethod
    def _fill(order: TrackedOrder, report: VenueReport, ts_ns: int) -> dict[str, Any] | None:
        cum_qty = report.cum_qty
        if cum_qty is None or cum_qty <= order.executed:
            return None  # nothing new: a repeat, or a report older than one already seen
        delta = cum_qty - order.executed
        price: Decimal | None = None
        if report.last_qty == delta and report.last_price and report.last_price > 0:
            price = report.last_price
        elif report.cum_quote is not None and report.cum_quote > order.quote:
            price = (report.cum_quote - order.quote) / delta
        order.executed = cum_qty
        if report.cum_quote is not None:
            order.quote = report.cum_quote
        elif price is not None:
            order.quote += price * delta
        fill: dict[str, Any] = {
            "type": "fill",
            "ts_ns": ts_ns,
            "client_order_id": order.client_order_id,
            "symbol": order.symbol or None,
            "side": order.side,
            "qty": delta,
            "price": price,
        }
        return {k: v for k, v in fill.items() if v is not None}


def _positive(value: Decimal | None) -> Decimal | None:
    return value if value is not None and value > 0 else None


def _text(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)
