"""Health, config, market reads and the edge behaviour every response shares."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from app.core.config import Settings
from tests.conftest import Gateway, running_gateway

SettingsFactory = Callable[..., Settings]

SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "x-xss-protection": "1; mode=block",
    "content-security-policy": (
        "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'"
    ),
    "referrer-policy": "strict-origin-when-cross-origin",
    "permissions-policy": "geolocation=(), microphone=(), camera=()",
    "cache-control": "no-store, no-cache, must-revalidate, private",
}


async def test_health(gateway: Gateway) -> None:
    response = await gateway.client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"ok": True}


async def test_api_health_reports_the_engine(gateway: Gateway) -> None:
    response = await gateway.client.get("/api/health")
    assert response.json() == {"ok": True, "engine": {"connected": True}}
    await gateway.runtime.engine.stop()
    response = await gateway.client.get("/api/health")
    assert response.json() == {"ok": True, "engine": {"connected": False}}


async def test_orders_answer_503_while_the_engine_is_down(gateway: Gateway) -> None:
    await gateway.client.post(
        "/api/order", json={"qty": 0.01, "price": 1000, "client_order_id": "before"}
    )
    await gateway.runtime.engine.stop()
    response = await gateway.client.post("/api/order", json={"qty": 0.01, "price": 1000})
    assert response.status_code == 503
    assert response.json()["error"] == "engine_unavailable"
    assert response.headers["retry-after"] == "1"
    response = await gateway.client.post("/api/cancel", json={"client_order_id": "before"})
    assert response.status_code == 503
    assert response.json()["error"] == "engine_unavailable"
    # Nothing was recorded for the refused order.
    items = (await gateway.client.get("/api/orders_state")).json()["items"]
    assert [item["client_order_id"] for item in items] == ["before"]


async def test_config_has_the_original_keys_in_order(gateway: Gateway) -> None:
    response = await gateway.client.get("/api/config")
    assert response.status_code == 200
    # The original's eight keys first, in order; `effective` (every setting) is additive.
    assert list(response.json().items())[:8] == [
        ("market_source", "sim"),
        ("market_symbol", "BTCUSDT"),
        ("binance_base_url", None),
        ("execution_mode", "sim_engine"),
        ("binance_trade_enabled", False),
        ("binance_trade_base_url", None),
        ("binance_user_stream_connected", False),
        ("auth_enabled", False),
    ]
    assert list(response.json()) == [*list(response.json())[:8], "effective"]


async def test_execution_ping(gateway: Gateway) -> None:
    response = await gateway.client.get("/api/execution/ping")
    assert response.status_code == 200
    assert response.json() == {"ok": True}


async def test_market_snapshot(gateway: Gateway) -> None:
    gateway.move_market("42001.5")
    response = await gateway.client.get("/api/market")
    body = response.json()
    assert list(body) == ["symbol", "price", "ts_ns"]
    assert body["symbol"] == "BTCUSDT"
    assert body["price"] == 42001.5
    assert isinstance(body["ts_ns"], int)


async def test_market_per_symbol(make_settings: SettingsFactory) -> None:
    settings = make_settings(market_symbols="BTCUSDT,ETHUSDT")
    async with running_gateway(settings) as gateway:
        eth = (await gateway.client.get("/api/market", params={"symbol": "ethusdt"})).json()
        assert eth == {"symbol": "ETHUSDT", "price": None, "ts_ns": None}
        gateway.move_market("2201.25", symbol="ETHUSDT")
        eth = (await gateway.client.get("/api/market", params={"symbol": "ETHUSDT"})).json()
        assert eth["price"] == 2201.25
        btc = (await gateway.client.get("/api/market")).json()
        assert btc["symbol"] == "BTCUSDT"
        unknown = await gateway.client.get("/api/market", params={"symbol": "DOGEUSDT"})
        assert unknown.status_code == 404
        assert unknown.json()["error"] == "not_found"
        assert unknown.json()["details"] == {"symbols": ["BTCUSDT", "ETHUSDT"]}
        account = (await gateway.client.get("/api/account")).json()
        assert [b["asset"] for b in account["balances"]] == ["USDT", "BTC", "ETH"]


async def test_account_starts_with_the_configured_balances(gateway: Gateway) -> None:
    account = (await gateway.client.get("/api/account")).json()
    assert list(account) == ["ts_ns", "balances"]
    assert isinstance(account["ts_ns"], int)
    assert account["balances"] == [
        {"asset": "USDT", "free": 100000.0, "locked": 0.0},
        {"asset": "BTC", "free": 0.0, "locked": 0.0},
    ]


# --- edge ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/health"), ("GET", "/api/nope"), ("POST", "/api/order"), ("PUT", "/api/order")],
)
async def test_security_headers_on_every_response(gateway: Gateway, method: str, path: str) -> None:
    response = await gateway.client.request(method, path)
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get_list(name) == [value], name
    assert "strict-transport-security" not in response.headers
    assert "access-control-allow-origin" not in response.headers


async def test_hsts_only_behind_https(gateway: Gateway) -> None:
    response = await gateway.client.get("/health", headers={"X-Forwarded-Proto": "https"})
    assert response.headers["strict-transport-security"] == "max-age=31536000; includeSubDomains"


async def test_unknown_route_is_json_404(gateway: Gateway) -> None:
    # Other unknown GETs are the web UI's client-side routes (tests/api/test_web_ui.py).
    for path in ("/api/nope", "/api/orderX", "/docs/nope", "/ws/nope"):
        response = await gateway.client.get(path)
        assert response.status_code == 404
        assert response.json() == {"error": "not_found"}
        assert response.headers["content-type"] == "application/json"


async def test_wrong_method_is_json_405(gateway: Gateway) -> None:
    response = await gateway.client.put("/api/order", json={})
    assert response.status_code == 405
    assert response.json() == {"error": "method_not_allowed"}
    assert response.headers["allow"] == "POST"
    response = await gateway.client.delete("/api/market")
    assert response.status_code == 405


async def test_options_answers_204_on_any_path(gateway: Gateway) -> None:
    for path in ("/api/order", "/anything/at/all"):
        response = await gateway.client.options(path)
        assert response.status_code == 204
        assert response.content == b""
        assert "access-control-allow-origin" not in response.headers
        assert "access-control-max-age" not in response.headers


async def test_cors_preflight_with_origin(gateway: Gateway) -> None:
    response = await gateway.client.options(
        "/api/order", headers={"Origin": "https://app.example.com"}
    )
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == "*"
    assert response.headers["access-control-allow-methods"] == "GET, POST, DELETE, OPTIONS"
    assert response.headers["access-control-allow-headers"] == (
        "Content-Type, Authorization, X-API-Key"
    )
    assert response.headers["access-control-max-age"] == "86400"


async def test_cors_on_simple_requests_has_no_max_age(gateway: Gateway) -> None:
    response = await gateway.client.get("/health", headers={"Origin": "https://x.test"})
    assert response.headers["access-control-allow-origin"] == "*"
    assert "access-control-max-age" not in response.headers


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        ("https://app.example.com", True),
        ("https://example.com", True),
        ("https://deep.sub.example.com", True),
        ("https://trader.test", True),
        ("https://evil.test", False),
        ("https://example.com.evil.test", False),
    ],
)
async def test_cors_allow_list(make_settings: SettingsFactory, origin: str, allowed: bool) -> None:
    settings = make_settings(cors_origins="*.example.com, https://trader.test")
    async with running_gateway(settings) as gateway:
        response = await gateway.client.get("/health", headers={"Origin": origin})
        assert response.status_code == 200  # a refused origin is still served, without CORS
        if allowed:
            assert response.headers["access-control-allow-origin"] == origin
            assert response.headers["vary"] == "Origin"
        else:
            assert "access-control-allow-origin" not in response.headers


async def test_cors_with_credentials_echoes_the_origin(make_settings: SettingsFactory) -> None:
    async with running_gateway(make_settings(cors_credentials=True)) as gateway:
        response = await gateway.client.get("/health", headers={"Origin": "https://a.test"})
        assert response.headers["access-control-allow-origin"] == "https://a.test"
        assert response.headers["access-control-allow-credentials"] == "true"


async def test_request_id_is_echoed_or_generated(gateway: Gateway) -> None:
    response = await gateway.client.get("/health", headers={"X-Request-ID": "abc-123"})
    assert response.headers["x-request-id"] == "abc-123"
    generated = (await gateway.client.get("/health")).headers["x-request-id"]
    assert len(generated) == 32
    unsafe = await gateway.client.get("/health", headers={"X-Request-ID": "a b<script>"})
    assert unsafe.headers["x-request-id"] != "a b<script>"


async def test_oversized_body_is_refused(make_settings: SettingsFactory) -> None:
    async with running_gateway(make_settings(max_body_size=64)) as gateway:
        response = await gateway.client.post(
            "/api/order", json={"qty": 0.01, "price": 1000, "client_order_id": "x" * 60}
        )
        assert response.status_code == 413
        assert response.json() == {
            "error": "payload_too_large",
            "message": "request body exceeds 64 bytes",
        }
        assert response.headers["x-content-type-options"] == "nosniff"

        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(10):
                yield b"qty=1&price=1000&"

        chunked = await gateway.client.post(
            "/api/order",
            content=chunks(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert chunked.status_code == 413
        assert chunked.json()["error"] == "payload_too_large"
        assert (await gateway.client.get("/api/orders_state")).json() == {"items": []}


async def test_unexpected_errors_answer_json_500(gateway: Gateway) -> None:
    def broken() -> None:
        raise RuntimeError("boom")

    gateway.runtime.state.account.snapshot = broken  # type: ignore[method-assign]
    response = await gateway.client.get("/api/account")
    assert response.status_code == 500
    assert response.json() == {"error": "internal_error", "message": "internal server error"}
    assert response.headers["x-frame-options"] == "DENY"
    assert (await gateway.client.get("/health")).status_code == 200
