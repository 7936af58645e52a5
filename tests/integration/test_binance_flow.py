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
