"""Orders over HTTP against the real server, watched on the live stream."""

from __future__ import annotations

import re
from typing import Any

from tests.integration.conftest import StartGateway, get_json
from tests.integration.sse_client import SseEvent, SseStream


def balance(account: dict[str, Any], asset: str) -> tuple[float, float]:
    for entry in account["balances"]:
        if entry["asset"] == asset:
            return entry["free"], entry["locked"]
    raise AssertionError(f"no {asset} balance in {account}")


def stream_balance(event: SseEvent, asset: str) -> tuple[float, float]:
    return balance(event.data, asset)


def about(cid: str, event_type: str, status: str | None = None) -> Any:
    def match(event: SseEvent) -> bool:
        return (
            event.event == event_type
            and event.data.get("client_order_id") == cid
            and (status is None or event.data.get("status") == status)
        )

    return match


async def test_limit_order_rests_reserves_and_cancels_market_order_fills(
    start_gateway: StartGateway,
) -> None:
    server = await start_gateway(env={"VELOZ_SIM_TICK_MS": "20"})
    stream = await SseStream.open(server.port)
    try:
        await stream.events_until(lambda e: e.event == "market", timeout=5)
        async with server.client() as client:
            # --- a resting limit BUY far below the market -------------------------------
            response = await client.post(
                "/api/order",
                json={
                    "side": "BUY",
                    "symbol": "BTCUSDT",
                    "qty": 0.01,
                    "price": 1000,
                    "client_order_id": "it-rest-1",
                },
            )
            assert response.status_code == 200, response.text
            body = response.json()
            assert set(body) == {"ok", "client_order_id", "venue_order_id", "status"}, body
            assert body["ok"] is True
            assert body["client_order_id"] == "it-rest-1"
            assert re.fullmatch(r"sim-\d+", body["venue_order_id"]), body
            assert body["status"] == "ACCEPTED"

            seen = await stream.events_until(about("it-rest-1", "order_update", "ACCEPTED"))
            update = seen[-1].data
            assert update["venue_order_id"] == body["venue_order_id"]
            assert update["side"] == "BUY"
            assert update["symbol"] == "BTCUSDT"
            assert update["qty"] == 0.01
            assert update["price"] == 1000
            state = (await stream.events_until(about("it-rest-1", "order_state")))[-1].data
            assert state["status"] == "ACCEPTED"
            assert state["executed_qty"] == 0
            account_event = (await stream.events_until(lambda e: e.event == "account"))[-1]
            assert stream_balance(account_event, "USDT") == (99990.0, 10.0)

            account = await get_json(client, "/api/account")
            assert balance(account, "USDT") == (99990.0, 10.0)
            assert balance(account, "BTC") == (0.0, 0.0)
            order = await get_json(client, "/api/order_state", client_order_id="it-rest-1")
            assert order["status"] == "ACCEPTED"
            assert order["venue_order_id"] == body["venue_order_id"]
            assert order["limit_price"] == 1000.0
            assert order["order_qty"] == 0.01

            # --- cancel it: the reservation comes back ----------------------------------
            response = await client.post("/api/cancel", json={"client_order_id": "it-rest-1"})
            assert response.status_code == 200, response.text
            assert response.json() == {
                "ok": True,
                "client_order_id": "it-rest-1",
                "status": "CANCELLED",
            }
            await stream.events_until(about("it-rest-1", "order_update", "CANCELLED"))
            account_event = (await stream.events_until(lambda e: e.event == "account"))[-1]
            assert stream_balance(account_event, "USDT") == (100000.0, 0.0)
            account = await get_json(client, "/api/account")
            assert balance(account, "USDT") == (100000.0, 0.0)
            order = await get_json(client, "/api/order_state", client_order_id="it-rest-1")
            assert order["status"] == "CANCELLED"

            # Cancelling it again is refused; the state stays.
            response = await client.post("/api/cancel", json={"client_order_id": "it-rest-1"})
            assert response.status_code == 409, response.text
            assert response.json()["error"] == "order_not_open"

            # --- a market order fills at once -------------------------------------------
            market = await get_json(client, "/api/market")
            response = await client.post(
                "/api/order",
                json={
                    "side": "BUY",
                    "qty": 0.001,
                    "order_type": "market",
                    "client_order_id": "it-mkt-1",
                },
            )
            assert response.status_code == 200, response.text
            body = response.json()
            assert body["ok"] is True
            assert body["client_order_id"] == "it-mkt-1"
            assert body["status"] == "FILLED"
            assert re.fullmatch(r"sim-\d+", body["venue_order_id"]), body

            fill = (await stream.events_until(about("it-mkt-1", "fill")))[-1].data
            assert fill["qty"] == 0.001
            assert fill["side"] == "BUY"
            assert fill["symbol"] == "BTCUSDT"
            assert abs(fill["price"] - market["price"]) < market["price"] * 0.01
            state = (await stream.events_until(about("it-mkt-1", "order_state")))[-1].data
            assert state["status"] == "FILLED"
            assert state["executed_qty"] == 0.001

            account = await get_json(client, "/api/account")
            assert balance(account, "BTC") == (0.001, 0.0)
            usdt_free, usdt_locked = balance(account, "USDT")
            assert usdt_locked == 0.0
            assert abs(usdt_free - (100000 - 0.001 * fill["price"])) < 1e-6

            order = await get_json(client, "/api/order_state", client_order_id="it-mkt-1")
            assert order["status"] == "FILLED"
            assert order["executed_qty"] == 0.001
            assert order["avg_price"] == fill["price"]

            history = await get_json(client, "/api/orders")
            kinds = [(i["type"], i.get("client_order_id")) for i in history["items"]]
            assert ("fill", "it-mkt-1") in kinds
            assert all(isinstance(i["_id"], int) for i in history["items"])
    finally:
        await stream.close()
