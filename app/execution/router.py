"""Chooses what executes orders, from VELOZ_EXECUTION_MODE (contract §7.1)."""

from __future__ import annotations

from collections.abc import Callable

from app.core.config import Settings
from app.engine.base import Engine, EventSink
from app.engine.sim import SimEngine
from app.engine.stdio import StdioEngine
from app.execution.binance.engine import BinanceEngine
from app.execution.binance.market import MarketSource, MarketStream, PriceSink, TickerPoller
from app.execution.binance.signing import Credentials


def build_engine(settings: Settings, publish: EventSink, clock: Callable[[], int]) -> Engine:
    if settings.execution_mode == "binance_testnet_spot":
        # Credentials from the environment; a stored exchange key replaces them at start.
        secret = settings.binance_api_secret.get_secret_value()
        credentials = Credentials(settings.binance_api_key, secret) if secret else None
        return BinanceEngine(settings, publish, clock, credentials)
    if settings.engine_cmd:
        return StdioEngine(settings.engine_cmd, publish, clock)
    return SimEngine(settings, publish, clock)


def build_market_source(
    settings: Settings, on_price: PriceSink, publish: EventSink, clock: Callable[[], int]
) -> MarketSource | None:
    """Venue market data from VELOZ_MARKET_SOURCE (contract §7.2); None for the simulator."""
    symbols = list(settings.market_symbols)
    if settings.market_source == "binance_rest":
        return TickerPoller(settings.binance_base_url, settings.binance_weight_budget, symbols,
                            on_price, publish, clock)  # fmt: skip
    if settings.market_source == "binance_ws":
        return MarketStream(settings.binance_market_ws_url, symbols, on_price, publish, clock)
    return None
