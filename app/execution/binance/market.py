"""Market data from the venue.

`binance_rest` polls `GET /api/v3/ticker/price` for every configured symbol (contract §7.2):
2 s timeout, 0.5 s between rounds, a `market_source_error` event at most every 5 s while it
fails. `binance_ws` subscribes to the `<symbol>@trade` and `<symbol>@bookTicker` streams of
the market-data WebSocket and reconnects with capped back-off and jitter; trades set the price
and are published as `trade` events, best bid/ask as `book_top`, each at most every
`THROTTLE` seconds per symbol so a busy market cannot flood storage and clients.
"""

from __future__ import annotations

import asyncio
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from websockets.asyncio.client import connect
from websockets.exceptions import WebSocketException

from app.core.jsonutil import loads, to_decimal
from app.engine.base import EventSink
from app.execution.binance.backoff import Backoff
from app.execution.binance.limits import VenueLimits
from app.execution.binance.rest import BinanceRestClient

log = logging.getLogger("veloz.market")

POLL_PAUSE = 0.5
POLL_TIMEOUT = 2.0
ERROR_INTERVAL = 5.0
THROTTLE = 0.1

PriceSink = Callable[[str, Decimal, int], None]  # (symbol, price, ts_ns)


class MarketSource(ABC):
    """Runs one task; reports prices to `on_price` and other events to `publish`."""

    name = "market"

    def __init__(self, symbols: list[str], on_price: PriceSink, publish: EventSink,
                 clock: Callable[[], int]) -> None:  # fmt: skip
        self.symbols = symbols
        self._on_price = on_price
        self._publish = publish
        self._clock = clock
        self._task: asyncio.Task[None] | None = None
        self._last_error = -ERROR_INTERVAL
        self.last_price_at: float | None = None  # monotonic time of the last price

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"veloz-{self.name}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait([self._task])
            self._task = None

    @abstractmethod
    async def _run(self) -> None: ...

    def _price(self, symbol: str, price: Decimal, ts_ns: int) -> None:
        self.last_price_at = time.monotonic()
        self._on_price(symbol, price, ts_ns)

    def _error(self, detail: str) -> None:
        now = time.monotonic()
        if now - self._last_error < ERROR_INTERVAL:
            return
        self._last_error = now
        log.warning("market source failing: %s", detail)
        self._publish([{"type": "error", "ts_ns": self._clock(), "message": "market_source_error"}])


class TickerPoller(MarketSource):
    name = "binance-ticker"

    def __init__(
        self,
        base_url: str,
        weight_budget: int,
        symbols: list[str],
        on_price: PriceSink,
        publish: EventSink,
        clock: Callable[[], int],
    ) -> None:
        super().__init__(symbols, on_price, publish, clock)
        self.rest = BinanceRestClient(
            base_url, None, VenueLimits(weight_budget), timeout=POLL_TIMEOUT
        )

    async def stop(self) -> None:
        await super().stop()
        await self.rest.close()

    async def _run(self) -> None:
        while True:
            for symbol in self.symbols:
                answer = await self.rest.request(
                    "GET", "/api/v3/ticker/price", {"symbol": symbol}, background=True
                )
                data = answer.data if answer.ok and isinstance(answer.data, dict) else {}
                price = to_decimal(data.get("price"))
                if price is not None and price > 0:
                    self._price(symbol, price, self._clock())
                else:
                    self._error(str(answer.error or data))
            await asyncio.sleep(POLL_PAUSE)


class MarketStream(MarketSource):
    name = "binance-market-stream"

    def __init__(
        self,
        base_url: str,
        symbols: list[str],
        on_price: PriceSink,
        publish: EventSink,
        clock: Callable[[], int],
    ) -> None:
        super().__init__(symbols, on_price, publish, clock)
        streams = "/".join(
            f"{s.lower()}@{kind}" for s in symbols for kind in ("trade", "bookTicker")
        )
        self.url = f"{base_url.rstrip('/')}/stream?streams={streams}"
        self._backoff = Backoff()
        self._sent_at: dict[tuple[str, str], float] = {}
        self._pending: dict[tuple[str, str], Callable[[], None]] = {}
        self.connected = False
        self.reconnects = 0

    async def _run(self) -> None:
        first = True
        while True:
            if not first:
                await asyncio.sleep(self._backoff.delay())
                self.reconnects += 1
            first = False
            try:
                async with connect(self.url, open_timeout=10) as socket:
                    self.connected = True
                    self._backoff.reset()
                    async for message in socket:
                        self._handle(message)
                self._error("market stream closed")
            except asyncio.CancelledError:
                raise
            except (OSError, WebSocketException, TimeoutError) as exc:
                self._error(f"market stream: {exc}")
            except Exception as exc:  # a bad message must not end the feed for good
                log.exception("market stream failed")
                self._error(str(exc))
            finally:
                self.connected = False

    def _throttled(self, key: tuple[str, str], emit: Callable[[], None]) -> None:
        """Emit now, or, within THROTTLE of the last one, keep only the newest and emit it
        when the interval is over: a burst is thinned, its last word is never lost."""
        now = time.monotonic()
        wait = self._sent_at.get(key, -THROTTLE) + THROTTLE - now
        if wait <= 0:
            self._sent_at[key] = now
            emit()
            return
        if key not in self._pending:
            asyncio.get_running_loop().call_later(wait, self._flush, key)
        self._pending[key] = emit

    def _flush(self, key: tuple[str, str]) -> None:
        emit = self._pending.pop(key, None)
        if emit is not None and self._task is not None:
            self._sent_at[key] = time.monotonic()
            emit()

    def _handle(self, message: str | bytes) -> None:
        envelope = loads(message)
        data: Any = envelope.get("data") if isinstance(envelope, dict) else None
        if not isinstance(data, dict):
            return
        symbol = str(data.get("s") or "")
        if data.get("e") == "trade":
            price = to_decimal(data.get("p"))
            if price is not None and price > 0:
                self._throttled(("trade", symbol), lambda: self._trade(symbol, price, data))
        elif "b" in data and "a" in data:
            self._throttled(("book_top", symbol), lambda: self._book_top(symbol, data))

    def _trade(self, symbol: str, price: Decimal, data: dict[str, Any]) -> None:
        trade_ms = data.get("T")
        ts_ns = int(trade_ms) * 1_000_000 if isinstance(trade_ms, int) else self._clock()
        self._publish([{"type": "trade", "symbol": symbol, "venue": "binance", "price": price,
                        "qty": to_decimal(data.get("q")), "is_buyer_maker": bool(data.get("m")),
                        "trade_id": data.get("t"), "ts_ns": ts_ns}])  # fmt: skip
        self._price(symbol, price, ts_ns)

    def _book_top(self, symbol: str, data: dict[str, Any]) -> None:
        self._publish([{"type": "book_top", "symbol": symbol, "venue": "binance",
                        "bid_price": to_decimal(data.get("b")),
                        "bid_qty": to_decimal(data.get("B")),
                        "ask_price": to_decimal(data.get("a")),
                        "ask_qty": to_decimal(data.get("A")),
                        "ts_ns": self._clock()}])  # fmt: skip
