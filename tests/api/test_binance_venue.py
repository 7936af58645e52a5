"""Binance mode against the stand-in venue, through the gateway's HTTP API: what goes on the
wire, venue refusals (K11, F8), limits (429, 418), unknown outcomes, clock skew, a dropped
user-data stream, and the answers without credentials."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import parse_qsl

import pytest

from app.core.config import Settings
from tests.binance_standin.fixtures import (
    API_KEY,
    API_SECRET,
    binance_gateway,
    binance_settings,
    eventually,
    stream_connected,
)
from tests.binance_standin.server import StandinBinance, serve_standin
from tests.conftest import Gateway, running_gateway

ORDER = {"side": "BUY", "symbol": "BTCUSDT", "qty": 0.002, "price": 50000}


@pytest.fixture
async def standin() -> AsyncIterator[StandinBinance]:
    async with serve_standin() as running:
        running.venue.add_account(API_KEY, API_SECRET, USDT="10000", BTC="1")
        yield running


@pytest.fixture
async def gw(
    make_settings: Callable[..., Settings], standin: StandinBinance
) -> AsyncIterator[Gateway]:
    async with binance_gateway(make_settings, standin) as running:
        await eventually(lambda: stream_connected(running))
        await eventually(lambda: running.runtime.state.account.ts_ns is not None)
        yield running


async def place(gw: Gateway, cid: str, **fields: Any) -> dict[str, Any]:
    response = await gw.client.post("/api/order", json={**ORDER, "client_order_id": cid, **fields})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def state(gw: Gateway, cid: str) -> dict[str, Any]:
    response = await gw.client.get("/api/order_state", params={"client_order_id": cid})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def ping_details(gw: Gateway) -> dict[str, Any]:
    response = await gw.client.get("/api/execution/ping")
    assert response.status_code == 200
    details: dict[str, Any] = response.json()["details"]
    return details


async def order_events(gw: Gateway, cid: str, kind: str) -> list[dict[str, Any]]:
    """From GET /api/orders: this order's events of one type, oldest first."""
    items = (await gw.client.get("/api/orders")).json()["items"]
    return [e for e in items if e["type"] == kind and e.get("client_order_id") == cid]


# --- the wire ---------------------------------------------------------------------------------


async def test_signed_order_request_is_byte_exact(gw: Gateway, standin: StandinBinance) -> None:
    before = int(time.time() * 1000)
    body = await place(gw, "wire-1", qty=0.00001, price=50000.5)
    assert body["ok"] is True
    (call,) = standin.venue.calls("/api/v3/order", "POST")
    payload, sep, signature = call.query.rpartition("&signature=")
    assert sep and "&" not in signature, "the signature is the last parameter"
    expected = hmac.new(API_SECRET.encode(), payload.encode(), hashlib.sha256).hexdigest()
    assert signature == expected
    pairs = parse_qsl(payload)
    names = [name for name, _ in pairs]
    assert names == sorted(names)
    params = dict(pairs)
    timestamp = int(params.pop("timestamp"))
    assert before <= timestamp <= int(time.time() * 1000)
    assert params == {
        "newClientOrderId": "wire-1",
        "price": "50000.5",
        "quantity": "0.00001",  # F11: never 1e-05
        "recvWindow": "5000",
        "side": "BUY",
        "symbol": "BTCUSDT",
        "timeInForce": "GTC",
        "type": "LIMIT",
    }
    assert call.headers["x-mbx-apikey"] == API_KEY
    assert call.headers["user-agent"] == "VeloZ/0.1"


async def test_used_weight_is_reported_in_ping_and_metrics(
    gw: Gateway, standin: StandinBinance
) -> None:
    standin.venue.used_weight = 1234
    details = await ping_details(gw)  # the ping's own answer carries 1235
    assert standin.venue.used_weight == 1235
    assert details["limits"]["used_weight_1m"] == 1235
    assert details["limits"]["weight_budget"] == 4800
    assert details["user_stream"]["connected"] is True
    metrics = (await gw.client.get("/metrics")).text
    assert "veloz_binance_used_weight_1m 1235.0" in metrics
    assert "veloz_binance_user_stream_connected 1.0" in metrics


# --- venue refusals ---------------------------------------------------------------------------


