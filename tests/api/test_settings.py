"""GUI settings over HTTP (contract §4.15): GET/POST /api/settings, export and import, stored in
the database; guards (read:config, write:orders, admin:config) and audit entries."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from app.core.config import Settings
from tests.api.conftest import SettingsFactory, api_key, bearer
from tests.conftest import Gateway, running_gateway
from tests.unit.test_settings_models import contract_defaults

INVALID = {"error": "validation_error", "message": "Invalid configuration"}
IMPORT_FORMAT = {"error": "import_error", "message": "Invalid configuration format"}
CONFIG_REQUIRED = {"error": "bad_params", "message": "config field required"}
IMPORTED = "Configuration imported successfully"


def document(**sections: Any) -> dict[str, Any]:
    """A replacement document: the four required sections, empty unless given."""
    return {"general": {}, "trading": {}, "risk": {}, "advanced": {}, **sections}


def merged(stored: dict[str, Any]) -> dict[str, Any]:
    """What GET answers for a stored document: §4.15's shallow merge per default section."""
    result = contract_defaults()
    for name, value in stored.items():
        if name in result and isinstance(value, dict):
            result[name].update(value)
        else:
            result[name] = value
    return result


async def get_settings(client: httpx.AsyncClient, **kw: Any) -> Any:
    response = await client.get("/api/settings", **kw)
    assert response.status_code == 200, response.text
    return response.json()


async def post_settings(client: httpx.AsyncClient, body: Any, **kw: Any) -> httpx.Response:
    return await client.post("/api/settings", json=body, **kw)


def fields(response: httpx.Response) -> list[str]:
    return [detail["field"] for detail in response.json()["details"]]


# --- GET -------------------------------------------------------------------------------------


async def test_defaults_are_the_contracts_exactly(gateway: Gateway) -> None:
    response = await gateway.client.get("/api/settings")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == contract_defaults()
    # A bare object in the contract's key order; 10000 stays 10000 on the wire.
    assert list(response.json()) == ["general", "trading", "risk", "advanced", "security"]
    assert '"maxPositionValue":10000,' in response.text
    assert '"largeOrderThreshold":1000,' in response.text


# --- POST: section merge ---------------------------------------------------------------------


