"""The simulator's exchange: balances, reservations and order matching. Pure and synchronous.

Every operation returns the events it produced (contract §6.3 names), so the async engine only
has to publish them, and tests can drive the rules without clocks or I/O.

Rules:
- a limit buy reserves qty x limit in the quote asset, a limit sell reserves qty in the base asset;
- an order that is marketable when it arrives takes liquidity at the current price (a buy limit
  at or above the market, a sell limit at or below it, any market order);
- a resting limit order fills at its limit once the market reaches it, up to the liquidity the
  market offers per tick and side, best limit first, so large orders fill in parts;
- IOC fills what it can at once and expires the rest; FOK fills completely at once or expires;
- cancelling releases what is still reserved.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal
from typing import Any

from sortedcontainers import SortedKeyList

from app.engine.base import CancelAck, OrderAck, OrderCommand

QTY_STEP = Decimal("0.00000001")
ZERO = Decimal(0)

Events = list[dict[str, Any]]


@dataclass(slots=True)
class Wallet:
    free: Decimal = ZERO
    locked: Decimal = ZERO


@dataclass(slots=True)
class SimOrder:
    client_order_id: str
    venue_order_id: str
    symbol: str
    side: str
    qty: Decimal
    price: Decimal | None  # limit price; None for market orders
    order_type: str
    time_in_force: str
    seq: int
    executed: Decimal = ZERO
    quote_amount: Decimal = ZERO  # sum of fill qty x fill price
    status: str = "ACCEPTED"
    reason: str | None = None
    reserve_price: Decimal = ZERO  # buys: quote reserved per unit still open
    last_ts_ns: int | None = None

    @property
    def remaining(self) -> Decimal:
        return self.qty - self.executed

    @property
    def avg_price(self) -> Decimal | None:
        return self.quote_amount / self.executed if self.executed > 0 else None


@dataclass(slots=True)
class Market:
    symbol: str
    base: str
    quote: str
    price: Decimal


@dataclass
class RiskLimits:
    max_order_qty: Decimal
    max_order_notional: Decimal


@dataclass
class SimExchange:
    markets: dict[str, Market]
    wallets: dict[str, Wallet]
    risk: RiskLimits
    liquidity: Decimal  # quote notional available per tick and per side
    open_orders: dict[str, SimOrder] = field(default_factory=dict)
    known_ids: set[str] = field(default_factory=set)
    venue_seq: int = 0
    # Resting orders per (symbol, side), best limit first then oldest: a tick touches only the
    # orders its price reaches.
    _books: dict[tuple[str, str], SortedKeyList] = field(default_factory=dict)

    def rest(self, order: SimOrder) -> None:
        """Put an order on the book (also used to recover resting orders after a restart)."""
        self.open_orders[order.client_order_id] = order
        self._book(order.symbol, order.side).add(order)

    def _book(self, symbol: str, side: str) -> SortedKeyList:
        book = self._books.get((symbol, side))
        if book is None:
            if side == "BUY":
                book = SortedKeyList(key=lambda o: (-o.price, o.seq))
            else:
                book = SortedKeyList(key=lambda o: (o.price, o.seq))
            self._books[(symbol, side)] = book
        return book

    def _unrest(self, order: SimOrder) -> None:
        if self.open_orders.pop(order.client_order_id, None) is not None:
            self._book(order.symbol, order.side).remove(order)

    # --- commands ---------------------------------------------------------------------------
    def place(self, cmd: OrderCommand, ts_ns: int) -> tuple[OrderAck, Events]:
        events: Events = []
        cid = cmd.client_order_id
        if cid in self.known_ids:
            events.append(
                {
                    "type": "error",
                    "ts_ns": ts_ns,
                    "message": "duplicate_client_order_id",
                    "client_order_id": cid,
                }
            )
            return OrderAck(cid, False, None, reason="duplicate_client_order_id"), events
        self.known_ids.add(cid)

        market = self.markets.get(cmd.symbol)
        reason = self._check(cmd, market)
        if reason is not None or market is None:
            reason = reason or "unknown_symbol"
            events.append(self._rejected_update(cmd, reason, ts_ns))
            events.append(
                {
                    "type": "order_state",
                    "client_order_id": cid,
                    "symbol": cmd.symbol,
                    "side": cmd.side,
                    "order_type": cmd.order_type,
                    "order_qty": cmd.qty,
                    "limit_price": cmd.price,
                    "status": "REJECTED",
                    "reason": reason,
                    "executed_qty": ZERO,
                    "last_ts_ns": ts_ns,
                }
            )
            return OrderAck(cid, False, "REJECTED", reason=reason), events

        self.venue_seq += 1
        order = SimOrder(
            client_order_id=cid,
            venue_order_id=f"sim-{self.venue_seq}",
            symbol=cmd.symbol,
            side=cmd.side,
            qty=cmd.qty,
            price=cmd.price,
            order_type=cmd.order_type,
            time_in_force=cmd.time_in_force,
            seq=self.venue_seq,
            last_ts_ns=ts_ns,
        )
        order.reserve_price = cmd.price if cmd.price is not None else market.price
        self._reserve(order, market)
        events.append(self._update(order, ts_ns))

        marketable = order.order_type == "market" or self._crosses(order, market.price)
        if order.order_type == "market":
            self._fill(order, market, order.qty, market.price, ts_ns, events)
        elif marketable:
            available = self._available(market)
            if order.time_in_force == "FOK" and available < order.qty:
                self._finish(order, market, "EXPIRED", "fok_not_fillable", ts_ns, events)
            else:
                self._fill(
                    order, market, min(order.remaining, available), market.price, ts_ns, events
                )
        elif order.time_in_force in ("IOC", "FOK"):
            self._finish(order, market, "EXPIRED", "not_marketable", ts_ns, events)

        if order.status in ("ACCEPTED", "PARTIALLY_FILLED"):
            if order.time_in_force == "IOC":
                self._finish(order, market, "EXPIRED", "ioc_remainder", ts_ns, events)
            else:
                self.rest(order)
        events.append(self._state(order))
        events.append(self.account_event(ts_ns))
        return (
            OrderAck(
                cid, True, order.status, venue_order_id=order.venue_order_id, reason=order.reason
            ),
            events,
        )

    def cancel(self, client_order_id: str, ts_ns: int) -> tuple[CancelAck, Events]:
        order = self.open_orders.get(client_order_id)
        if order is None:
            reason = "order_not_open" if client_order_id in self.known_ids else "unknown_order"
            event = {
                "type": "error",
                "ts_ns": ts_ns,
                "message": reason,
                "client_order_id": client_order_id,
            }
            return CancelAck(client_order_id, False, None, reason=reason), [event]
        events: Events = []
        market = self.markets[order.symbol]
        self._finish(order, market, "CANCELLED", None, ts_ns, events)
        events.append(self._state(order))
        events.append(self.account_event(ts_ns))
        return CancelAck(client_order_id, True, "CANCELLED"), events

    def on_price(self, symbol: str, price: Decimal, ts_ns: int) -> Events:
        """A new market price: the market event, then fills for resting orders it reaches."""
        market = self.markets[symbol]
        market.price = price
        events: Events = [{"type": "market", "symbol": symbol, "ts_ns": ts_ns, "price": price}]
        filled = False
        for side in ("BUY", "SELL"):
            book = self._book(symbol, side)
            available = self._available(market)
            while book and available > 0 and self._crosses(book[0], price):
                order: SimOrder = book[0]
                qty = min(order.remaining, available)
                available -= qty
                assert order.price is not None
                self._fill(order, market, qty, order.price, ts_ns, events)
                events.append(self._state(order))
                filled = True
                if order.status == "FILLED":
                    self._unrest(order)
        if filled:
            events.append(self.account_event(ts_ns))
        return events

    def account_event(self, ts_ns: int) -> dict[str, Any]:
        return {
            "type": "account",
            "ts_ns": ts_ns,
            "balances": [
                {"asset": asset, "free": w.free, "locked": w.locked}
                for asset, w in self.wallets.items()
            ],
        }

    # --- rules ------------------------------------------------------------------------------
    def _check(self, cmd: OrderCommand, market: Market | None) -> str | None:
        if market is None:
            return "unknown_symbol"
        if cmd.order_type == "limit" and cmd.price is None:
            return "price_required"
        if cmd.qty > self.risk.max_order_qty:
            return "max_order_qty_exceeded"
        price = cmd.price if cmd.price is not None else market.price
        if cmd.qty * price > self.risk.max_order_notional:
            return "max_order_notional_exceeded"
        if cmd.side == "BUY":
            if self.wallets[market.quote].free < cmd.qty * price:
                return "insufficient_funds"
        elif self.wallets[market.base].free < cmd.qty:
            return "insufficient_funds"
        return None

    @staticmethod
    def _crosses(order: SimOrder, price: Decimal) -> bool:
        if order.price is None:
            return True
        return price <= order.price if order.side == "BUY" else price >= order.price

    def _available(self, market: Market) -> Decimal:
        return (self.liquidity / market.price).quantize(QTY_STEP, rounding=ROUND_DOWN)

    def _reservation(self, order: SimOrder, market: Market, qty: Decimal) -> tuple[Wallet, Decimal]:
        """Which wallet `qty` of the order holds, and how much of it."""
        if order.side == "BUY":
            return self.wallets[market.quote], qty * order.reserve_price
        return self.wallets[market.base], qty

    def _reserve(self, order: SimOrder, market: Market) -> None:
        wallet, amount = self._reservation(order, market, order.qty)
        wallet.free -= amount
        wallet.locked += amount

    def _release(self, order: SimOrder, market: Market) -> None:
        wallet, amount = self._reservation(order, market, order.remaining)
        wallet.locked -= amount
        wallet.free += amount

    def _fill(
        self,
        order: SimOrder,
        market: Market,
        qty: Decimal,
        price: Decimal,
        ts_ns: int,
        events: Events,
    ) -> None:
        if qty <= 0:
            return
        base, quote = self.wallets[market.base], self.wallets[market.quote]
        if order.side == "BUY":
            quote.locked -= qty * order.reserve_price
            quote.free += qty * (order.reserve_price - price)  # price improvement comes back
            base.free += qty
        else:
            base.locked -= qty
            quote.free += qty * price
        order.executed += qty
        order.quote_amount += qty * price
        order.status = "FILLED" if order.remaining <= 0 else "PARTIALLY_FILLED"
        order.last_ts_ns = ts_ns
        events.append(
            {
                "type": "fill",
                "ts_ns": ts_ns,
                "client_order_id": order.client_order_id,
                "symbol": order.symbol,
                "side": order.side,
                "qty": qty,
                "price": price,
            }
        )

    def _finish(
        self,
        order: SimOrder,
        market: Market,
        status: str,
        reason: str | None,
        ts_ns: int,
        events: Events,
    ) -> None:
        """End an order that still has an open remainder: release it, report the status."""
        self._release(order, market)
        order.status = status
        order.reason = reason
        order.last_ts_ns = ts_ns
        self._unrest(order)
        events.append(self._update(order, ts_ns))

    # --- events -----------------------------------------------------------------------------
    @staticmethod
    def _update(order: SimOrder, ts_ns: int) -> dict[str, Any]:
        event: dict[str, Any] = {
            "type": "order_update",
            "ts_ns": ts_ns,
            "client_order_id": order.client_order_id,
            "venue_order_id": order.venue_order_id,
            "status": order.status,
            "symbol": order.symbol,
            "side": order.side,
            "qty": order.qty,
            "price": order.price,
            "order_type": order.order_type,
            "time_in_force": order.time_in_force,
        }
        if order.reason:
            event["reason"] = order.reason
        return {k: v for k, v in event.items() if v is not None}

    @staticmethod
    def _rejected_update(cmd: OrderCommand, reason: str, ts_ns: int) -> dict[str, Any]:
        event: dict[str, Any] = {
            "type": "order_update",
            "ts_ns": ts_ns,
            "client_order_id": cmd.client_order_id,
            "status": "REJECTED",
            "reason": reason,
            "symbol": cmd.symbol,
            "side": cmd.side,
            "qty": cmd.qty,
            "price": cmd.price,
            "order_type": cmd.order_type,
            "time_in_force": cmd.time_in_force,
        }
        return {k: v for k, v in event.items() if v is not None}

    @staticmethod
    def _state(order: SimOrder) -> dict[str, Any]:
        event: dict[str, Any] = {
            "type": "order_state",
            "client_order_id": order.client_order_id,
            "status": order.status,
            "symbol": order.symbol,
            "side": order.side,
            "order_type": order.order_type,
            "order_qty": order.qty,
            "limit_price": order.price,
            "executed_qty": order.executed,
            "avg_price": order.avg_price,
            "venue_order_id": order.venue_order_id,
            "reason": order.reason,
            "last_ts_ns": order.last_ts_ns,
        }
        return {k: v for k, v in event.items() if v is not None}
