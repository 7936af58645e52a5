"""A gateway in Binance mode wired to a running stand-in, and waiting for conditions."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from pydantic import SecretStr

from app.core.config import Settings
from tests.binance_standin.server import StandinBinance
from tests.conftest import Gateway, running_gateway

API_KEY = "standin-key-1"
API_SECRET = "standin-secret-1-0123456789abcdef"


def binance_settings(
    make_settings: Callable[..., Settings], standin: StandinBinance, **overrides: Any
) -> Settings:
    values: dict[str, Any] = {
        "execution_mode": "binance_testnet_spot",
        "binance_trade_base_url": standin.base_url,
        "binance_ws_api_url": standin.ws_api_url,
        "binance_api_key": API_KEY,
        "binance_api_secret": SecretStr(API_SECRET),
    }
    values.update(overrides)
    return make_settings(**values)


@asynccontextmanager
async def binance_gateway(
    make_settings: Callable[..., Settings], standin: StandinBinance, **overrides: Any
) -> AsyncIterator[Gateway]:
    async with running_gateway(binance_settings(make_settings, standin, **overrides)) as gw:
        yield gw


async def eventually(
    check: Callable[[], Any] | Callable[[], Awaitable[Any]], timeout: float = 10.0
) -> Any:
    """Wait until `check()` returns something truthy; returns it. Fails after `timeout`."""
    async with asyncio.timeout(timeout):
        while True:
            value = check()
            if asyncio.iscoroutine(value):
                value = await value
            if value:
                return value
            await asyncio.sleep(0.01)


async def stream_connected(gw: Gateway) -> bool:
    config = (await gw.client.get("/api/config")).json()
    return bool(config["binance_user_stream_connected"])