async def test_venue_rejection_answers_200_binance_error(gw: Gateway) -> None:
    body = await place(gw, "rej-1", qty=1, price=50000)  # 50000 USDT needed, 10000 held
    assert body["ok"] is False
    assert body["error"] == "binance_error"
    assert body["status"] == "REJECTED"
    assert body["details"] == {
        "_http_error": 400,
        "_body": {"code": -2010, "msg": "Account has insufficient balance for requested action."},
    }
    order = await state(gw, "rej-1")
    assert (order["status"], order["reason"]) == ("REJECTED", "binance_error")


async def test_cancel_success(gw: Gateway, standin: StandinBinance) -> None:
    await place(gw, "can-1")
    response = await gw.client.post("/api/cancel", json={"client_order_id": "can-1"})
    assert response.status_code == 200
    assert response.json() == {"ok": True, "client_order_id": "can-1", "status": "CANCELLED"}
    assert (await state(gw, "can-1"))["status"] == "CANCELLED"
    (call,) = standin.venue.calls("/api/v3/order", "DELETE")
    assert dict(parse_qsl(call.query))["origClientOrderId"] == "can-1"
    # The stream's CANCELED report for the same order adds no second update.
    await eventually(lambda: standin.venue.orders[(API_KEY, "can-1")].status == "CANCELED")
    updates = await eventually(lambda: _at_least(gw, "can-1", "order_update", 2))
    assert [u["status"] for u in updates] == ["ACCEPTED", "CANCELLED"]


async def test_cancel_refused_by_venue_leaves_the_order_alone(
    gw: Gateway, standin: StandinBinance
) -> None:
    await place(gw, "can-2")
    before = await state(gw, "can-2")
    standin.venue.fail_next("/api/v3/order", 400, -2011, "Unknown order sent.", method="DELETE")
    response = await gw.client.post("/api/cancel", json={"client_order_id": "can-2"})
    assert response.status_code == 200
    assert response.json() == {
        "ok": False,
        "client_order_id": "can-2",
        "error": "binance_error",
        "details": {"_http_error": 400, "_body": {"code": -2011, "msg": "Unknown order sent."}},
    }
    assert await state(gw, "can-2") == before  # F8


# --- limits -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "kind", "reason"),
    [(429, "backing_off", "rate_limited"), (418, "banned", "ip_banned")],
)
async def test_429_and_418_hold_every_call_until_retry_after(
    gw: Gateway, standin: StandinBinance, status: int, kind: str, reason: str
) -> None:
    venue = standin.venue
    venue.fail_next("/api/v3/order", status, -1003, "Too many requests.", retry_after=1)
    body = await place(gw, "lim-1")
    assert (body["ok"], body["error"], body["details"]["_http_error"]) == (
        False, "binance_error", status,
    )  # fmt: skip
    refused_at = venue.requests[-1].at
    count = len(venue.requests)

    held = await place(gw, "lim-2")
    assert held["ok"] is False
    assert held["details"]["_error"] == reason
    assert 0 < held["details"]["retry_after"] <= 1
    assert len(venue.requests) == count, "nothing was sent while held back"
    details = await ping_details(gw)
    assert details["limits"][kind] is True
    metrics = (await gw.client.get("/metrics")).text
    assert f'veloz_binance_limit_responses_total{{status="{status}"}} 1.0' in metrics

    async def released() -> bool:
        return (await ping_details(gw))["limits"][kind] is False

    await eventually(released)
    assert (await place(gw, "lim-3"))["ok"] is True
    later = venue.requests[count:]
    assert later and all(r.at >= refused_at + 1 for r in later)


# --- unknown outcomes -------------------------------------------------------------------------


async def test_5xx_after_the_venue_took_the_order_is_reconciled_not_resent(
    gw: Gateway, standin: StandinBinance
) -> None:
    venue = standin.venue
    venue.fail_next("/api/v3/order", 503, method="POST", after_processing=True)
    body = await place(gw, "unk-1")
    assert body == {"ok": True, "client_order_id": "unk-1", "venue_order_id": "1000",
                    "status": "ACCEPTED"}  # fmt: skip
    assert len(venue.calls("/api/v3/order", "POST")) == 1
    (lookup,) = venue.calls("/api/v3/order", "GET")
    assert dict(parse_qsl(lookup.query))["origClientOrderId"] == "unk-1"
    assert (await state(gw, "unk-1"))["status"] == "ACCEPTED"


async def test_5xx_before_the_venue_took_the_order_sends_it_once_more(
    gw: Gateway, standin: StandinBinance
) -> None:
    venue = standin.venue
    venue.fail_next("/api/v3/order", 500, method="POST")
    body = await place(gw, "unk-2")
    assert body["ok"] is True
    posts = venue.calls("/api/v3/order", "POST")
    assert len(posts) == 2
    assert {dict(parse_qsl(p.query))["newClientOrderId"] for p in posts} == {"unk-2"}
    assert [cid for (_, cid) in venue.orders] == ["unk-2"]


