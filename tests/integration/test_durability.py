"""Restarts on the same data directory (F2, F13): nothing acknowledged is lost, ids never go back.

The server is stopped either by SIGKILL (a crash: no shutdown code runs) or by SIGTERM (a graceful
stop), then started again on the same VELOZ_DATA_DIR.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.integration.conftest import GatewayServer, StartGateway, get_json
from tests.integration.sse_client import SseEvent, SseStream, events_in

ENV = {
    "VELOZ_SIM_TICK_MS": "5",
    # A small replay ring, so the first run's stream moves well past it before the stop.
    "VELOZ_EVENT_BUFFER_SIZE": "50",
}
# After the restart the ring holds every event of the test, however slowly the client gets to
# it: the restarted `engine_started` cannot be pushed out before the client reads the replay.
RESTART_ENV = {**ENV, "VELOZ_EVENT_BUFFER_SIZE": "100000"}
MARKER = {"client_order_id": "dur-marker-1", "side": "BUY", "qty": 0.01, "price": 100}

ORDERS: list[dict[str, Any]] = [
    {"client_order_id": "dur-rest-1", "side": "BUY", "qty": 0.01, "price": 1000},
    {"client_order_id": "dur-rest-2", "side": "BUY", "qty": 0.02, "price": 2000},
    {"client_order_id": "dur-fill-1", "side": "BUY", "qty": 0.01, "order_type": "market"},
    {"client_order_id": "dur-rest-3", "side": "SELL", "qty": 0.004, "price": 1000000},
    {"client_order_id": "dur-gone-1", "side": "BUY", "qty": 0.01, "price": 500},
]
EXPECTED_STATUS = {
    "dur-rest-1": "ACCEPTED",
    "dur-rest-2": "ACCEPTED",
    "dur-fill-1": "FILLED",
    "dur-rest-3": "ACCEPTED",
    "dur-gone-1": "CANCELLED",
}


def balances(account: dict[str, Any]) -> dict[str, tuple[float, float]]:
    return {b["asset"]: (b["free"], b["locked"]) for b in account["balances"]}


async def place_orders(client: httpx.AsyncClient) -> None:
    for order in ORDERS:
        response = await client.post("/api/order", json=order)
        assert response.status_code == 200, response.text
        assert response.json()["ok"] is True, response.text
    response = await client.post("/api/cancel", json={"client_order_id": "dur-gone-1"})
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "CANCELLED"


async def replay_to_now(client: httpx.AsyncClient, port: int) -> list[SseEvent]:
    """The whole replay and what followed, up to an order placed after the stream opened (then
    cancelled, so the balances are as before): everything published before it is in the list."""
    replay = await SseStream.open(port)
    try:
        response = await client.post("/api/order", json=MARKER)
        assert response.status_code == 200, response.text
        events = await replay.events_until(
            lambda e: (
                e.event == "order_update"
                and e.data.get("client_order_id") == MARKER["client_order_id"]
            ),
            timeout=15,
            check_contiguous=False,
        )
    finally:
        await replay.close()
    response = await client.post("/api/cancel", json={"client_order_id": "dur-marker-1"})
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "CANCELLED"
    return events


async def snapshot(client: httpx.AsyncClient) -> tuple[Any, Any, Any]:
    account = await get_json(client, "/api/account")
    states = await get_json(client, "/api/orders_state")
    history = await get_json(client, "/api/orders")
    return balances(account), states["items"], history["items"]


async def stop_while_streaming(server: GatewayServer, stream: SseStream, how: str) -> int:
    """Stop the server while the stream is live; returns the last event id the client got."""
    seen: list[SseEvent] = await stream.events_until(lambda e: e.event == "market", timeout=15)
    # Let the market run on (past the replay ring's size), then stop it mid-stream.
    target = max(seen[-1].id + 30, 120)
    seen += await stream.events_until(lambda e: e.id >= target, timeout=15)
    if how == "sigkill":
        server.kill()
    else:
        server.terminate()
        await server.wait_exit(30)
    tail = await stream.read_to_eof(timeout=30)  # what was already on its way still counts
    seen += events_in(tail)
    ids = [e.id for e in seen]
    assert ids == sorted(set(ids)), "ids went backwards within one run"
    return ids[-1]


@pytest.mark.parametrize("how", ["sigkill", "sigterm"])
async def test_restart_keeps_acknowledged_state_and_event_ids(
    start_gateway: StartGateway, how: str
) -> None:
    first = await start_gateway(env=ENV)
    stream = await SseStream.open(first.port)
    try:
        async with first.client() as client:
            await place_orders(client)
            balances_before, states_before, history_before = await snapshot(client)
        last_seen = await stop_while_streaming(first, stream, how)
    finally:
        await stream.close()

    assert {s["client_order_id"]: s["status"] for s in states_before} == EXPECTED_STATUS
    assert balances_before["USDT"][1] == pytest.approx(10 + 40)  # two resting buys
    assert balances_before["BTC"] == pytest.approx((0.006, 0.004))  # 0.01 bought, 0.004 offered
    assert last_seen > 100, "the first run was too short for the ring to have moved on"

    second = await start_gateway(env=RESTART_ENV, data_dir=first.data_dir)
    async with second.client() as client:
        # F13: every acknowledged order and the balances are exactly as acknowledged.
        balances_after, states_after, history_after = await snapshot(client)
        assert balances_after == balances_before
        assert states_after == states_before
        after_ids = {item["_id"] for item in history_after}
        missing = [item for item in history_before if item["_id"] not in after_ids]
        assert not missing, f"order history lost by the restart: {missing}"

        # F2: the restarted server's events continue above every id the client saw.
        events = await replay_to_now(client, second.port)
        ids = [e.id for e in events]
        assert ids == sorted(set(ids)), f"replay ids not increasing: {ids}"
        # The restarted server's own `engine_started` is the last one (the first run's may still
        # be among the restored events, before it).
        started = [e for e in events if e.event == "engine_started"][-1]
        assert started.id > last_seen, (
            f"ids went backwards across the restart: the client saw id {last_seen} before "
            f"the {how}, the restarted engine_started has id {started.id}"
        )

        resumed = await SseStream.open(second.port, f"/api/stream?last_id={last_seen}")
        try:
            newer = [await resumed.next_event(timeout=15) for _ in range(5)]
        finally:
            await resumed.close()
        assert all(e.id > last_seen for e in newer), [e.id for e in newer]
        assert [e.id for e in newer] == sorted({e.id for e in newer})

        # A resting order from before the restart can still be cancelled; its reservation
        # is released exactly.
        usdt_free, usdt_locked = balances_after["USDT"]
        response = await client.post("/api/cancel", json={"client_order_id": "dur-rest-1"})
        assert response.status_code == 200, response.text
        assert response.json() == {
            "ok": True,
            "client_order_id": "dur-rest-1",
            "status": "CANCELLED",
        }
        account = await get_json(client, "/api/account")
        assert balances(account)["USDT"] == pytest.approx(
            (usdt_free + 10, usdt_locked - 10), abs=1e-9
        )
        assert balances(account)["BTC"] == balances_after["BTC"]
        state = await get_json(client, "/api/order_state", client_order_id="dur-rest-1")
        assert state["status"] == "CANCELLED"
        # The SELL still holds its BTC and can be cancelled too.
        response = await client.post("/api/cancel", json={"client_order_id": "dur-rest-3"})
        assert response.status_code == 200, response.text
        account = await get_json(client, "/api/account")
        assert balances(account)["BTC"] == pytest.approx((0.01, 0.0), abs=1e-12)
        # An order that was final before the restart stays final.
        response = await client.post("/api/cancel", json={"client_order_id": "dur-fill-1"})
        assert response.status_code == 409, response.text
