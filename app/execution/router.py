"""Chooses what executes orders, from VELOZ_EXECUTION_MODE (contract §7.1)."""

from __future__ import annotations

from collections.abc import Callable

from app.core.config import Settings
from app.engine.base import Engine, EventSink
from app.engine.sim import SimEngine
from app.engine.stdio import StdioEngine
from app.execution.binance.engine import BinanceEngine
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
