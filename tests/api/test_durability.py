"""State survives a restart: orders, balances, order events, market, event ids (F2, F13)."""

from __future__ import annotations

from collections.abc import Callable

from app.core.config import Settings
from tests.conftest import running_gateway


async def test_restart_recovers_everything_acknowledged(
    make_settings: Callable[..., Settings], database_url: str
) -> None:
    settings = make_settings(database_url=database_url)
    async with running_gateway(settings) as gateway:
        client = gateway.client
        gateway.move_market("42000")
        await client.post(
            "/api/order", json={"qty": 0.5, "price": 41000, "client_order_id": "rest"}
        )
        await client.post(
            "/api/order", json={"qty": 1.5, "price": 40000, "client_order_id": "part"}
        )
        await client.post(
            "/api/order", json={"qty": 0.1, "price": 50000, "client_order_id": "fill"}
        )
        await client.post("/api/order", json={"qty": 99, "price": 40000, "client_order_id": "rej"})
        gateway.move_market("40000")  # "rest" fills, "part" fills 1.25 of 1.5
        await client.post("/api/order", json={"qty": 0.1, "price": 30000, "client_order_id": "r2"})
        before = {
            path: (await client.get(path)).json()
            for path in ("/api/orders_state", "/api/account", "/api/orders", "/api/market")
        }
        last_id = gateway.runtime.bus.last_id

    async with running_gateway(settings) as gateway:
        client = gateway.client
        for path, body in before.items():
            if path == "/api/account":  # the engine re-announces balances, with a new ts_ns
                assert (await client.get(path)).json()["balances"] == body["balances"]
                continue
            assert (await client.get(path)).json() == body, path
        states = {o["client_order_id"]: o for o in before["/api/orders_state"]["items"]}
        assert states["part"]["status"] == "PARTIALLY_FILLED"
        assert states["rej"]["status"] == "REJECTED"
        # Event ids continue; the ring was refilled from the database.
        await gateway.runtime.writer.wait_durable()
        restarted = gateway.runtime.bus.recent()
        assert restarted[0].id < last_id
        assert restarted[-1].id > last_id
        assert next(e.type for e in restarted if e.id > last_id) == "engine_started"
        # The engine picked up the resting orders with their reservations.
        cancel = await client.post("/api/cancel", json={"client_order_id": "part"})
        assert cancel.json() == {"ok": True, "client_order_id": "part", "status": "CANCELLED"}
        gateway.move_market("29000")
        r2 = (await client.get("/api/order_state", params={"client_order_id": "r2"})).json()
        assert r2["status"] == "FILLED"
        account = (await client.get("/api/account")).json()
        assert [b["locked"] for b in account["balances"]] == [0.0, 0.0]
        # A retry of an order from before the restart is still idempotent.
        retry = await client.post(
            "/api/order", json={"qty": 0.1, "price": 50000, "client_order_id": "fill"}
        )
        assert retry.json() == {
            "ok": True,
            "client_order_id": "fill",
            "venue_order_id": "sim-3",
            "status": "FILLED",
        }
        new = await client.post("/api/order", json={"qty": 0.01, "price": 1000})
        assert new.json()["venue_order_id"] == "sim-5"  # venue ids continue too