async def test_section_merge_is_shallow_and_answers_the_full_settings(gateway: Gateway) -> None:
    response = await post_settings(
        gateway.client, {"section": "general", "data": {"theme": "dark", "myWidget": [1, 2]}}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert list(body) == ["ok", "settings"]
    assert body["ok"] is True
    expected = contract_defaults()
    expected["general"].update(theme="dark", myWidget=[1, 2])
    assert body["settings"] == expected
    assert await get_settings(gateway.client) == expected

    # Shallow: a nested object is replaced whole, not merged.
    response = await post_settings(
        gateway.client, {"section": "general", "data": {"notifications": {"sound": False}}}
    )
    expected["general"]["notifications"] = {"sound": False}
    assert response.json()["settings"] == expected
    assert await get_settings(gateway.client) == expected


async def test_section_merge_creates_a_new_section(gateway: Gateway) -> None:
    await post_settings(gateway.client, {"section": "charts", "data": {"interval": "1h"}})
    response = await post_settings(
        gateway.client, {"section": "charts", "data": {"style": "candles"}}
    )
    assert response.status_code == 200, response.text
    settings = response.json()["settings"]
    assert settings["charts"] == {"interval": "1h", "style": "candles"}
    assert list(settings) == [*contract_defaults(), "charts"]


async def test_section_merge_into_an_absent_known_section(gateway: Gateway) -> None:
    await post_settings(gateway.client, document())  # no `security` stored
    response = await post_settings(
        gateway.client, {"section": "security", "data": {"sessionTimeout": 5}}
    )
    assert response.status_code == 200, response.text
    assert response.json()["settings"]["security"] == {
        **contract_defaults()["security"],
        "sessionTimeout": 5,
    }


# --- POST: full replacement ------------------------------------------------------------------


async def test_counts_written_as_whole_floats_are_counts(gateway: Gateway) -> None:
    """JSON Schema counts 5.0 as an integer, so the counts accept it; 5.5 is refused."""
    saved = await post_settings(gateway.client, {"section": "risk", "data": {"maxOpenOrders": 5.0}})
    assert saved.status_code == 200, saved.text
    assert saved.json()["settings"]["risk"]["maxOpenOrders"] == 5
    half = await post_settings(gateway.client, {"section": "risk", "data": {"maxOpenOrders": 5.5}})
    assert half.status_code == 400
    assert half.json()["error"] == "validation_error"


async def test_full_replacement(gateway: Gateway) -> None:
    await post_settings(gateway.client, {"section": "charts", "data": {"interval": "1h"}})
    new = document(
        general={"theme": "light", "language": "de"},
        trading={"defaultOrderType": "market"},
        apiKeys={"binance": {"key": "abc"}},
    )
    response = await post_settings(gateway.client, new)
    assert response.status_code == 200, response.text
    assert response.json() == {"ok": True, "settings": merged(new)}
    settings = await get_settings(gateway.client)
    assert settings == merged(new)
    assert "charts" not in settings  # replaced, not merged
    assert settings["security"] == contract_defaults()["security"]


@pytest.mark.parametrize(
    ("body", "expected_fields"),
    [
        ({}, ["general", "trading", "risk", "advanced"]),
        ({"general": {}, "trading": {}, "risk": {}}, ["advanced"]),
        ({"section": "general"}, ["general", "trading", "risk", "advanced"]),  # no data: replace
        ({"data": {"theme": "dark"}}, ["general", "trading", "risk", "advanced"]),
        (document(trading="market"), ["trading"]),
        (document(trading={"defaultOrderType": "stop"}), ["trading.defaultOrderType"]),
        (document(risk={"maxOpenOrders": -1}), ["risk.maxOpenOrders"]),
        (document(risk={"maxOpenOrders": "10"}), ["risk.maxOpenOrders"]),
        (document(security={"twoFactorEnabled": "yes"}), ["security.twoFactorEnabled"]),
        ({"section": "general", "data": {"theme": "blue"}}, ["general.theme"]),
        ({"section": "advanced", "data": {"logLevel": "trace"}}, ["advanced.logLevel"]),
        ({"section": "trading", "data": {"slippageTolerance": 2}}, ["trading.slippageTolerance"]),
        (
            {"section": "risk", "data": {"circuitBreaker": {"cooldownMinutes": 1.5}}},
            ["risk.circuitBreaker.cooldownMinutes"],
        ),
        ({"section": "general", "data": "dark"}, ["data"]),
        ({"section": "general", "data": None}, ["data"]),
        ({"section": "", "data": {}}, ["section"]),
        ({"section": ["general"], "data": {}}, ["section"]),
    ],
)
async def test_invalid_settings_are_refused_and_change_nothing(
    gateway: Gateway, body: dict[str, Any], expected_fields: list[str]
) -> None:
    before = await get_settings(gateway.client)
    response = await post_settings(gateway.client, body)
    assert response.status_code == 400
    assert {k: v for k, v in response.json().items() if k != "details"} == INVALID
    assert fields(response) == expected_fields
    assert await get_settings(gateway.client) == before


async def test_bodies_that_are_not_a_json_object(gateway: Gateway) -> None:
    response = await gateway.client.post(
        "/api/settings", content=b"{oops", headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["error"] == "bad_json"
    response = await post_settings(gateway.client, [1, 2])
    assert response.status_code == 400
    assert response.json()["error"] == "bad_params"


async def test_a_failed_save_answers_config_error(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_: Any, **__: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(gateway.runtime.gui_settings.repository, "save", broken)
    for body in ({"section": "general", "data": {"theme": "dark"}}, document()):
        response = await post_settings(gateway.client, body)
        assert response.status_code == 500
        assert response.json() == {
            "error": "config_error",
            "message": "the settings could not be saved",
        }
    response = await gateway.client.post("/api/settings/import", json={"config": document()})
    assert response.status_code == 500
    assert response.json()["error"] == "config_error"
    assert await get_settings(gateway.client) == contract_defaults()


# --- export ----------------------------------------------------------------------------------


async def test_export_is_an_indent_2_json_file_without_api_keys(gateway: Gateway) -> None:
    await post_settings(gateway.client, {"section": "apiKeys", "data": {"binance": "k-123"}})
    await post_settings(gateway.client, {"section": "general", "data": {"theme": "dark"}})
    settings = await get_settings(gateway.client)
    assert settings["apiKeys"] == {"binance": "k-123"}

    response = await gateway.client.get("/api/settings/export")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["content-disposition"] == "attachment; filename=veloz_config.json"
    without = {k: v for k, v in settings.items() if k != "apiKeys"}
    assert response.text == json.dumps(without, indent=2)
    assert int(response.headers["content-length"]) == len(response.content)

    for value in ("false", "yes", "1", ""):
        response = await gateway.client.get(
            "/api/settings/export", params={"include_sensitive": value}
        )
        assert "apiKeys" not in response.json(), value


@pytest.mark.parametrize("value", ["true", "TRUE", "True"])
async def test_export_with_include_sensitive_keeps_api_keys(gateway: Gateway, value: str) -> None:
    await post_settings(gateway.client, {"section": "apiKeys", "data": {"binance": "k-123"}})
    response = await gateway.client.get("/api/settings/export", params={"include_sensitive": value})
    assert response.status_code == 200
    assert response.text == json.dumps(await get_settings(gateway.client), indent=2)
    assert response.json()["apiKeys"] == {"binance": "k-123"}


async def test_a_failed_export_answers_export_error(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(include_sensitive: bool) -> str:
        raise TypeError("not serializable")

    monkeypatch.setattr(gateway.runtime.gui_settings, "export", broken)
    response = await gateway.client.get("/api/settings/export")
    assert response.status_code == 500
    assert response.json()["error"] == "export_error"
    assert response.json()["message"]


# --- import ----------------------------------------------------------------------------------


async def test_import_of_json_text_answers_the_document_as_saved(gateway: Gateway) -> None:
    new = document(general={"theme": "dark"}, charts={"interval": "4h"})
    response = await gateway.client.post("/api/settings/import", json={"config": json.dumps(new)})
    assert response.status_code == 200, response.text
    assert response.json() == {"ok": True, "message": IMPORTED, "settings": new}  # not merged
    assert await get_settings(gateway.client) == merged(new)


async def test_import_of_an_object(gateway: Gateway) -> None:
    new = document(risk={"maxOpenOrders": 3}, apiKeys=["k"])
    response = await gateway.client.post("/api/settings/import", json={"config": new})
    assert response.status_code == 200, response.text
    assert response.json() == {"ok": True, "message": IMPORTED, "settings": new}
    assert await get_settings(gateway.client) == merged(new)


async def test_an_export_imports_back(gateway: Gateway) -> None:
    await post_settings(gateway.client, {"section": "general", "data": {"theme": "dark"}})
    exported = (await gateway.client.get("/api/settings/export")).text
    await post_settings(gateway.client, {"section": "general", "data": {"theme": "light"}})
    response = await gateway.client.post("/api/settings/import", json={"config": exported})
    assert response.status_code == 200, response.text
    assert (await get_settings(gateway.client))["general"]["theme"] == "dark"


@pytest.mark.parametrize("body", [{}, {"config": None}, {"config": ""}, {"config": {}}])
async def test_import_without_config(gateway: Gateway, body: dict[str, Any]) -> None:
    response = await gateway.client.post("/api/settings/import", json=body)
    assert response.status_code == 400
    assert response.json() == CONFIG_REQUIRED


@pytest.mark.parametrize(
    "text",
    [
        "{not json",
        "[1, 2]",
        '"a string"',
        json.dumps({"general": {}, "trading": {}}),
        json.dumps(document(general={"theme": "neon"})),
    ],
)
async def test_import_of_bad_text(gateway: Gateway, text: str) -> None:
    response = await gateway.client.post("/api/settings/import", json={"config": text})
    assert response.status_code == 400
    assert {k: v for k, v in response.json().items() if k != "details"} == IMPORT_FORMAT
    assert await get_settings(gateway.client) == contract_defaults()


@pytest.mark.parametrize(
    ("config", "expected_fields"),
    [
        ({"general": {}}, ["trading", "risk", "advanced"]),
        (document(advanced={"orderBookDepth": 0}), ["advanced.orderBookDepth"]),
        ([1, 2], [None]),
        (42, [None]),
    ],
)
async def test_import_of_a_bad_object(
    gateway: Gateway, config: Any, expected_fields: list[str | None]
) -> None:
    response = await gateway.client.post("/api/settings/import", json={"config": config})
    assert response.status_code == 400
    assert {k: v for k, v in response.json().items() if k != "details"} == INVALID
    assert fields(response) == expected_fields
    assert await get_settings(gateway.client) == contract_defaults()


# --- persistence -----------------------------------------------------------------------------


async def test_settings_survive_a_restart(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings()
    async with running_gateway(settings) as gw:
        await post_settings(gw.client, document(general={"theme": "dark"}, apiKeys={"a": "b"}))
        await post_settings(gw.client, {"section": "charts", "data": {"interval": "1h"}})
        await post_settings(gw.client, {"section": "trading", "data": {"defaultSymbol": "ETHBTC"}})
        before = await get_settings(gw.client)
    async with running_gateway(settings) as gw:
        assert await get_settings(gw.client) == before
        assert before["general"]["theme"] == "dark"
        assert before["trading"]["defaultSymbol"] == "ETHBTC"
        assert before["charts"] == {"interval": "1h"}
        imported = document(risk={"maxOpenOrders": 1})
        await gw.client.post("/api/settings/import", json={"config": imported})
    async with running_gateway(settings) as gw:
        assert await get_settings(gw.client) == merged(imported)


# --- guards and audit (auth on) --------------------------------------------------------------


@pytest.fixture
async def secured(auth_settings: SettingsFactory) -> AsyncIterator[Gateway]:
    async with running_gateway(auth_settings()) as running:
        yield running


def as_admin(gw: Gateway) -> dict[str, str]:
    return bearer(gw.runtime.auth.tokens.issue_access("admin"))


async def key_with(gw: Gateway, *permissions: str) -> dict[str, str]:
    response = await gw.client.post(
        "/api/auth/keys",
        json={"name": "settings-test", "permissions": list(permissions)},
        headers=as_admin(gw),
    )
    assert response.status_code == 201, response.text
    return api_key(response.json()["api_key"])


def forbidden(permission: str) -> dict[str, str]:
    return {"error": "forbidden", "message": f"Required permissions: {permission}"}


async def call(gw: Gateway, name: str, headers: dict[str, str] | None) -> httpx.Response:
    client = gw.client
    if name == "get":
        return await client.get("/api/settings", headers=headers)
    if name == "post":
        body = {"section": "general", "data": {"theme": "dark"}}
        return await client.post("/api/settings", json=body, headers=headers)
    if name == "export":
        return await client.get("/api/settings/export", headers=headers)
    if name == "export_sensitive":
        return await client.get(
            "/api/settings/export", params={"include_sensitive": "true"}, headers=headers
        )
    assert name == "import"
    return await client.post("/api/settings/import", json={"config": document()}, headers=headers)


CALLS = ["get", "post", "export", "export_sensitive", "import"]


async def test_every_settings_route_needs_credentials(secured: Gateway) -> None:
    for name in CALLS:
        response = await call(secured, name, None)
        assert response.status_code == 401, name
        assert response.json() == {"error": "authentication_required"}, name


@pytest.mark.parametrize(
    ("permissions", "outcomes"),
    [
        (["viewer"], {"get": 200, "post": "write:orders", "export": 200,
                      "export_sensitive": "admin:config", "import": "admin:config"}),
        (["read:config"], {"get": 200, "post": "write:orders", "export": 200,
                           "export_sensitive": "admin:config", "import": "admin:config"}),
        (["trader"], {"get": 200, "post": 200, "export": 200,
                      "export_sensitive": "admin:config", "import": "admin:config"}),
        (["read", "write"], {"get": 200, "post": 200, "export": 200,
                             "export_sensitive": "admin:config", "import": "admin:config"}),
        # Granular admin:config is enough: no literal "admin" needed (it replaces §2.5's check).
        (["read:config", "admin:config"], {"get": 200, "post": "write:orders", "export": 200,
                                           "export_sensitive": 200, "import": 200}),
        (["admin"], {"get": 200, "post": 200, "export": 200, "export_sensitive": 200,
                     "import": 200}),
    ],
)  # fmt: skip
async def test_guards(secured: Gateway, permissions: list[str], outcomes: dict[str, Any]) -> None:
    headers = await key_with(secured, *permissions)
    for name in CALLS:
        response = await call(secured, name, headers)
        expected = outcomes[name]
        if expected == 200:
            assert response.status_code == 200, (name, response.text)
        else:
            assert response.status_code == 403, (name, response.text)
            assert response.json() == forbidden(expected), name


async def test_an_admin_login_can_do_everything(secured: Gateway) -> None:
    for name in CALLS:
        response = await call(secured, name, as_admin(secured))
        assert response.status_code == 200, (name, response.text)


async def test_every_change_and_export_is_audited(secured: Gateway) -> None:
    admin = as_admin(secured)
    client = secured.client
    await client.post("/api/settings", json={"section": "charts", "data": {"a": 1}}, headers=admin)
    await client.post("/api/settings", json=document(apiKeys={"x": "y"}), headers=admin)
    await client.get("/api/settings/export", headers=admin)
    await client.get("/api/settings/export?include_sensitive=TRUE", headers=admin)
    await client.post(
        "/api/settings/import", json={"config": json.dumps(document())}, headers=admin
    )
    await client.post("/api/settings/import", json={"config": document()}, headers=admin)
    await client.post("/api/settings", json={}, headers=admin)  # refused: not a change

    response = await client.get("/api/audit/logs", params={"type": "config"}, headers=admin)
    assert response.status_code == 200, response.text
    logs = list(reversed(response.json()["logs"]))  # oldest first
    assert [(e["action"], e["details"]) for e in logs] == [
        ("update_settings", {"sections": ["charts"], "mode": "merge"}),
        (
            "update_settings",
            {"sections": ["general", "trading", "risk", "advanced", "apiKeys"], "mode": "replace"},
        ),
        ("export_settings", {"include_sensitive": False}),
        ("export_settings", {"include_sensitive": True}),
        (
            "import_settings",
            {"sections": ["general", "trading", "risk", "advanced"], "format": "text"},
        ),
        (
            "import_settings",
            {"sections": ["general", "trading", "risk", "advanced"], "format": "object"},
        ),
    ]
    assert all(e["log_type"] == "config" and e["user_id"] == "admin" for e in logs)
    assert all(e["request_id"] for e in logs)
