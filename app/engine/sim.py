"""The in-process simulated engine (`sim_engine` mode, the default).

A market per configured symbol moves by a random walk every tick; orders are matched by
`SimExchange`. Deterministic prices when a seed is given. Everything runs on the event loop: a
command is matched and its events published before the call returns, so nothing is lost
between acknowledgement and state.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal

from app import __version__
from app.core.config import Settings, split_symbol
from app.engine.base import (
    CancelAck,
    Engine,
    EngineUnavailable,
    EventSink,
    OrderAck,
    OrderCommand,
)
from app.engine.matching import Market, RiskLimits, SimExchange, SimOrder, Wallet
from app.state.account import Balance
from app.state.orders import OrderState

log = logging.getLogger("veloz.engine")

PRICE_TICK = Decimal("0.01")


class RandomWalk:
    """Multiplicative Gaussian steps, rounded to the price tick, never below one tick."""

    def __init__(self, volatility: Decimal, seed: int | None) -> None:
        self.volatility = float(volatility)
        self.random = random.Random(seed)  # noqa: S311 (market noise, not security)

    def step(self, price: Decimal) -> Decimal:
        change = Decimal(repr(self.random.gauss(0.0, self.volatility)))
        moved = (price * (1 + change)).quantize(PRICE_TICK)
        return max(moved, PRICE_TICK)


class SimEngine(Engine):
    name = "sim"

    def __init__(
        self,
        settings: Settings,
        publish: EventSink,
        clock: Callable[[], int],
    ) -> None:
        self._publish = publish
        self._clock = clock
        self._tick_seconds = settings.sim_tick_ms / 1000
        self._walk = RandomWalk(settings.sim_volatility, settings.sim_seed)
        markets = {}
        for symbol in settings.market_symbols:
            base, quote = split_symbol(symbol)
            markets[symbol] = Market(symbol, base, quote, settings.start_price(symbol))
        self.exchange = SimExchange(
            markets=markets,
            wallets={},
            risk=RiskLimits(settings.risk_max_order_qty, settings.risk_max_order_notional),
            liquidity=settings.sim_liquidity,
        )
        self._initial_balances = settings.sim_balances
        # With venue market data the simulator matches against those prices, not a random walk.
        self.external_prices = settings.market_source != "sim"
        self._task: asyncio.Task[None] | None = None
        self._running = False

    @property
    def connected(self) -> bool:
        return self._running

    # --- recovery ---------------------------------------------------------------------------
    def restore(
        self,
        balances: Iterable[Balance],
        orders: Iterable[OrderState],
        prices: Mapping[str, Decimal],
    ) -> None:
        """Continue from persisted state: balances with their reservations, resting orders."""
        exchange = self.exchange
        wallets = {b.asset: Wallet(b.free, b.locked) for b in balances}
        if not wallets:
            wallets = {asset: Wallet(amount) for asset, amount in self._initial_balances.items()}
        for market in exchange.markets.values():
            wallets.setdefault(market.quote, Wallet())
            wallets.setdefault(market.base, Wallet())
            if market.symbol in prices:
                market.price = prices[market.symbol]
        exchange.wallets = wallets
        for order in orders:
            exchange.known_ids.add(order.client_order_id)
            seq = _venue_seq(order.venue_order_id)
            exchange.venue_seq = max(exchange.venue_seq, seq)
            if not order.is_open or order.symbol not in exchange.markets:
                continue
            if order.order_qty is None or order.limit_price is None or order.side is None:
                continue
            executed = order.executed_qty
            exchange.rest(
                SimOrder(
                    client_order_id=order.client_order_id,
                    venue_order_id=order.venue_order_id or f"sim-{seq}",
                    symbol=order.symbol,
                    side=order.side,
                    qty=order.order_qty,
                    price=order.limit_price,
                    order_type=order.order_type or "limit",
                    time_in_force=order.time_in_force or "GTC",
                    seq=seq,
                    executed=executed,
                    quote_amount=executed * (order.avg_price or Decimal(0)),
                    status=order.status or "ACCEPTED",
                    reserve_price=order.limit_price,
                    last_ts_ns=order.last_ts_ns,
                )
            )

    def add_markets(self, settings: Settings) -> bool:
        """Start simulating newly configured symbols; False if some were removed (restart)."""
        exchange = self.exchange
        for symbol in settings.market_symbols:
            if symbol not in exchange.markets:
                base, quote = split_symbol(symbol)
                exchange.markets[symbol] = Market(symbol, base, quote, settings.start_price(symbol))
                exchange.wallets.setdefault(base, Wallet())
                exchange.wallets.setdefault(quote, Wallet())
        return set(exchange.markets) <= set(settings.market_symbols)

    # --- lifecycle --------------------------------------------------------------------------
    async def start(self) -> None:
        if not self.exchange.wallets:
            self.restore([], [], {})
        now = self._clock()
        self._publish(
            [
                {"type": "engine_started", "version": __version__},
                self.exchange.account_event(now),
            ]
        )
        self._running = True
        if not self.external_prices:
            self._task = asyncio.create_task(self._ticker(), name="veloz-sim-market")

    async def stop(self) -> None:
        self._running = False
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait([self._task])  # unlike `await`, keeps our own cancellation
            self._task = None

    async def _ticker(self) -> None:
        loop = asyncio.get_running_loop()
        next_tick = loop.time()
        while True:
            next_tick += self._tick_seconds
            await asyncio.sleep(max(0.0, next_tick - loop.time()))
            try:
                self.tick()
            except Exception:  # a bad tick must never stop the market
                log.exception("market tick failed")

    def tick(self) -> None:
        """Move every market one step and match what the new prices reach."""
        now = self._clock()
        events = []
        for market in self.exchange.markets.values():
            events += self.exchange.on_price(market.symbol, self._walk.step(market.price), now)
        self._publish(events)

    def feed_price(self, symbol: str, price: Decimal, ts_ns: int) -> None:
        """A price from outside (venue market data): publish it and match what it reaches."""
        if symbol in self.exchange.markets:
            self._publish(self.exchange.on_price(symbol, price, ts_ns))

    # --- commands ---------------------------------------------------------------------------
    async def place_order(self, command: OrderCommand) -> OrderAck:
        self._require_running()
        ack, events = self.exchange.place(command, self._clock())
        self._publish(events)
        return ack

    async def cancel_order(self, client_order_id: str, symbol: str | None) -> CancelAck:
        self._require_running()
        ack, events = self.exchange.cancel(client_order_id, self._clock())
        self._publish(events)
        return ack

    def _require_running(self) -> None:
        if not self._running:
            raise EngineUnavailable("the simulated engine is not running")


def _venue_seq(venue_order_id: str | None) -> int:
    if venue_order_id and venue_order_id.startswith("sim-"):
        with contextlib.suppress(ValueError):
            return int(venue_order_id[4:])
    return 0
