"""§4.1: every endpoint of the summary table, called as its documented example, with auth off
and on: the status, the field names in the contract's order, the security headers (§1.4) and,
with auth on, the rate-limit headers (§3). Where the answer differs from the original, the row
names the decision (decisions.md) that fixed it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.contract.conftest import RATE_LIMIT_HEADERS, SECURITY_HEADERS, Api, assert_error

SETTINGS_SECTIONS = ["general", "trading", "risk", "advanced", "security"]
ORDER_STATE_FIELDS = [
    "client_order_id", "symbol", "side", "order_type", "order_qty", "limit_price",
    "venue_order_id", "status", "reason", "executed_qty", "avg_price", "last_ts_ns",
]  # fmt: skip
CONFIG_KEYS = [
    "market_source", "market_symbol", "binance_base_url", "execution_mode",
    "binance_trade_enabled", "binance_trade_base_url", "binance_user_stream_connected",
    "auth_enabled",
]  # fmt: skip
AUDIT_ENTRY_FIELDS = [
    "timestamp", "datetime", "log_type", "action", "user_id", "ip_address", "details",
    "request_id",
]  # fmt: skip
EXCHANGE_KEY_FIELDS = [
    "id", "exchange", "name", "permissions", "createdAt", "lastUsed", "status", "testnet",
]  # fmt: skip
CONNECTION_TEST_FIELDS = [
    "success", "exchange", "permissions", "balanceAvailable", "latencyMs", "error", "warnings",
    "balance",
]  # fmt: skip
EXCHANGE_KEY = {"exchange": "binance", "apiKey": "contract-key", "apiSecret": "contract-secret"}
pytestmark = pytest.mark.asyncio(loop_scope="module")

RESTING_ORDER = {"side": "BUY", "qty": 0.001, "price": 1000, "client_order_id": "contract-1"}


@dataclass(frozen=True)
class Row:
    """One line of §4.1: the request, and what the answer must hold."""

    method: str
    path: str
    status: int
    keys: list[str] | None = None  # the answer's first keys, in this order
    exact: bool = False  # ... and no others
    error: str | None = None  # the error code, for an error answer
    params: dict[str, str] = field(default_factory=dict)
    json: Any = None
    rate_limited: bool = True  # carries X-RateLimit-* when auth is on (§3)
    decision: str = ""  # the decision behind a deliberate difference from the original
    anonymous: bool = False  # sent without credentials (a public endpoint)


ROWS = [
    Row("GET", "/health", 200, ["ok"], exact=True, rate_limited=False),
    Row("GET", "/metrics", 200, rate_limited=False, decision="F1: Prometheus text"),
    Row("GET", "/api/health", 200, ["ok", "engine"], exact=True),
    Row("GET", "/api/config", 200, CONFIG_KEYS),
    Row("POST", "/api/config", 200, ["ok", "message"], json={}, decision="F7"),
    Row("GET", "/api/market", 200, ["symbol", "price", "ts_ns"], exact=True),
    Row("GET", "/api/orders", 200, ["items"], exact=True),
    Row("GET", "/api/orders_state", 200, ["items"], exact=True),
    Row("GET", "/api/order_state", 404, error="not_found", params={"client_order_id": "none"}),
    Row("POST", "/api/order", 200, ["ok", "client_order_id"], json=RESTING_ORDER),
    Row("POST", "/api/cancel", 404, error="not_found", json={"client_order_id": "none"},
        decision="F8: an unknown id is 404"),
    Row("GET", "/api/account", 200, ["ts_ns", "balances"], exact=True),
    Row("GET", "/api/execution/ping", 200, ["ok"], exact=True),
    Row("POST", "/api/auth/login", 400, error="bad_params", json={}, rate_limited=False,
        anonymous=True),
    Row("POST", "/api/auth/refresh", 400, error="bad_params", json={}, rate_limited=False,
        anonymous=True),
    # Anonymous: F14 makes logout revoke the access token it is sent with.
    Row("POST", "/api/auth/logout", 200, ["ok"], exact=True, json={"refresh_token": "x"},
        rate_limited=False, anonymous=True),
    Row("GET", "/api/auth/keys", 200, ["keys"], exact=True),
    Row("POST", "/api/auth/keys", 201, ["key_id", "api_key", "message"], exact=True,
        json={"name": "contract"}),
    Row("DELETE", "/api/auth/keys", 404, error="not_found", params={"key_id": "vk_none"}),
    Row("GET", "/api/auth/roles", 200, ["users", "metrics", "available_roles"], exact=True),
    Row("GET", "/api/auth/roles", 200, ["user_id", "roles", "is_default"], exact=True,
        params={"user_id": "nobody"}),
    Row("POST", "/api/auth/roles", 200, ["ok", "user_id", "role", "roles"], exact=True,
        json={"user_id": "carol", "role": "trader"}),
    Row("DELETE", "/api/auth/roles", 404, error="not_found",
        params={"user_id": "carol", "role": "admin"}),
    Row("GET", "/api/audit/logs", 200, ["logs", "total", "limit", "offset", "has_more"],
        exact=True, decision="F10: the audit log is live"),
    Row("GET", "/api/audit/stats", 200, ["status", "policies"], decision="F10"),
    Row("POST", "/api/audit/archive", 200, ["ok", "stats"], exact=True, decision="F10"),
    Row("GET", "/api/settings", 200, SETTINGS_SECTIONS, exact=True),
    Row("POST", "/api/settings", 200, ["ok", "settings"], exact=True,
        json={"section": "general", "data": {"theme": "dark"}}),
    Row("GET", "/api/settings/export", 200, SETTINGS_SECTIONS, exact=True),
    Row("POST", "/api/settings/import", 200, ["ok", "message", "settings"], exact=True,
        json={"config": {"general": {}, "trading": {}, "risk": {}, "advanced": {}}}),
    Row("GET", "/api/exchange-keys", 200, ["keys"], exact=True),
    Row("POST", "/api/exchange-keys", 201, ["ok", "keyId", "message"], exact=True,
        json={**EXCHANGE_KEY, "name": "contract"}),
    Row("DELETE", "/api/exchange-keys", 404, error="not_found", params={"key_id": "none"}),
    Row("POST", "/api/exchange-keys/test", 200, CONNECTION_TEST_FIELDS, exact=True,
        json={"exchange": "kraken", "apiKey": "k", "apiSecret": "s"}),
]  # fmt: skip


def _id(row: Row) -> str:
    return f"{row.method} {row.path}{'?' + '&'.join(row.params) if row.params else ''}"


@pytest.mark.parametrize("row", ROWS, ids=_id)
async def test_summary_table_row(api: Api, row: Row) -> None:
    send = api.client.request if row.anonymous else api.call
    response = await send(row.method, row.path, params=row.params or None, json=row.json)
    assert response.status_code == row.status, (row.decision, response.text)
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get(name) == value, name
    limited = api.auth_on and row.rate_limited
    assert all((name in response.headers) == limited for name in RATE_LIMIT_HEADERS), dict(
        response.headers
    )
    if row.error:
        assert_error(response, row.status, row.error)
    if row.keys is not None:
        keys = list(response.json())
        assert keys[: len(row.keys)] == row.keys, keys
        if row.exact:
            assert keys == row.keys


async def test_options_on_any_path_is_204_without_auth(api: Api) -> None:
    """§1.4: `OPTIONS *` → 204, no auth, no rate limit, even with credentials absent."""
    response = await api.client.options("/api/orders")
    assert response.status_code == 204
    assert response.content == b""
    assert not any(name in response.headers for name in RATE_LIMIT_HEADERS)


async def test_config_keys_and_values(api: Api) -> None:
    """§4.2: the eight keys in order with the simulator's values (plus `effective`, additive)."""
    body = (await api.call("GET", "/api/config")).json()
    assert list(body)[:8] == CONFIG_KEYS
    assert {k: body[k] for k in CONFIG_KEYS} == {
        "market_source": "sim", "market_symbol": "BTCUSDT", "binance_base_url": None,
        "execution_mode": "sim_engine", "binance_trade_enabled": False,
        "binance_trade_base_url": None, "binance_user_stream_connected": False,
        "auth_enabled": api.auth_on,
    }  # fmt: skip


