"""An order's whole life against the stand-in venue, through a real gateway process: placed
over signed REST, filled in two parts over the WebSocket API user-data stream, seen in order
state, balances and the SSE stream exactly once each."""

from __future__ import annotations

from typing import Any

import httpx

from tests.binance_standin.fixtures import API_KEY, API_SECRET, eventually
from tests.binance_standin.server import serve_standin
from tests.integration.conftest import StartGateway, get_json
from tests.integration.sse_client import SseEvent, SseStream


def venue_env(standin: Any) -> dict[str, str]:
    return {
        "VELOZ_EXECUTION_MODE": "binance_testnet_spot",
        "VELOZ_BINANCE_TRADE_BASE_URL": standin.base_url,
        "VELOZ_BINANCE_WS_API_URL": standin.ws_api_url,
        "VELOZ_BINANCE_API_KEY": API_KEY,
        "VELOZ_BINANCE_API_SECRET": API_SECRET,
        "VELOZ_LOG_LEVEL": "debug",
    }


async def _connected(client: httpx.AsyncClient) -> bool:
    return bool((await get_json(client, "/api/config"))["binance_user_stream_connected"])


def _balances(account: dict[str, Any]) -> dict[str, tuple[float, float]]:
    return {b["asset"]: (b["free"], b["locked"]) for b in account["balances"]}


async def test_order_lifecycle_with_partial_and_full_fill(start_gateway: StartGateway) -> None:
    async with serve_standin() as standin:
        standin.venue.add_account(API_KEY, API_SECRET, USDT="10000", BTC="0")
        server = await start_gateway(env=venue_env(standin))
        async with server.client() as client:
            await eventually(lambda: _connected(client))
            await eventually(
                lambda: _balances_now(client, {"USDT": (10000.0, 0.0), "BTC": (0.0, 0.0)})
            )
            sse = await SseStream.open(server.port, "/api/stream")

            response = await client.post(
                "/api/order",
                json={"side": "BUY", "symbol": "BTCUSDT", "qty": 0.002, "price": 50000,
                      "client_order_id": "life-1"},
            )  # fmt: skip
            assert response.status_code == 200
            assert response.json() == {"ok": True, "client_order_id": "life-1",
                                       "venue_order_id": "1000", "status": "ACCEPTED"}  # fmt: skip
            state = await get_json(client, "/api/order_state", client_order_id="life-1")
            assert (state["status"], state["venue_order_id"], state["order_qty"]) == (
                "ACCEPTED", "1000", 0.002,
            )  # fmt: skip

            await standin.trade(API_KEY, "life-1", "0.001", "49990")
            state = await eventually(lambda: _state_when(client, "life-1", "PARTIALLY_FILLED"))
            assert (state["executed_qty"], state["avg_price"]) == (0.001, 49990.0)
            # Bought 0.001 at 49990 of a 100 USDT reservation at 50000: 50 stay locked.
            await eventually(
                lambda: _balances_now(client, {"USDT": (9900.01, 50.0), "BTC": (0.001, 0.0)})
            )

            await standin.trade(API_KEY, "life-1", "0.001", "50000")
            state = await eventually(lambda: _state_when(client, "life-1", "FILLED"))
            assert state["executed_qty"] == 0.002
            assert state["avg_price"] == 49995.0
            await eventually(
                lambda: _balances_now(client, {"USDT": (9900.01, 0.0), "BTC": (0.002, 0.0)})
            )

            events = await sse.events_until(
                lambda e: e.event == "fill" and e.data.get("qty") == 0.001
                and e.data.get("price") == 50000.0
            )  # fmt: skip
            mine = [_short(e) for e in events if e.data.get("client_order_id") == "life-1"]
            assert mine == [
                ("order_update", "ACCEPTED", None),
                ("order_update", "PARTIALLY_FILLED", None),
                ("fill", None, 0.001),
                ("order_update", "FILLED", None),
                ("fill", None, 0.001),
            ]
            accounts = [e for e in events if e.event == "account" and e.data.get("partial")]
            assert accounts, "outboundAccountPosition reached the stream as account events"
            assert all({"asset", "free", "locked"} <= set(b) for a in accounts
                       for b in a.data["balances"])  # fmt: skip

            history = (await get_json(client, "/api/orders"))["items"]
            fills = [e for e in history if e["type"] == "fill"]
            assert [(f["qty"], f["price"]) for f in fills] == [(0.001, 49990.0), (0.001, 50000.0)]
            await sse.close()
        assert API_SECRET not in server.log_text()


def _short(event: SseEvent) -> tuple[str, str | None, float | None]:
    return (
        event.event,
        event.data.get("status"),
        event.data.get("qty") if event.event == "fill" else None,
    )


async def _state_when(client: httpx.AsyncClient, cid: str, status: str) -> Any:
    state = await get_json(client, "/api/order_state", client_order_id=cid)
    return state if state["status"] == status else None


async def _balances_now(client: httpx.AsyncClient, wanted: dict[str, tuple[float, float]]) -> bool:
    return _balances(await get_json(client, "/api/account")) == wanted


async def test_stored_key_trades_at_once_survives_restart_and_never_shows(
    start_gateway: StartGateway, tmp_path: Any
) -> None:
    async with serve_standin() as standin:
        standin.venue.add_account(API_KEY, API_SECRET, USDT="1000")
        env = venue_env(standin)
        del env["VELOZ_BINANCE_API_KEY"], env["VELOZ_BINANCE_API_SECRET"]
        data_dir = tmp_path / "venue-data"
        server = await start_gateway(env=env, data_dir=data_dir)
        answers: list[str] = []
        async with server.client() as client:
            created = await client.post("/api/exchange-keys", json={
                "exchange": "binance", "apiKey": API_KEY, "apiSecret": API_SECRET})  # fmt: skip
            assert created.status_code == 201
            await eventually(lambda: _connected(client))
            order = {"side": "BUY", "qty": 0.001, "price": 100, "client_order_id": "kept-1"}
            placed = await client.post("/api/order", json=order)
            assert placed.json()["ok"] is True
            tested = await client.post(
                "/api/exchange-keys/test", json={"keyId": created.json()["keyId"]}
            )
            assert tested.json()["success"] is True
            for response in (created, placed, tested, await client.get("/api/exchange-keys"),
                             await client.get("/api/config")):  # fmt: skip
                answers.append(response.text)
        server.terminate()
        assert await server.wait_exit(10) == 0

        again = await start_gateway(env=env, data_dir=data_dir)
        async with again.client() as client:
            await eventually(lambda: _connected(client))  # with the stored key, no env needed
            assert (await get_json(client, "/api/execution/ping"))["ok"] is True
        logs = server.log_text() + again.log_text()
        assert "user-data stream subscribed" in logs
        for text in (logs, *answers):
            assert API_SECRET not in text
            assert API_KEY not in text
