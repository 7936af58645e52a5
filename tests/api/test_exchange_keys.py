"""Exchange keys (contract §4.14) through HTTP: create, list, delete and test, with the
original's camelCase shapes and error messages; secrets stored encrypted and never answered;
connection tests against the stand-in venue; credentials swapped into a running Binance mode."""

from __future__ import annotations

import asyncio
import os
import stat
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from app.core.config import Settings
from app.execution.binance.engine import BinanceEngine
from tests.binance_standin.fixtures import binance_gateway, eventually, stream_connected
from tests.binance_standin.server import StandinBinance, serve_standin
from tests.conftest import Gateway, running_gateway

KEY_FIELDS = ["id", "exchange", "name", "permissions", "createdAt", "lastUsed", "status",
              "testnet"]  # fmt: skip
RESULT_FIELDS = ["success", "exchange", "permissions", "balanceAvailable", "latencyMs", "error",
                 "warnings", "balance"]  # fmt: skip
GOOD_KEY, GOOD_SECRET = "venue-key-good", "venue-secret-good-5a1f0c9e7d"
OTHER_KEY, OTHER_SECRET = "venue-key-other", "venue-secret-other-77e2b41a3c"
WITHDRAW = "API key has withdrawal permissions. Please create a new key without withdrawal access."


@pytest.fixture
async def standin() -> AsyncIterator[StandinBinance]:
    async with serve_standin() as running:
        running.venue.add_account(GOOD_KEY, GOOD_SECRET, USDT="10000", BTC="0")
        running.venue.add_account(OTHER_KEY, OTHER_SECRET, USDT="500", BTC="0")
        yield running


@pytest.fixture
async def gw(
    make_settings: Callable[..., Settings], standin: StandinBinance
) -> AsyncIterator[Gateway]:
    """Simulator mode; connection tests go to the stand-in (the configured base URL)."""
    async with running_gateway(make_settings(binance_trade_base_url=standin.base_url)) as gw:
        yield gw


async def create(gw: Gateway, **body: Any) -> Any:
    return await gw.client.post("/api/exchange-keys", json=body)


async def create_ok(gw: Gateway, key: str = GOOD_KEY, secret: str = GOOD_SECRET,
                    **extra: Any) -> str:  # fmt: skip
    response = await create(gw, **{"exchange": "binance", "apiKey": key, "apiSecret": secret,
                                   **extra})  # fmt: skip
    assert response.status_code == 201, response.text
    body = response.json()
    assert list(body) == ["ok", "keyId", "message"]
    assert body["ok"] is True and body["message"] == "API key stored securely"
    uuid.UUID(body["keyId"])
    key_id: str = body["keyId"]
    return key_id


async def key_test(gw: Gateway, **body: Any) -> dict[str, Any]:
    response = await gw.client.post("/api/exchange-keys/test", json=body)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    assert list(result) == RESULT_FIELDS
    return result


# --- create, list, delete ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "exchange, apiKey, and apiSecret are required"),
        ({"exchange": "binance", "apiKey": "k", "apiSecret": "  "},
         "exchange, apiKey, and apiSecret are required"),
        ({"exchange": "kraken", "apiKey": "k", "apiSecret": "s"},
         "Invalid exchange. Valid options: ['binance', 'binance_futures', 'okx', 'bybit', "
         "'coinbase']"),
        ({"exchange": "OKX", "apiKey": "k", "apiSecret": "s"}, "passphrase is required for OKX"),
        ({"exchange": "binance", "apiKey": "k", "apiSecret": "s", "name": "n" * 256},
         "name is limited to 255 characters, apiKey, apiSecret and passphrase to 1024"),
    ],
)  # fmt: skip
async def test_create_refuses_incomplete_bodies(
    gw: Gateway, body: dict[str, Any], message: str
) -> None:
    response = await gw.client.post("/api/exchange-keys", json=body)
    assert response.status_code == 400
    assert response.json() == {"error": "bad_params", "message": message}


@pytest.mark.parametrize(
    ("path", "body", "field", "expected"),
    [
        ("/api/exchange-keys", {"exchange": "okx", "apiKey": "k", "apiSecret": "s",
                                "passphrase": {}}, "passphrase", "string or null"),
        ("/api/exchange-keys", {"exchange": "binance", "apiKey": 5, "apiSecret": "s"},
         "apiKey", "string"),
        ("/api/exchange-keys/test", {"exchange": "binance", "apiKey": "k", "apiSecret": "s",
                                     "testnet": "no"}, "testnet", "boolean"),
        ("/api/exchange-keys/test", {"keyId": ["x"]}, "keyId", "string or null"),
    ],
)  # fmt: skip
async def test_fields_of_the_wrong_json_type_are_refused(
    gw: Gateway, path: str, body: dict[str, Any], field: str, expected: str
) -> None:
    response = await gw.client.post(path, json=body)
    assert (response.status_code, response.json()) == (400, {
        "error": "bad_params", "message": "invalid field types",
        "details": [{"field": field, "message": f"must be of type {expected}",
                     "type": "type_error"}],
    })  # fmt: skip
    assert (await gw.client.get("/api/exchange-keys")).json() == {"keys": []}