async def test_orders_state_and_events_after_an_order(api: Api) -> None:
    """§4.4, §4.5: the order's 12-field state in order; its events carry `_id`."""
    placed = await api.call("POST", "/api/order", json=RESTING_ORDER)
    assert placed.json()["ok"] is True
    state = await api.call("GET", "/api/order_state", params={"client_order_id": " contract-1 "})
    assert state.status_code == 200
    assert list(state.json()) == ORDER_STATE_FIELDS
    assert state.json()["status"] == "ACCEPTED"
    assert state.json()["executed_qty"] == 0.0
    listed = (await api.call("GET", "/api/orders_state")).json()["items"]
    assert listed and all(list(item) == ORDER_STATE_FIELDS for item in listed)
    events = (await api.call("GET", "/api/orders")).json()["items"]
    assert events
    assert all(isinstance(event["_id"], int) and "type" in event for event in events)
    missing = await api.call("GET", "/api/order_state", params={"client_order_id": "  "})
    assert_error(missing, 400, "bad_params")


async def test_order_bodies_as_json_and_as_form(api: Api) -> None:
    """§1.3, §4.6 (K4): a form body is read when the type is not JSON; `side` in any case;
    `symbol` defaults; string numbers accepted. F11: NaN is refused."""
    form = await api.call(
        "POST", "/api/order",
        content=b"side=buy&qty=0.001&price=900&client_order_id=contract-form",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )  # fmt: skip
    assert form.status_code == 200, form.text
    assert form.json()["client_order_id"] == "contract-form"
    state = (
        await api.call("GET", "/api/order_state", params={"client_order_id": "contract-form"})
    ).json()
    assert (state["side"], state["symbol"], state["limit_price"]) == ("BUY", "BTCUSDT", 900.0)
    generated = await api.call("POST", "/api/order", json={"qty": "0.001", "price": "1000"})
    assert generated.json()["client_order_id"].startswith("web-")
    for body in ({"qty": 0}, {"qty": "abc", "price": 1}, {"qty": 1, "price": 1, "side": "HOLD"}):
        assert_error(await api.call("POST", "/api/order", json=body), 400, "bad_params")
    nan = await api.call(
        "POST", "/api/order", content=b'{"qty": NaN, "price": 1}',
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    assert nan.status_code == 400, "F11: non-finite numbers are refused"
    assert_error(
        await api.call("POST", "/api/order", content=b"{nope",
                       headers={"Content-Type": "application/json"}),
        400, "bad_json",
    )  # fmt: skip
    cancel = await api.call(
        "POST", "/api/cancel", content=b"client_order_id=contract-form",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )  # fmt: skip
    assert cancel.status_code == 200
    assert list(cancel.json())[:2] == ["ok", "client_order_id"]
    assert cancel.json()["ok"] is True


async def test_api_key_lifecycle_and_messages(api: Api) -> None:
    """§4.11: the key record's fields in order; the documented 400 messages; revoking twice."""
    for body, message in (
        ({}, "name is required"),
        ({"name": "k", "permissions": "x"}, "permissions must be a list"),
    ):
        assert_error(
            await api.call("POST", "/api/auth/keys", json=body), 400, "bad_params", message
        )
    created = (await api.call("POST", "/api/auth/keys", json={"name": "  ci  "})).json()
    assert created["key_id"].startswith("vk_") and len(created["key_id"]) == 19
    assert created["api_key"].startswith("veloz_") and len(created["api_key"]) == 70
    assert created["message"] == "Store this key securely. It will not be shown again."
    keys = (await api.call("GET", "/api/auth/keys")).json()["keys"]
    mine = next(k for k in keys if k["key_id"] == created["key_id"])
    assert list(mine)[:7] == [
        "key_id", "user_id", "name", "created_at", "last_used_at", "revoked", "permissions",
    ]  # fmt: skip
    assert (mine["name"], mine["permissions"], mine["revoked"]) == ("ci", ["read", "write"], False)
    assert_error(
        await api.call("DELETE", "/api/auth/keys"), 400, "bad_params", "key_id is required"
    )
    for _ in range(2):
        revoked = await api.call("DELETE", "/api/auth/keys", params={"key_id": created["key_id"]})
        assert revoked.json() == {"ok": True, "key_id": created["key_id"]}


async def test_exchange_key_lifecycle_and_messages(api: Api) -> None:
    """§4.14 (K2): camelCase records without secrets, in order; the documented 400/404
    messages; `keyId` accepted for `key_id`; a connection test answers 200 even when it fails.
    Storage is encrypted in the gateway's database instead of the OS keychain."""
    for body, message in (
        ({}, "exchange, apiKey, and apiSecret are required"),
        ({**EXCHANGE_KEY, "exchange": "kraken"},
         "Invalid exchange. Valid options: ['binance', 'binance_futures', 'okx', 'bybit', "
         "'coinbase']"),
        ({**EXCHANGE_KEY, "exchange": "okx"}, "passphrase is required for OKX"),
    ):  # fmt: skip
        assert_error(
            await api.call("POST", "/api/exchange-keys", json=body), 400, "bad_params", message
        )
    created = await api.call("POST", "/api/exchange-keys", json={**EXCHANGE_KEY, "name": "life"})
    assert created.status_code == 201, created.text
    key_id = created.json()["keyId"]
    keys = (await api.call("GET", "/api/exchange-keys")).json()["keys"]
    mine = next(k for k in keys if k["id"] == key_id)
    assert list(mine) == EXCHANGE_KEY_FIELDS
    assert (mine["exchange"], mine["name"], mine["permissions"], mine["status"],
            mine["testnet"]) == ("binance", "life", ["read", "trade"], "active", True)  # fmt: skip
    assert "contract-secret" not in created.text + str(keys)

    kraken = {"exchange": "kraken", "apiKey": "k", "apiSecret": "s"}
    tested = await api.call("POST", "/api/exchange-keys/test", json=kraken)
    assert tested.json() == {
        "success": False, "exchange": "kraken", "permissions": [], "balanceAvailable": False,
        "latencyMs": 0, "error": "Unsupported exchange: kraken", "warnings": [], "balance": None,
    }  # fmt: skip
    incomplete = await api.call("POST", "/api/exchange-keys/test", json={"exchange": "binance"})
    assert_error(
        incomplete, 400, "bad_params", "Either keyId or (exchange, apiKey, apiSecret) required"
    )
    unknown = await api.call("POST", "/api/exchange-keys/test", json={"keyId": "none"})
    assert_error(unknown, 404, "not_found", "Key not found")

    assert_error(
        await api.call("DELETE", "/api/exchange-keys"), 400, "bad_params", "key_id is required"
    )
    deleted = await api.call("DELETE", "/api/exchange-keys", params={"keyId": key_id})
    assert deleted.json() == {"ok": True, "keyId": key_id}
    again = await api.call("DELETE", "/api/exchange-keys", params={"key_id": key_id})
    assert_error(again, 404, "not_found")


async def test_role_messages_keep_python_list_formatting(api: Api) -> None:
    """§4.12: the 400 messages, word for word, and the answers' shapes."""
    valid = "['viewer', 'trader', 'admin']"
    cases = [
        ({}, "user_id is required"),
        ({"user_id": "u", "roles": "x"}, "roles must be a list"),
        ({"user_id": "u", "roles": ["x"]}, f"Invalid roles: ['x']. Valid roles: {valid}"),
        ({"user_id": "u", "role": "god"}, f"Invalid role: god. Valid roles: {valid}"),
        ({"user_id": "u"}, "role or roles is required"),
    ]
    for body, message in cases:
        assert_error(
            await api.call("POST", "/api/auth/roles", json=body), 400, "bad_params", message
        )
    replaced = await api.call(
        "POST", "/api/auth/roles", json={"user_id": "dave", "roles": ["viewer"]}
    )
    assert replaced.json() == {"ok": True, "user_id": "dave", "roles": ["viewer"]}
    again = await api.call("POST", "/api/auth/roles", json={"user_id": "dave", "role": "viewer"})
    assert again.status_code == 200
    assert again.json() == {"ok": False, "message": "User already has this role",
                            "user_id": "dave", "roles": ["viewer"]}  # fmt: skip
    one = (await api.call("GET", "/api/auth/roles", params={"user_id": "dave"})).json()
    assert list(one) == ["user_id", "roles", "created_at", "updated_at", "created_by"]
    removed = await api.call(
        "DELETE", "/api/auth/roles", params={"user_id": "dave", "role": "viewer"}
    )
    assert removed.json() == {"ok": True, "user_id": "dave", "role": "viewer", "roles": []}
    for params, message in (({"role": "viewer"}, "user_id is required"),
                            ({"user_id": "dave"}, "role is required")):  # fmt: skip
        assert_error(await api.call("DELETE", "/api/auth/roles", params=params), 400,
                     "bad_params", message)  # fmt: skip
    assert_error(
        await api.call("DELETE", "/api/auth/roles", params={"user_id": "dave", "role": "trader"}),
        404, "not_found", "User does not have this role",
    )  # fmt: skip


async def test_settings_export_and_import(api: Api) -> None:
    """§4.15: the export is an indent-2 file with its headers; import's error codes."""
    export = await api.call("GET", "/api/settings/export")
    assert export.headers["content-type"] == "application/json"
    assert export.headers["content-disposition"] == "attachment; filename=veloz_config.json"
    assert export.text.startswith('{\n  "general": {')
    cases = [
        ({}, "bad_params", "config field required"),
        ({"config": "{not json"}, "import_error", "Invalid configuration format"),
        ({"config": '{"general": {}}'}, "import_error", "Invalid configuration format"),
        ({"config": {"general": {}}}, "validation_error", "Invalid configuration"),
    ]
    for body, code, message in cases:
        assert_error(await api.call("POST", "/api/settings/import", json=body), 400, code, message)
    replace = await api.call("POST", "/api/settings", json={"general": {}})
    assert_error(replace, 400, "validation_error", "Invalid configuration")


async def test_audit_entries_have_the_contract_fields(api: Api) -> None:
    """§8.2 (K13, F10): entries in order; `limit` and `offset` clamped as documented."""
    await api.call("POST", "/api/order", json=RESTING_ORDER)
    logs = (await api.call("GET", "/api/audit/logs", params={"type": "order"})).json()
    assert logs["logs"], logs
    assert list(logs["logs"][0]) == AUDIT_ENTRY_FIELDS
    assert logs["logs"][0]["action"] == "place_order"
    clamped = await api.call("GET", "/api/audit/logs", params={"limit": "5000", "offset": "-3"})
    assert (clamped.json()["limit"], clamped.json()["offset"]) == (1000, 0)
    junk = await api.call("GET", "/api/audit/logs", params={"limit": "many", "offset": "x"})
    assert (junk.json()["limit"], junk.json()["offset"]) == (100, 0)
