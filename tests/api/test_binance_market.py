"""Venue market data through HTTP: ticker polling (`binance_rest`) and the market-data
WebSocket (`binance_ws`), both against the stand-in; the simulator matches against them."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from app.core.config import Settings
from tests.binance_standin.fixtures import eventually
from tests.binance_standin.server import StandinBinance, serve_standin
from tests.conftest import Gateway, running_gateway

FAKE_ENGINE = Path(__file__).resolve().parents[1] / "fixtures" / "fake_engine.py"


@pytest.fixture
async def standin() -> AsyncIterator[StandinBinance]:
    async with serve_standin() as running:
        yield running


async def market(gw: Gateway) -> dict[str, Any]:
    response = await gw.client.get("/api/market")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


async def test_ticker_polling_sets_the_price_and_the_simulator_matches_on_it(
    make_settings: Callable[..., Settings], standin: StandinBinance
) -> None:
    settings = make_settings(market_source="binance_rest", binance_base_url=standin.base_url)
    async with running_gateway(settings) as gw:
        await eventually(lambda: _price_is(gw, 50000.0))
        config = (await gw.client.get("/api/config")).json()
        assert (config["market_source"], config["binance_base_url"]) == (
            "binance_rest", standin.base_url,
        )  # fmt: skip
        (first, *_) = standin.venue.calls("/api/v3/ticker/price")
        assert first.query == "symbol=BTCUSDT"
        assert first.headers["user-agent"] == "VeloZ/0.1"

        order = {"side": "BUY", "qty": 0.01, "price": 49000, "client_order_id": "tick-1"}
        placed = await gw.client.post("/api/order", json=order)
        assert placed.json()["status"] == "ACCEPTED"
        standin.venue.prices["BTCUSDT"] = Decimal("48900")
        await eventually(lambda: _price_is(gw, 48900.0))

        async def filled() -> bool:
            state = await gw.client.get("/api/order_state", params={"client_order_id": "tick-1"})
            return bool(state.json()["status"] == "FILLED")

        await eventually(filled)


async def test_ticker_failures_are_reported_at_most_every_five_seconds(
    make_settings: Callable[..., Settings], standin: StandinBinance
) -> None:
    standin.venue.fail_next("/api/v3/ticker/price", 500, times=1000)
    settings = make_settings(market_source="binance_rest", binance_base_url=standin.base_url)
    async with running_gateway(settings) as gw:
        await eventually(lambda: len(standin.venue.calls("/api/v3/ticker/price")) >= 3)
        metrics = (await gw.client.get("/metrics")).text
        assert 'veloz_errors_total{component="engine",type="market_source_error"} 1.0' in metrics
        items = (await gw.client.get("/api/orders")).json()["items"]
        assert items == []  # market errors are not order history (contract §7.2)
        assert (await market(gw))["price"] is None


async def test_market_stream_trades_set_the_price_and_it_reconnects(
    make_settings: Callable[..., Settings], standin: StandinBinance
) -> None:
    settings = make_settings(
        market_source="binance_ws", binance_market_ws_url=standin.market_ws_url
    )
    async with running_gateway(settings) as gw:
        await eventually(lambda: standin.market_sockets)
        (streams,) = standin.market_sockets.values()
        assert streams == {"btcusdt@trade", "btcusdt@bookTicker"}
        await standin.push_market("btcusdt@trade", _trade("43210.5", 1))
        await eventually(lambda: _price_is(gw, 43210.5))

        await standin.drop_streams()
        await eventually(lambda: not standin.market_sockets)
        await eventually(lambda: standin.market_sockets)
        await standin.push_market("btcusdt@trade", _trade("43300", 2))
        await eventually(lambda: _price_is(gw, 43300.0))

        for n, price in enumerate(("43400", "43500", "43600"), start=3):  # a burst
            await standin.push_market("btcusdt@trade", _trade(price, n))
        await eventually(lambda: _price_is(gw, 43600.0))  # thinned, but the last one arrives
        metrics = (await gw.client.get("/metrics")).text
        assert "veloz_trade_updates_total 3.0" in metrics or "veloz_trade_updates_total 4.0" in (
            metrics
        )


def _trade(price: str, trade_id: int) -> dict[str, Any]:
    return {"e": "trade", "E": 1, "s": "BTCUSDT", "t": trade_id, "p": price, "q": "0.5",
            "T": 1_795_500_000_000 + trade_id, "m": False}  # fmt: skip


async def _price_is(gw: Gateway, price: float) -> bool:
    return (await market(gw))["price"] == price


async def test_an_external_engines_prices_give_way_to_fresh_venue_prices(
    make_settings: Callable[..., Settings], standin: StandinBinance, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_TICK_MS", "20")
    settings = make_settings(market_source="binance_rest", binance_base_url=standin.base_url,
                             engine_cmd=f"{sys.executable} {FAKE_ENGINE}")  # fmt: skip
    async with running_gateway(settings) as gw:
        await eventually(lambda: _price_is(gw, 50000.0))
        seen: set[float] = set()

        async def polled_three_more_times() -> bool:
            seen.add((await market(gw))["price"])
            return len(standin.venue.calls("/api/v3/ticker/price")) >= 4

        await eventually(polled_three_more_times)  # the engine ticked every 20 ms meanwhile
        assert seen == {50000.0}