async def test_create_list_delete_without_ever_showing_secrets(
    gw: Gateway, make_settings: Callable[..., Settings]
) -> None:
    first = await create_ok(gw, name="main")
    second = await create_ok(gw, key="okx-key-12345", secret="okx-secret-67890", exchange="okx",
                             passphrase="okx-pass-phrase", testnet=False)  # fmt: skip
    listed = await gw.client.get("/api/exchange-keys")
    assert listed.status_code == 200
    keys = listed.json()["keys"]
    assert [list(k) for k in keys] == [KEY_FIELDS, KEY_FIELDS]
    assert keys[0] | {"createdAt": None} == {
        "id": first, "exchange": "binance", "name": "main", "permissions": ["read", "trade"],
        "createdAt": None, "lastUsed": None, "status": "active", "testnet": True,
    }  # fmt: skip
    assert keys[0]["createdAt"].endswith("+00:00")
    assert (keys[1]["id"], keys[1]["exchange"], keys[1]["name"], keys[1]["testnet"]) == (
        second, "okx", "Default", False,
    )  # fmt: skip
    for secret in (GOOD_KEY, GOOD_SECRET, "okx-secret-67890", "okx-pass-phrase"):
        assert secret not in listed.text

    # At rest: sealed, so no secret is in the database files; the master key file is 0600.
    data_dir = Path(make_settings().data_dir)
    stored = _database_bytes(data_dir)
    assert stored, "the database files exist"
    for secret in (GOOD_KEY, GOOD_SECRET, "okx-secret-67890", "okx-pass-phrase"):
        assert secret.encode() not in stored
    master = data_dir / "master.key"
    assert stat.S_IMODE(os.stat(master).st_mode) == 0o600

    missing = await gw.client.delete("/api/exchange-keys")
    assert (missing.status_code, missing.json()) == (
        400, {"error": "bad_params", "message": "key_id is required"},
    )  # fmt: skip
    unknown = await gw.client.delete("/api/exchange-keys", params={"key_id": str(uuid.uuid4())})
    assert (unknown.status_code, unknown.json()) == (404, {"error": "not_found"})
    gone = await gw.client.delete("/api/exchange-keys", params={"keyId": second})
    assert (gone.status_code, gone.json()) == (200, {"ok": True, "keyId": second})
    assert [k["id"] for k in (await gw.client.get("/api/exchange-keys")).json()["keys"]] == [first]

    logs = (await gw.client.get("/api/audit/logs", params={"log_type": "api_key"})).json()
    actions = [entry["action"] for entry in logs["logs"]]
    assert {"create_exchange_key", "delete_exchange_key"} <= set(actions)
    for secret in (GOOD_KEY, GOOD_SECRET, "okx-secret-67890", "okx-pass-phrase"):
        assert secret not in str(logs)


async def test_stored_keys_survive_a_restart_and_still_open(
    make_settings: Callable[..., Settings], standin: StandinBinance
) -> None:
    settings = make_settings(binance_trade_base_url=standin.base_url)
    async with running_gateway(settings) as gw:
        key_id = await create_ok(gw)
    async with running_gateway(settings) as gw:
        result = await key_test(gw, keyId=key_id)
        assert result["success"] is True


# --- connection test --------------------------------------------------------------------------


async def test_connection_test_of_a_stored_key(gw: Gateway, standin: StandinBinance) -> None:
    key_id = await create_ok(gw)
    result = await key_test(gw, keyId=key_id)
    assert result | {"latencyMs": 0} == {
        "success": True, "exchange": "binance", "permissions": ["read", "spot"],
        "balanceAvailable": True, "latencyMs": 0, "error": None, "warnings": [],
        "balance": {"USDT": 10000.0},
    }  # fmt: skip
    assert isinstance(result["latencyMs"], int)
    assert len(standin.venue.calls("/api/v3/ping")) == 3
    (restrictions,) = standin.venue.calls("/sapi/v1/account/apiRestrictions")
    assert restrictions.headers["x-mbx-apikey"] == GOOD_KEY
    keys = (await gw.client.get("/api/exchange-keys")).json()["keys"]
    assert keys[0]["lastUsed"] is not None


async def test_connection_test_without_api_restrictions_reads_the_account(
    gw: Gateway, standin: StandinBinance
) -> None:
    standin.venue.sapi_available = False  # as on the spot testnet
    result = await key_test(gw, exchange="binance", apiKey=GOOD_KEY, apiSecret=GOOD_SECRET)
    assert (result["success"], result["permissions"]) == (True, ["read", "spot"])
    assert len(result["warnings"]) == 1


