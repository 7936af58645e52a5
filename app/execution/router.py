"""Chooses what executes orders, from VELOZ_EXECUTION_MODE (contract §7.1)."""

from __future__ import annotations

from collections.abc import Callable

from app.core.config import Settings
from app.engine.base import Engine, EventSink
from app.engine.sim import SimEngine
from app.engine.stdio import StdioEngine


def build_engine(settings: Settings, publish: EventSink, clock: Callable[[], int]) -> Engine:
    if settings.execution_mode == "sim_engine":
        if settings.engine_cmd:
            return StdioEngine(settings.engine_cmd, publish, clock)
        return SimEngine(settings, publish, clock)
    raise ValueError(f"VELOZ_EXECUTION_MODE={settings.execution_mode} is not available")
