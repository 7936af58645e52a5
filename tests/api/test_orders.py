"""POST /api/order, POST /api/cancel and the order-state reads, through HTTP."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Gateway

ORDER_STATE_FIELDS = [
    "client_order_id",
    "symbol",
    "side",
    "order_type",
    "order_qty",
    "limit_price",
    "venue_order_id",
    "status",
    "reason",
    "executed_qty",
    "avg_price",
    "last_ts_ns",
]


async def place(gateway: Gateway, **body: Any) -> dict[str, Any]:
    response = await gateway.client.post("/api/order", json=body)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def order_state(gateway: Gateway, cid: str) -> dict[str, Any]:
    response = await gateway.client.get("/api/order_state", params={"client_order_id": cid})
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def balance(gateway: Gateway, asset: str) -> dict[str, Any]:
    account = (await gateway.client.get("/api/account")).json()
    return next(b for b in account["balances"] if b["asset"] == asset)


# --- placing -------------------------------------------------------------------------------


async def test_resting_limit_order_is_accepted_and_reserves_quote(gateway: Gateway) -> None:
    result = await place(gateway, side="BUY", qty=0.01, price=1000, client_order_id="r1")
    assert result == {
        "ok": True,
        "client_order_id": "r1",
        "venue_order_id": "sim-1",
        "status": "ACCEPTED",
    }
    state = await order_state(gateway, "r1")
    assert list(state) == ORDER_STATE_FIELDS
    assert state["status"] == "ACCEPTED"
    assert state["side"] == "BUY"
    assert state["order_type"] == "limit"
    assert state["order_qty"] == 0.01
    assert state["limit_price"] == 1000.0
    assert state["executed_qty"] == 0.0
    assert state["avg_price"] is None
    assert state["reason"] is None
    assert isinstance(state["last_ts_ns"], int)
    assert await balance(gateway, "USDT") == {"asset": "USDT", "free": 99990.0, "locked": 10.0}


async def test_form_body_and_lowercase_side_are_accepted(gateway: Gateway) -> None:
    response = await gateway.client.post(
        "/api/order",
        content="side=sell&qty=0.5&price=90000&client_order_id=f1&client_order_id=ignored",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 200
    # Selling BTC we do not have is refused by the engine, not by validation.
    assert response.json()["client_order_id"] == "f1"
    state = await order_state(gateway, "f1")
    assert state["side"] == "SELL"
    assert state["limit_price"] == 90000.0


async def test_body_without_json_content_type_is_read_as_form(gateway: Gateway) -> None:
    response = await gateway.client.post(
        "/api/order",
        content='{"qty": 0.01, "price": 1000}',
        headers={"Content-Type": "text/plain"},
    )
    assert response.status_code == 400
    assert response.json()["error"] == "bad_params"


async def test_defaults_symbol_and_client_order_id(gateway: Gateway) -> None:
    first = await place(gateway, qty=0.001, price=1000)
    second = await place(gateway, qty=0.001, price=1000)
    assert first["client_order_id"].startswith("web-")
    assert first["client_order_id"] != second["client_order_id"]
    state = await order_state(gateway, first["client_order_id"])
    assert state["symbol"] == "BTCUSDT"
    assert state["side"] == "BUY"


async def test_marketable_limit_fills_at_the_market_price(gateway: Gateway) -> None:
    gateway.move_market("42000")
    result = await place(gateway, side="BUY", qty=0.1, price=50000, client_order_id="m1")
    assert result["ok"] is True
    assert result["status"] == "FILLED"
    state = await order_state(gateway, "m1")
    assert state["executed_qty"] == 0.1
    assert state["avg_price"] == 42000.0
    assert await balance(gateway, "USDT") == {"asset": "USDT", "free": 95800.0, "locked": 0.0}
    assert await balance(gateway, "BTC") == {"asset": "BTC", "free": 0.1, "locked": 0.0}


async def test_resting_order_fills_at_its_limit_when_the_market_reaches_it(
    gateway: Gateway,
) -> None:
    gateway.move_market("42000")
    await place(gateway, side="BUY", qty=0.5, price=41000, client_order_id="rest")
    gateway.move_market("40900")
    state = await order_state(gateway, "rest")
    assert state["status"] == "FILLED"
    assert state["avg_price"] == 41000.0
    assert await balance(gateway, "USDT") == {"asset": "USDT", "free": 79500.0, "locked": 0.0}
    assert await balance(gateway, "BTC") == {"asset": "BTC", "free": 0.5, "locked": 0.0}


async def test_large_resting_order_fills_in_parts(gateway: Gateway) -> None:
    # 50,000 USDT of liquidity per tick at 40,000 is 1.25 BTC per tick.
    gateway.move_market("42000")
    await place(gateway, side="BUY", qty=2, price=40000, client_order_id="big")
    gateway.move_market("40000")
    state = await order_state(gateway, "big")
    assert state["status"] == "PARTIALLY_FILLED"
    assert state["executed_qty"] == 1.25
    assert await balance(gateway, "USDT") == {"asset": "USDT", "free": 20000.0, "locked": 30000.0}
    gateway.move_market("39999")
    state = await order_state(gateway, "big")
    assert state["status"] == "FILLED"
    assert state["executed_qty"] == 2.0
    assert state["avg_price"] == 40000.0


async def test_market_order_fills_at_once(gateway: Gateway) -> None:
    gateway.move_market("42000")
    result = await place(gateway, side="BUY", qty=0.2, order_type="market", client_order_id="mk")
    assert result["status"] == "FILLED"
    state = await order_state(gateway, "mk")
    assert state["order_type"] == "market"
    assert state["limit_price"] is None
    assert state["avg_price"] == 42000.0
    sell = await place(gateway, side="SELL", qty=0.2, order_type="MARKET", client_order_id="mk2")
    assert sell["status"] == "FILLED"
    assert await balance(gateway, "USDT") == {"asset": "USDT", "free": 100000.0, "locked": 0.0}


async def test_ioc_expires_the_unfilled_rest(gateway: Gateway) -> None:
    gateway.move_market("40000")
    await place(gateway, qty=2, price=40000, time_in_force="IOC", client_order_id="ioc")
    state = await order_state(gateway, "ioc")
    assert state["status"] == "EXPIRED"
    assert state["executed_qty"] == 1.25
    assert await balance(gateway, "USDT") == {"asset": "USDT", "free": 50000.0, "locked": 0.0}


async def test_fok_fills_completely_or_not_at_all(gateway: Gateway) -> None:
    gateway.move_market("40000")
    await place(gateway, qty=2, price=40000, time_in_force="FOK", client_order_id="fok-big")
    assert (await order_state(gateway, "fok-big"))["status"] == "EXPIRED"
    assert (await order_state(gateway, "fok-big"))["executed_qty"] == 0.0
    await place(gateway, qty=1, price=40000, time_in_force="fok", client_order_id="fok-ok")
    assert (await order_state(gateway, "fok-ok"))["status"] == "FILLED"
    assert await balance(gateway, "USDT") == {"asset": "USDT", "free": 60000.0, "locked": 0.0}


# --- refusals ------------------------------------------------------------------------------


async def test_insufficient_funds_is_rejected_with_the_reason(gateway: Gateway) -> None:
    result = await place(gateway, side="BUY", qty=10, price=20000, client_order_id="poor")
    assert result == {
        "ok": False,
        "client_order_id": "poor",
        "status": "REJECTED",
        "error": "insufficient_funds",
        "message": "the order was rejected: insufficient_funds",
    }
    state = await order_state(gateway, "poor")
    assert state["status"] == "REJECTED"
    assert state["reason"] == "insufficient_funds"
    assert await balance(gateway, "USDT") == {"asset": "USDT", "free": 100000.0, "locked": 0.0}


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"qty": 1001, "price": 1}, "max_order_qty_exceeded"),
        ({"qty": 30, "price": 40000}, "max_order_notional_exceeded"),
        ({"qty": 1, "price": 10, "symbol": "DOGEUSDT"}, "unknown_symbol"),
    ],
)
async def test_risk_and_symbol_rejections(
    gateway: Gateway, body: dict[str, Any], reason: str
) -> None:
    result = await place(gateway, **body, client_order_id="risk")
    assert result["ok"] is False
    assert result["error"] == reason
    assert (await order_state(gateway, "risk"))["reason"] == reason


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"qty": 0, "price": 1000}, "qty"),
        ({"qty": -1, "price": 1000}, "qty"),
        ({"qty": "abc", "price": 1000}, "qty"),
        ({"qty": "NaN", "price": 1000}, "qty"),
        ({"qty": "Infinity", "price": 1000}, "qty"),
        ({"qty": 1, "price": 0}, "price"),
        ({"qty": 1, "price": "-Infinity"}, "price"),
        ({"qty": 1}, "price"),
        ({"qty": 1, "price": None}, "price"),
        ({"price": 1000}, "qty"),
        ({"qty": 1, "price": 1000, "side": "HOLD"}, "side"),
        ({"qty": 1, "price": 1000, "order_type": "stop"}, "order_type"),
        ({"qty": 1, "price": 1000, "time_in_force": "GTX"}, "time_in_force"),
        ({"qty": 1, "price": 1000, "client_order_id": "has space"}, "client_order_id"),
        ({"qty": 1, "price": 1000, "client_order_id": "x" * 65}, "client_order_id"),
        ({"qty": 1, "price": 1000, "symbol": "BTC/USDT"}, "symbol"),
    ],
)
async def test_invalid_orders_answer_bad_params(
    gateway: Gateway, body: dict[str, Any], field: str
) -> None:
    response = await gateway.client.post("/api/order", json=body)
    assert response.status_code == 400
    error = response.json()
    assert error["error"] == "bad_params"
    assert error["message"] == "invalid request"
    assert [d["field"] for d in error["details"]] == [field]
    assert (await gateway.client.get("/api/orders_state")).json() == {"items": []}


async def test_non_finite_numbers_in_json_are_refused(gateway: Gateway) -> None:
    response = await gateway.client.post(
        "/api/order",
        content=b'{"qty": NaN, "price": 1000}',
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json() == {"error": "bad_json", "message": "request body is not valid JSON"}


@pytest.mark.parametrize("path", ["/api/order", "/api/cancel"])
async def test_invalid_json_answers_bad_json(gateway: Gateway, path: str) -> None:
    response = await gateway.client.post(
        path, content=b'{"qty": ', headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["error"] == "bad_json"


@pytest.mark.parametrize("body", [b"[1, 2]", b'"text"', b"42", b"null"])
async def test_non_object_json_answers_bad_params(gateway: Gateway, body: bytes) -> None:
    response = await gateway.client.post(
        "/api/order", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json() == {
        "error": "bad_params",
        "message": "request body must be a JSON object",
    }


async def test_empty_body_answers_bad_params(gateway: Gateway) -> None:
    response = await gateway.client.post("/api/order")
    assert response.status_code == 400
    assert response.json()["error"] == "bad_params"


# --- idempotency -----------------------------------------------------------------------------


async def test_retry_with_same_parameters_returns_the_first_result(gateway: Gateway) -> None:
    body = {"side": "BUY", "qty": 0.01, "price": 1000, "client_order_id": "same"}
    first = await place(gateway, **body)
    events_before = (await gateway.client.get("/api/orders")).json()["items"]
    again = await place(gateway, **{**body, "qty": "0.0100"})  # same value, other spelling
    assert again == first
    assert (await gateway.client.get("/api/orders")).json()["items"] == events_before
    assert len((await gateway.client.get("/api/orders_state")).json()["items"]) == 1
    assert await balance(gateway, "USDT") == {"asset": "USDT", "free": 99990.0, "locked": 10.0}


async def test_reusing_an_id_for_another_order_is_a_conflict(gateway: Gateway) -> None:
    await place(gateway, qty=0.01, price=1000, client_order_id="dup")
    response = await gateway.client.post(
        "/api/order", json={"qty": 0.02, "price": 1000, "client_order_id": "dup"}
    )
    assert response.status_code == 409
    assert response.json()["error"] == "duplicate_client_order_id"
    state = await order_state(gateway, "dup")
    assert state["order_qty"] == 0.01
    assert state["status"] == "ACCEPTED"


async def test_retrying_a_rejected_order_returns_the_rejection(gateway: Gateway) -> None:
    first = await place(gateway, qty=10, price=20000, client_order_id="rej")
    again = await place(gateway, qty=10, price=20000, client_order_id="rej")
    assert again == first
    assert again["ok"] is False


# --- cancel ----------------------------------------------------------------------------------


async def test_cancel_releases_the_reservation(gateway: Gateway) -> None:
    await place(gateway, side="BUY", qty=0.01, price=1000, client_order_id="c1")
    response = await gateway.client.post("/api/cancel", json={"client_order_id": " c1 "})
    assert response.status_code == 200
    assert response.json() == {"ok": True, "client_order_id": "c1", "status": "CANCELLED"}
    assert (await order_state(gateway, "c1"))["status"] == "CANCELLED"
    assert await balance(gateway, "USDT") == {"asset": "USDT", "free": 100000.0, "locked": 0.0}


async def test_cancel_by_form_releases_a_sell_reservation(gateway: Gateway) -> None:
    gateway.move_market("42000")
    await place(gateway, side="BUY", qty=1, order_type="market", client_order_id="own")
    await place(gateway, side="SELL", qty=0.4, price=99000, client_order_id="ask")
    assert await balance(gateway, "BTC") == {"asset": "BTC", "free": 0.6, "locked": 0.4}
    response = await gateway.client.post(
        "/api/cancel",
        content="client_order_id=ask&symbol=btcusdt",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 200
    assert await balance(gateway, "BTC") == {"asset": "BTC", "free": 1.0, "locked": 0.0}


async def test_cancel_of_a_partial_fill_releases_only_the_rest(gateway: Gateway) -> None:
    gateway.move_market("42000")
    await place(gateway, qty=2, price=40000, client_order_id="part")
    gateway.move_market("40000")
    await gateway.client.post("/api/cancel", json={"client_order_id": "part"})
    state = await order_state(gateway, "part")
    assert state["status"] == "CANCELLED"
    assert state["executed_qty"] == 1.25
    assert await balance(gateway, "USDT") == {"asset": "USDT", "free": 50000.0, "locked": 0.0}
    assert await balance(gateway, "BTC") == {"asset": "BTC", "free": 1.25, "locked": 0.0}


async def test_cancel_of_an_unknown_order_is_not_found(gateway: Gateway) -> None:
    # F8: the original answered 200 for an unknown id.
    response = await gateway.client.post("/api/cancel", json={"client_order_id": "nope"})
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"
    assert (await gateway.client.get("/api/orders_state")).json() == {"items": []}


async def test_cancel_of_a_filled_order_leaves_its_state(gateway: Gateway) -> None:
    # F8: a failed cancel does not mark the order rejected.
    gateway.move_market("42000")
    await place(gateway, qty=0.1, price=50000, client_order_id="done")
    response = await gateway.client.post("/api/cancel", json={"client_order_id": "done"})
    assert response.status_code == 409
    assert response.json()["error"] == "order_not_open"
    assert (await order_state(gateway, "done"))["status"] == "FILLED"


@pytest.mark.parametrize("body", [{}, {"client_order_id": ""}, {"client_order_id": "  "}])
async def test_cancel_without_an_id_answers_bad_params(
    gateway: Gateway, body: dict[str, Any]
) -> None:
    response = await gateway.client.post("/api/cancel", json=body)
    assert response.status_code == 400
    error = response.json()
    assert error["error"] == "bad_params"
    assert error["details"][0]["field"] == "client_order_id"


# --- reads -----------------------------------------------------------------------------------


async def test_order_state_needs_an_id(gateway: Gateway) -> None:
    for params in ({}, {"client_order_id": ""}, {"client_order_id": "   "}):
        response = await gateway.client.get("/api/order_state", params=params)
        assert response.status_code == 400
        assert response.json() == {
            "error": "bad_params",
            "message": "client_order_id is required",
        }


async def test_order_state_of_an_unknown_order_is_not_found(gateway: Gateway) -> None:
    response = await gateway.client.get("/api/order_state", params={"client_order_id": "x"})
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


async def test_orders_state_lists_orders_in_first_seen_order(gateway: Gateway) -> None:
    for cid in ("b", "a", "c"):
        await place(gateway, qty=0.001, price=1000, client_order_id=cid)
    items = (await gateway.client.get("/api/orders_state")).json()["items"]
    assert [item["client_order_id"] for item in items] == ["b", "a", "c"]
    assert all(list(item) == ORDER_STATE_FIELDS for item in items)


async def test_orders_lists_order_events_with_their_stream_ids(gateway: Gateway) -> None:
    gateway.move_market("42000")
    await place(gateway, qty=0.1, price=50000, client_order_id="ev")
    items = (await gateway.client.get("/api/orders")).json()["items"]
    assert [item["type"] for item in items] == ["order_update", "fill"]
    update, fill = items
    assert update["status"] == "ACCEPTED"
    assert update["venue_order_id"] == "sim-1"
    assert fill == {
        "type": "fill",
        "ts_ns": fill["ts_ns"],
        "client_order_id": "ev",
        "symbol": "BTCUSDT",
        "side": "BUY",
        "qty": 0.1,
        "price": 42000.0,
        "_id": fill["_id"],
    }
    assert update["_id"] < fill["_id"]
    ring_ids = {e.id for e in gateway.runtime.bus.recent() if e.type == "fill"}
    assert fill["_id"] in ring_ids


async def test_orders_keeps_only_the_last_200_events(gateway: Gateway) -> None:
    for n in range(110):  # a resting order produces one order event: its order_update
        await place(gateway, qty=0.001, price=1000, client_order_id=f"o{n}")
    items = (await gateway.client.get("/api/orders")).json()["items"]
    assert len(items) == 110  # one order_update per resting order
    for n in range(110, 210):
        await place(gateway, qty=0.001, price=1000, client_order_id=f"o{n}")
    items = (await gateway.client.get("/api/orders")).json()["items"]
    assert len(items) == 200
    assert items[0]["client_order_id"] == "o10"
    assert items[-1]["client_order_id"] == "o209"