async def test_connection_test_refuses_a_key_that_may_withdraw(
    gw: Gateway, standin: StandinBinance
) -> None:
    standin.venue.accounts[GOOD_KEY].can_withdraw = True
    result = await key_test(gw, exchange="binance", apiKey=GOOD_KEY, apiSecret=GOOD_SECRET)
    assert (result["success"], result["error"]) == (False, WITHDRAW)
    assert "withdraw" in result["permissions"]


async def test_connection_test_failures(gw: Gateway) -> None:
    bad = await key_test(gw, exchange="binance", apiKey="nobody", apiSecret="nothing")
    assert (bad["success"], bad["error"], bad["balance"]) == (False, "Invalid API key", None)
    kraken = await key_test(gw, exchange="kraken", apiKey="k", apiSecret="s")
    assert kraken == {"success": False, "exchange": "kraken", "permissions": [],
                      "balanceAvailable": False, "latencyMs": 0,
                      "error": "Unsupported exchange: kraken", "warnings": [],
                      "balance": None}  # fmt: skip
    response = await gw.client.post("/api/exchange-keys/test", json={"exchange": "binance"})
    assert (response.status_code, response.json()) == (
        400, {"error": "bad_params",
              "message": "Either keyId or (exchange, apiKey, apiSecret) required"},
    )  # fmt: skip
    response = await gw.client.post("/api/exchange-keys/test", json={"keyId": "nope"})
    assert (response.status_code, response.json()) == (
        404, {"error": "not_found", "message": "Key not found"},
    )  # fmt: skip


async def test_connection_test_to_a_venue_that_does_not_resolve_fails_plainly(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(binance_trade_base_url="https://venue.veloz-gateway.invalid")
    async with running_gateway(settings) as gw:
        result = await key_test(gw, exchange="binance", apiKey="k", apiSecret="s")
    assert (result["success"], result["balance"]) == (False, None)
    assert result["error"].startswith("Connection failed: ConnectError"), result["error"]


async def test_connection_test_to_a_venue_that_never_answers_ends_at_the_deadline(
    make_settings: Callable[..., Settings],
) -> None:
    async def hold_open(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # accept the request, answer nothing until the client leaves
        writer.close()

    silent = await asyncio.start_server(hold_open, "127.0.0.1", 0)
    port = silent.sockets[0].getsockname()[1]
    try:
        settings = make_settings(binance_trade_base_url=f"http://127.0.0.1:{port}")
        async with running_gateway(settings) as gw:
            gw.runtime.exchange_keys.test_deadline = 0.2  # the venue's own timeout is longer
            result = await key_test(gw, exchange="binance", apiKey="k", apiSecret="s")
    finally:
        silent.close()
    assert (result["success"], result["error"]) == (
        False, "Connection failed: no answer within 0.2 s",
    )  # fmt: skip


# --- hot swap ---------------------------------------------------------------------------------


async def test_a_new_binance_key_is_used_at_once_and_deleting_it_falls_back(
    make_settings: Callable[..., Settings], standin: StandinBinance
) -> None:
    async with binance_gateway(
        make_settings, standin, binance_api_key="", binance_api_secret=""
    ) as gw:
        order = {"side": "BUY", "qty": 0.001, "price": 100, "client_order_id": "hs-0"}
        refused = await gw.client.post("/api/order", json=order)
        assert (refused.status_code, refused.json()["error"]) == (400, "binance_not_configured")

        first = await create_ok(gw)  # starts the user-data stream, which was not running
        await eventually(lambda: stream_connected(gw))
        assert standin.subscribed(GOOD_KEY)
        placed = await gw.client.post("/api/order", json={**order, "client_order_id": "hs-1"})
        assert placed.json()["ok"] is True
        assert standin.venue.calls("/api/v3/order", "POST")[-1].headers["x-mbx-apikey"] == GOOD_KEY

        second = await create_ok(gw, key=OTHER_KEY, secret=OTHER_SECRET)
        await eventually(lambda: standin.subscribed(OTHER_KEY) and not standin.subscribed(GOOD_KEY))
        await gw.client.post("/api/order", json={**order, "client_order_id": "hs-2"})
        assert standin.venue.calls("/api/v3/order", "POST")[-1].headers["x-mbx-apikey"] == OTHER_KEY

        engine = gw.runtime.engine
        assert isinstance(engine, BinanceEngine)
        deleted = await gw.client.delete("/api/exchange-keys", params={"key_id": second})
        assert deleted.status_code == 200
        await eventually(lambda: standin.subscribed(GOOD_KEY))
        await gw.client.post("/api/order", json={**order, "client_order_id": "hs-3"})
        assert standin.venue.calls("/api/v3/order", "POST")[-1].headers["x-mbx-apikey"] == GOOD_KEY
        assert gw.runtime.exchange_keys.active_key_id == first


def _database_bytes(data_dir: Path) -> bytes:
    return b"".join(p.read_bytes() for p in data_dir.glob("veloz.db*"))
