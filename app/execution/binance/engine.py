"""The venue as the gateway's Engine (`VELOZ_EXECUTION_MODE=binance_testnet_spot`).

Orders and cancels go out over signed REST; what happens to them afterwards arrives on the
user-data stream. While the stream is down a poller asks REST for each open order, and after
every (re)subscription one REST pass closes the gap, so no fill is missed; the tracker makes
sure a fill both paths report is published once. An order whose placement had an unknown
outcome (5xx, -1007, timeout) is looked up by its client id before anything is sent again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from app.core.config import Settings
from app.core.jsonutil import to_decimal
from app.engine.base import (
    CancelAck,
    Engine,
    EngineUnavailable,
    EventSink,
    OrderAck,
    OrderCommand,
    VenueNotConfigured,
)
from app.execution.binance.limits import VenueLimits
from app.execution.binance.rest import (
    ORDER_DOES_NOT_EXIST,
    TIMESTAMP_OUTSIDE_WINDOW,
    BinanceRestClient,
    CallObserver,
    RestResult,
)
from app.execution.binance.signing import Credentials, ParamValue
from app.execution.binance.tracking import OrderTracker, TrackedOrder, VenueReport
from app.execution.binance.user_stream import SubscriptionRefused, UserDataStream
from app.state.orders import OrderState

log = logging.getLogger("veloz.binance")

POLL_INTERVAL = 0.5
ACCOUNT_REFRESH = 5.0  # seconds between account snapshots while the stream is down
ERROR_EVENT_INTERVAL = 5.0  # at most one error event of a kind this often (contract §7.3)
UNKNOWN_GRACE = 10.0  # an order the venue still does not know after this was never placed
UNKNOWN = "execution_status_unknown"


class BinanceEngine(Engine):
    name = "binance"

    def __init__(
        self,
        settings: Settings,
        publish: EventSink,
        clock: Callable[[], int],
        credentials: Credentials | None,
        observe: CallObserver | None = None,
    ) -> None:
        self._publish = publish
        self._clock = clock
        self.default_symbol = settings.market_symbol
        self.limits = VenueLimits(settings.binance_weight_budget)
        self.rest = BinanceRestClient(
            settings.binance_trade_base_url,
            credentials,
            self.limits,
            recv_window_ms=settings.binance_recv_window,
            observe=observe,
        )
        self.tracker = OrderTracker()
        self.stream = UserDataStream(
            settings.binance_ws_api_url,
            credentials=lambda: self.rest.credentials,
            now_ms=self.rest.now_ms,
            recv_window_ms=settings.binance_recv_window,
            on_event=self._on_stream_event,
            on_subscribed=self._after_subscribe,
            on_problem=self._stream_problem,
        )
        self._running = False
        self._poller: asyncio.Task[None] | None = None
        self._last_error: dict[str, float] = {}
        self._account_at = 0.0
        self.poll_count = 0
        # Set by the runtime: open (or unknown) orders from before a restart.
        self.open_orders: Callable[[], list[OrderState]] = list

    @property
    def connected(self) -> bool:
        return self._running

    @property
    def configured(self) -> bool:
        return self.rest.configured

    # --- lifecycle --------------------------------------------------------------------------
    async def start(self) -> None:
        for order in self.open_orders():
            tracked = self.tracker.track(order.client_order_id, order.symbol or "", order.side)
            if tracked.status == "UNKNOWN":  # still to be reconciled, as before the restart
                tracked.unknown_since = time.monotonic()
        self._running = True
        self._poller = asyncio.create_task(self._poll_loop(), name="veloz-binance-poller")
        if self.configured:
            self.stream.start()

    async def stop(self) -> None:
        self._running = False
        if self._poller is not None:
            self._poller.cancel()
            await asyncio.wait([self._poller])
            self._poller = None
        await self.stream.stop()
        await self.rest.close()

    async def set_credentials(self, credentials: Credentials | None) -> None:
        """Use new credentials from now on; start the stream if it was not running."""
        self.rest.credentials = credentials
        if credentials is None or not credentials.usable:
            await self.stream.stop()
        elif self.stream.running:
            await self.stream.reconnect()  # subscribe again as the new key's account
        elif self._running:
            self.stream.start()

    def tracker_lookup(self, lookup: Callable[[str], OrderState | None]) -> None:
        self.tracker.lookup = lookup

    # --- commands ---------------------------------------------------------------------------
    async def place_order(self, command: OrderCommand) -> OrderAck:
        self._require_ready()
        cid = command.client_order_id
        tracked = self.tracker.track(cid, command.symbol, command.side)
        params = _order_params(command)
        result = await self.rest.place_order(params)
        if result.unknown:
            result = await self._find_or_resend(command, params)
        if result.ok and isinstance(result.data, dict):
            now = self._clock()
            self._emit(self.tracker.apply(VenueReport.from_rest(result.data, now), now))
            return OrderAck(
                cid, True, tracked.status or "ACCEPTED", _text(result.data.get("orderId"))
            )
        if result.unknown:
            return self._mark_unknown(command, tracked, result)
        tracked.status = "REJECTED"
        self._emit([_update(command, self._clock(), "REJECTED", reason="binance_error")])
        return OrderAck(cid, False, "REJECTED", reason="binance_error", details=result.error)

    async def _find_or_resend(
        self, command: OrderCommand, params: dict[str, ParamValue]
    ) -> RestResult:
        """After an unknown outcome: the venue's record of the order if it has one; if it
        certainly has none, the order sent once more (the same client id keeps it single)."""
        found = await self.rest.query_order(command.symbol, command.client_order_id)
        if found.ok:
            return found
        if found.code == ORDER_DOES_NOT_EXIST:
            log.info("order %s was not placed; sending it again", command.client_order_id)
            return await self.rest.place_order(params)
        return RestResult(False, error=found.error, unknown=True)

    def _mark_unknown(
        self, command: OrderCommand, tracked: TrackedOrder, result: RestResult
    ) -> OrderAck:
        tracked.status = "UNKNOWN"
        tracked.unknown_since = time.monotonic()
        self._emit([_update(command, self._clock(), "UNKNOWN", reason=UNKNOWN)])
        return OrderAck(
            command.client_order_id, False, "UNKNOWN", reason=UNKNOWN, details=result.error
        )

    async def cancel_order(self, client_order_id: str, symbol: str | None) -> CancelAck:
        self._require_ready()
        tracked = self.tracker.get(client_order_id)
        symbol = symbol or (tracked.symbol if tracked else None) or self.default_symbol
        result = await self.rest.cancel_order(symbol, client_order_id)
        if result.ok and isinstance(result.data, dict):
            self.tracker.track(client_order_id, symbol)
            report = VenueReport.from_rest(result.data, self._clock())
            report.client_order_id = client_order_id
            self._emit(self.tracker.apply(report, self._clock()))
            return CancelAck(client_order_id, True, "CANCELLED")
        reason = UNKNOWN if result.unknown else "binance_error"
        # F8: a refused cancel changes nothing about the order; it is only reported.
        self._emit(
            [
                {
                    "type": "error",
                    "ts_ns": self._clock(),
                    "message": "cancel_rejected",
                    "client_order_id": client_order_id,
                    "reason": reason,
                }
            ]
        )
        return CancelAck(client_order_id, False, None, reason=reason, details=result.error)

    async def ping(self) -> dict[str, Any]:
        if not self.configured:
            return {"ok": False, "error": "binance_not_configured", "details": self.status()}
        result = await self.rest.ping()
        answer = result.data if result.ok else result.error
        return {"ok": result.ok, "result": answer, "details": self.status()}

    def status(self) -> dict[str, Any]:
        return {
            "venue": "binance_testnet_spot",
            "base_url": self.rest.base_url,
            "configured": self.configured,
            "limits": self.limits.snapshot(),
            "clock_offset_ms": self.rest.clock_offset_ms,
            "user_stream": {
                "url": self.stream.url,
                "connected": self.stream.connected,
                "reconnects": self.stream.reconnects,
            },
            "tracked_orders": len(self.tracker.open_orders()),
        }

    def _require_ready(self) -> None:
        if not self._running:
            raise EngineUnavailable("the venue connection is not started")
        if not self.configured:
            raise VenueNotConfigured("Binance API key and secret are not configured")

    # --- the stream -------------------------------------------------------------------------
    def _on_stream_event(self, event: dict[str, Any]) -> None:
        kind = event.get("e")
        now = self._clock()
        if kind == "executionReport":
            self._emit(self.tracker.apply(VenueReport.from_execution_report(event, now), now))
        elif kind == "outboundAccountPosition":
            event_ms = event.get("E")
            ts_ns = int(event_ms) * 1_000_000 if isinstance(event_ms, int) else now
            balances = [_balance(b.get("a"), b.get("f"), b.get("l")) for b in event.get("B", [])]
            # F9: only the assets that changed; the account folds them in per asset.
            self._emit([{"type": "account", "ts_ns": ts_ns, "balances": balances,
                         "partial": True}])  # fmt: skip
        elif kind == "eventStreamTerminated":
            asyncio.get_running_loop().create_task(self.stream.reconnect())

    async def _after_subscribe(self) -> None:
        """Whatever happened while the stream was down, learned over REST."""
        await self._refresh_account()
        await self._poll_open(self.tracker.open_orders())

    async def _stream_problem(self, message: str, exc: Exception | None) -> None:
        self._error_event(message, None if exc is None else str(exc))
        if isinstance(exc, SubscriptionRefused) and exc.code == TIMESTAMP_OUTSIDE_WINDOW:
            await self.rest.sync_clock()  # the next subscription is signed on the venue's time

    # --- REST polling -----------------------------------------------------------------------
    async def _poll_loop(self) -> None:
        while True:
            await asyncio.sleep(POLL_INTERVAL)
            if not self.configured:
                continue
            try:
                await self._poll_once()
            except Exception:  # polling must survive anything one answer does
                log.exception("order poll failed")

    async def _poll_once(self) -> None:
        self.tracker.forget_final()
        unknown = self.tracker.unknown_orders()
        if unknown:
            await self._poll_orders(unknown)
        if not self.stream.connected:
            self.poll_count += 1
            await self._poll_open([o for o in self.tracker.open_orders() if o not in unknown])
            if time.monotonic() - self._account_at >= ACCOUNT_REFRESH:
                await self._refresh_account()

    async def _poll_open(self, orders: list[TrackedOrder]) -> None:
        """One `openOrders` call per symbol; the orders it no longer lists have finished
        since, and are asked about one by one for their final state and fills."""
        by_symbol: dict[str, list[TrackedOrder]] = {}
        for order in orders:
            by_symbol.setdefault(order.symbol or self.default_symbol, []).append(order)
        for symbol, group in by_symbol.items():
            listing = await self.rest.open_orders(symbol)
            if not listing.ok or not isinstance(listing.data, list):
                if listing.sent:
                    self._error_event("binance_poll_error", str(listing.error))
                continue
            listed = {str(o.get("clientOrderId")): o for o in listing.data if isinstance(o, dict)}
            finished = []
            for order in group:
                found = listed.get(order.client_order_id)
                if found is None:
                    finished.append(order)
                else:
                    now = self._clock()
                    self._emit(self.tracker.apply(VenueReport.from_rest(found, now), now))
            await self._poll_orders(finished)

    async def _poll_orders(self, orders: list[TrackedOrder]) -> None:
        for order in orders:
            symbol = order.symbol or self.default_symbol
            result = await self.rest.query_order(symbol, order.client_order_id, background=True)
            if result.ok and isinstance(result.data, dict):
                report = VenueReport.from_rest(result.data, self._clock())
                report.client_order_id = order.client_order_id
                self._emit(self.tracker.apply(report, self._clock()))
            elif result.code == ORDER_DOES_NOT_EXIST and order.unknown_since is not None:
                if time.monotonic() - order.unknown_since >= UNKNOWN_GRACE:
                    order.unknown_since = None
                    order.status = "REJECTED"
                    self._emit([{"type": "order_update", "ts_ns": self._clock(),
                                 "client_order_id": order.client_order_id,
                                 "status": "REJECTED", "reason": "not_placed"}])  # fmt: skip
            elif result.sent:
                self._error_event("binance_poll_error", str(result.error))

    async def _refresh_account(self) -> None:
        self._account_at = time.monotonic()
        result = await self.rest.account()
        if not result.ok or not isinstance(result.data, dict):
            return
        balances = [
            _balance(b.get("asset"), b.get("free"), b.get("locked"))
            for b in result.data.get("balances", [])
            if isinstance(b, dict)
        ]
        self._emit([{"type": "account", "ts_ns": self._clock(), "balances": balances}])

    # --- events -----------------------------------------------------------------------------
    def _emit(self, events: list[dict[str, Any]]) -> None:
        if events:
            self._publish(events)

    def _error_event(self, message: str, detail: str | None) -> None:
        now = time.monotonic()
        if now - self._last_error.get(message, -ERROR_EVENT_INTERVAL) < ERROR_EVENT_INTERVAL:
            return
        self._last_error[message] = now
        event: dict[str, Any] = {"type": "error", "ts_ns": self._clock(), "message": message}
        if detail:
            event["detail"] = detail
        self._publish([event])


def _order_params(command: OrderCommand) -> dict[str, ParamValue]:
    params: dict[str, ParamValue] = {
        "symbol": command.symbol,
        "side": command.side,
        "quantity": command.qty,
        "newClientOrderId": command.client_order_id,
    }
    if command.order_type == "market":
        params["type"] = "MARKET"
    else:
        params["type"] = "LIMIT"
        params["timeInForce"] = command.time_in_force
        params["price"] = command.price if command.price is not None else Decimal(0)
    return params


def _update(command: OrderCommand, ts_ns: int, status: str, reason: str) -> dict[str, Any]:
    event: dict[str, Any] = {
        "type": "order_update",
        "ts_ns": ts_ns,
        "client_order_id": command.client_order_id,
        "status": status,
        "reason": reason,
        "symbol": command.symbol,
        "side": command.side,
        "qty": command.qty,
        "price": command.price,
    }
    return {k: v for k, v in event.items() if v is not None}


def _balance(asset: Any, free: Any, locked: Any) -> dict[str, Any]:
    return {
        "asset": str(asset or ""),
        "free": to_decimal(free) or Decimal(0),
        "locked": to_decimal(locked) or Decimal(0),
    }


def _text(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)