async def test_timeout_code_with_no_answer_marks_unknown_then_reconciles(
    gw: Gateway, standin: StandinBinance
) -> None:
    venue = standin.venue
    venue.fail_next("/api/v3/order", 503, -1007, "Timeout waiting for response from backend "
                    "server. Send status unknown; execution status unknown.", method="POST",
                    after_processing=True)  # fmt: skip
    venue.fail_next("/api/v3/order", 502, method="GET")
    body = await place(gw, "unk-3")
    assert body["ok"] is False
    assert (body["error"], body["status"]) == ("execution_status_unknown", "UNKNOWN")
    assert (await state(gw, "unk-3"))["status"] == "UNKNOWN"

    async def reconciled() -> bool:
        return (await state(gw, "unk-3"))["status"] == "ACCEPTED"

    await eventually(reconciled)  # the poller asked the venue again
    assert len(venue.calls("/api/v3/order", "POST")) == 1
    assert (await state(gw, "unk-3"))["venue_order_id"] == "1000"


async def test_clock_skew_is_measured_and_the_call_retried_once(
    gw: Gateway, standin: StandinBinance
) -> None:
    venue = standin.venue
    venue.clock_offset_ms = 30_000
    assert (await place(gw, "skew-1"))["ok"] is True
    posts = venue.calls("/api/v3/order", "POST")
    assert len(posts) == 2
    assert len(venue.calls("/api/v3/time")) == 1
    first, second = (int(dict(parse_qsl(p.query))["timestamp"]) for p in posts)
    assert second - first > 25_000
    offset = (await ping_details(gw))["clock_offset_ms"]
    assert 25_000 < offset < 35_000


# --- the user-data stream ---------------------------------------------------------------------


async def test_dropped_stream_misses_no_fill_and_repeats_none(
    gw: Gateway, standin: StandinBinance
) -> None:
    await place(gw, "drop-1")
    standin.refuse_ws = True
    await standin.drop_streams()
    await eventually(lambda: not _stream_up(gw))
    assert (await gw.client.get("/api/config")).json()["binance_user_stream_connected"] is False

    await standin.trade(API_KEY, "drop-1", "0.001", "49000")  # pushed to nobody

    async def polled() -> bool:
        return (await state(gw, "drop-1"))["status"] == "PARTIALLY_FILLED"

    await eventually(polled)  # learned over REST while the stream is down
    (listing, *_) = standin.venue.calls("/api/v3/openOrders")
    assert dict(parse_qsl(listing.query))["symbol"] == "BTCUSDT"

    standin.replay_on_subscribe = True  # the venue repeats everything on the new stream
    standin.refuse_ws = False
    await eventually(lambda: stream_connected(gw))
    await standin.trade(API_KEY, "drop-1", "0.001", "50000")

    async def filled() -> bool:
        return (await state(gw, "drop-1"))["status"] == "FILLED"

    await eventually(filled)
    await eventually(lambda: standin.subscribe_count >= 2 and len(standin.sent[API_KEY]) >= 6)
    final = await state(gw, "drop-1")
    assert (final["executed_qty"], final["avg_price"]) == (0.002, 49500.0)
    # /api/orders shows events once stored; the repeats were never published, so two.
    fills = await eventually(lambda: _at_least(gw, "drop-1", "fill", 2))
    assert [(f["qty"], f["price"]) for f in fills] == [(0.001, 49000.0), (0.001, 50000.0)]
    metrics = (await gw.client.get("/metrics")).text
    assert 'veloz_websocket_reconnects_total{exchange="binance"} 1.0' in metrics


def _stream_up(gw: Gateway) -> bool:
    engine: Any = gw.runtime.engine
    return bool(engine.stream.connected)


# --- without credentials ----------------------------------------------------------------------


