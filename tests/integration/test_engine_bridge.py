"""The bridge to an external engine process, against a stand-in of the original simulating
engine: order flow, cancels, junk on stdout, a killed or crashing engine (503, then recovery)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from app.core.config import Settings
from app.engine.stdio import StdioEngine
from tests.conftest import Gateway, running_gateway

FAKE_ENGINE = Path(__file__).resolve().parents[1] / "fixtures" / "fake_engine.py"
COMMAND = f"{sys.executable} {FAKE_ENGINE}"


async def eventually(check: Callable[[], Any], timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)


async def order_state(gateway: Gateway, cid: str) -> dict[str, Any]:
    response = await gateway.client.get("/api/order_state", params={"client_order_id": cid})
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def connected(gateway: Gateway) -> bool:
    body = (await gateway.client.get("/api/health")).json()
    return bool(body["engine"]["connected"])


def engine_of(gateway: Gateway) -> StdioEngine:
    engine = gateway.runtime.engine
    assert isinstance(engine, StdioEngine)
    return engine


@pytest.fixture
def bridge_settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(engine_cmd=COMMAND)


async def test_order_flow_through_the_engine_process(
    bridge_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_FILL_MS", "200")
    async with running_gateway(bridge_settings) as gateway:
        assert await connected(gateway)
        response = await gateway.client.post(
            "/api/order",
            json={"side": "buy", "qty": 0.001, "price": 50000, "client_order_id": "b1"},
        )
        assert response.status_code == 200
        assert response.json() == {
            "ok": True,
            "client_order_id": "b1",
            "venue_order_id": "sim-1",
            "status": "ACCEPTED",
        }
        filled = await eventually(lambda: _status_is(gateway, "b1", "FILLED"), timeout=5.0)
        assert filled["executed_qty"] == 0.001
        assert filled["avg_price"] is not None
        account = (await gateway.client.get("/api/account")).json()
        btc = next(b for b in account["balances"] if b["asset"] == "BTC")
        assert btc["free"] == 0.001
        market = await eventually(lambda: _market_price(gateway))
        assert 41_980 < market < 42_020
        types = [e["type"] for e in (await gateway.client.get("/api/orders")).json()["items"]]
        assert types[:2] == ["order_update", "fill"]


async def _status_is(gateway: Gateway, cid: str, status: str) -> dict[str, Any] | None:
    state = await order_state(gateway, cid)
    return state if state["status"] == status else None


async def _market_price(gateway: Gateway) -> float | None:
    price: float | None = (await gateway.client.get("/api/market")).json()["price"]
    return price


async def test_rejections_and_cancels(
    bridge_settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("FAKE_FILL_MS", "0")  # orders rest
    record = tmp_path / "commands.txt"
    monkeypatch.setenv("FAKE_RECORD", str(record))
    async with running_gateway(bridge_settings) as gateway:
        client = gateway.client
        poor = await client.post(
            "/api/order", json={"qty": 10, "price": 20000, "client_order_id": "poor"}
        )
        assert poor.json() == {
            "ok": False,
            "client_order_id": "poor",
            "status": "REJECTED",
            "error": "insufficient_funds",
            "message": "the order was rejected: insufficient_funds",
        }
        await client.post(
            "/api/order", json={"qty": 0.00001, "price": 1000, "client_order_id": "rest"}
        )
        cancel = await client.post("/api/cancel", json={"client_order_id": "rest"})
        assert cancel.json() == {"ok": True, "client_order_id": "rest", "status": "CANCELLED"}
        assert (await order_state(gateway, "rest"))["status"] == "CANCELLED"
        again = await client.post("/api/cancel", json={"client_order_id": "rest"})
        assert again.status_code == 409
        assert again.json()["error"] == "order_not_open"
        lines = record.read_text().splitlines()
        # Numbers go to the engine without exponents (F11).
        assert "ORDER BUY BTCUSDT 0.00001 1000 rest" in lines
        assert "CANCEL rest" in lines


async def test_junk_on_stdout_is_ignored(
    bridge_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_GARBAGE", "1")
    async with running_gateway(bridge_settings) as gateway:
        response = await gateway.client.post(
            "/api/order", json={"qty": 0.001, "price": 50000, "client_order_id": "g1"}
        )
        assert response.json()["ok"] is True
        await eventually(lambda: _status_is(gateway, "g1", "FILLED"))
        assert await connected(gateway)


async def test_a_killed_engine_answers_503_then_recovers_with_resting_orders(
    bridge_settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("FAKE_FILL_MS", "0")
    record = tmp_path / "commands.txt"
    monkeypatch.setenv("FAKE_RECORD", str(record))
    async with running_gateway(bridge_settings) as gateway:
        client = gateway.client
        accepted = await client.post(
            "/api/order", json={"qty": 0.01, "price": 1000, "client_order_id": "keep"}
        )
        assert accepted.json()["status"] == "ACCEPTED"
        engine = engine_of(gateway)
        first_pid = engine.pid
        assert first_pid is not None
        os.kill(first_pid, signal.SIGKILL)
        await eventually(lambda: _not(connected(gateway)))
        refused = await client.post("/api/order", json={"qty": 0.01, "price": 1000})
        assert refused.status_code == 503
        assert refused.json()["error"] == "engine_unavailable"
        cancel = await client.post("/api/cancel", json={"client_order_id": "keep"})
        assert cancel.status_code == 503
        await eventually(lambda: connected(gateway), timeout=10.0)
        assert engine.pid != first_pid
        assert engine.restarts == 1
        # The acknowledged resting order was handed to the new process, and still cancels.
        await eventually(
            lambda: record.read_text().splitlines().count("ORDER BUY BTCUSDT 0.01 1000 keep") == 2
        )
        cancel = await client.post("/api/cancel", json={"client_order_id": "keep"})
        assert cancel.json() == {"ok": True, "client_order_id": "keep", "status": "CANCELLED"}
        errors = [
            e for e in (await client.get("/api/orders")).json()["items"] if e["type"] == "error"
        ]
        assert any(e["message"] == "engine_exited" for e in errors)


async def _not(value: Any) -> bool:
    return not await value


async def test_an_engine_crashing_mid_order_answers_503_and_comes_back(
    bridge_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_CRASH_ON", "boom")
    async with running_gateway(bridge_settings) as gateway:
        client = gateway.client
        response = await client.post(
            "/api/order", json={"qty": 0.001, "price": 50000, "client_order_id": "boom"}
        )
        assert response.status_code == 503
        assert response.json()["error"] == "engine_unavailable"
        await eventually(lambda: connected(gateway), timeout=10.0)
        ok = await client.post(
            "/api/order", json={"qty": 0.001, "price": 50000, "client_order_id": "after"}
        )
        assert ok.json()["ok"] is True
        missing = await client.get("/api/order_state", params={"client_order_id": "boom"})
        assert missing.status_code == 404  # the refused order was never recorded