async def test_without_credentials_orders_answer_binance_not_configured(
    make_settings: Callable[..., Settings], standin: StandinBinance
) -> None:
    async with binance_gateway(
        make_settings, standin, binance_api_key="", binance_api_secret=""
    ) as gw:
        response = await gw.client.post("/api/order", json={**ORDER, "client_order_id": "n-1"})
        assert response.status_code == 400
        assert response.json()["error"] == "binance_not_configured"
        ping = (await gw.client.get("/api/execution/ping")).json()
        assert (ping["ok"], ping["error"]) == (False, "binance_not_configured")
        config = (await gw.client.get("/api/config")).json()
        assert config["execution_mode"] == "binance_testnet_spot"
        assert config["binance_trade_base_url"] == standin.base_url
        assert (config["binance_trade_enabled"], config["binance_user_stream_connected"]) == (
            False, False,
        )  # fmt: skip
    assert standin.venue.requests == []


async def test_a_fill_while_the_gateway_was_down_is_learned_at_start(
    make_settings: Callable[..., Settings], standin: StandinBinance
) -> None:
    settings = binance_settings(make_settings, standin)
    async with running_gateway(settings) as gw:
        await eventually(lambda: stream_connected(gw))
        assert (await place(gw, "down-1"))["ok"] is True
    await standin.trade(API_KEY, "down-1", "0.002", "49500")  # nobody is listening
    async with running_gateway(settings) as gw:
        filled = await eventually(lambda: _state_if(gw, "down-1", "FILLED"))
        assert (filled["executed_qty"], filled["avg_price"]) == (0.002, 49500.0)
        assert len(await eventually(lambda: _at_least(gw, "down-1", "fill", 1))) == 1


async def _state_if(gw: Gateway, cid: str, status: str) -> dict[str, Any] | None:
    found = await state(gw, cid)
    return found if found["status"] == status else None


async def _at_least(gw: Gateway, cid: str, kind: str, count: int) -> list[dict[str, Any]] | None:
    found = await order_events(gw, cid, kind)
    return found if len(found) >= count else None


async def test_a_cancel_made_elsewhere_arrives_on_the_stream(
    gw: Gateway, standin: StandinBinance
) -> None:
    await place(gw, "else-1")
    _, events = standin.venue.cancel(API_KEY, {"origClientOrderId": "else-1"})
    for event in events:  # its report names the cancel in `c` and the order in `C`
        await standin.push(API_KEY, event)

    async def cancelled() -> bool:
        return (await state(gw, "else-1"))["status"] == "CANCELLED"

    await eventually(cancelled)
    ids = [o["client_order_id"] for o in (await gw.client.get("/api/orders_state")).json()["items"]]
    assert ids == ["else-1"]


async def test_over_the_weight_budget_polling_pauses_but_orders_go(
    gw: Gateway, standin: StandinBinance
) -> None:
    engine: Any = gw.runtime.engine
    standin.refuse_ws = True
    await standin.drop_streams()
    await eventually(lambda: not _stream_up(gw))
    standin.venue.used_weight = 4900  # the budget is 4800 of the venue's 6000
    assert (await place(gw, "budget-1"))["ok"] is True  # an order still goes
    polls_before, calls_before = engine.poll_count, len(standin.venue.requests)
    await eventually(lambda: engine.poll_count >= polls_before + 3)
    assert len(standin.venue.requests) == calls_before, "no polling call was sent"
    assert (await ping_details(gw))["limits"]["used_weight_1m"] >= 4800


async def test_an_unknown_outcome_is_still_reconciled_after_a_restart(
    make_settings: Callable[..., Settings], standin: StandinBinance
) -> None:
    settings = binance_settings(make_settings, standin)
    venue = standin.venue
    async with running_gateway(settings) as gw:
        await eventually(lambda: stream_connected(gw))
        venue.fail_next("/api/v3/order", 503, method="POST", after_processing=True)
        venue.fail_next("/api/v3/order", 502, method="GET", times=1_000_000)
        assert (await place(gw, "later-1"))["status"] == "UNKNOWN"
    venue.faults.clear()
    async with running_gateway(settings) as gw:
        reconciled = await eventually(lambda: _state_if(gw, "later-1", "ACCEPTED"))
        assert reconciled["venue_order_id"] == "1000"
    assert len(venue.calls("/api/v3/order", "POST")) == 1


async def test_a_skewed_clock_refusing_the_subscription_is_measured_and_overcome(
    make_settings: Callable[..., Settings], standin: StandinBinance
) -> None:
    standin.venue.clock_offset_ms = -30_000  # the venue is behind: our timestamps look early
    async with binance_gateway(make_settings, standin) as gw:
        await eventually(lambda: stream_connected(gw))
        assert standin.subscribe_count == 1
        assert len(standin.venue.calls("/api/v3/time")) >= 1
        assert -35_000 < (await ping_details(gw))["clock_offset_ms"] < -25_000
