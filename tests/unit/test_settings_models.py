"""GUI settings (contract §4.15): the section models, the defaults, the merge rules, and the
service over a real (SQLite) database."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from app.db.database import make_engine, migrate
from app.schemas.settings import (
    SECTION_MODELS,
    AdvancedSettings,
    GeneralSettings,
    RiskSettings,
    SecuritySettings,
    SettingsConfig,
    TradingSettings,
    default_settings,
)
from app.services.settings import (
    InvalidSettings,
    InvalidSettingsText,
    SettingsService,
    SettingsStorageError,
    effective,
    validate_document,
    validate_section,
)

# §4.15, verbatim.
CONTRACT_DEFAULTS = """
{"general": {"language": "en", "theme": "system", "timezone": "UTC", "dateFormat": "ISO",
             "notifications": {"orderFills": true, "priceAlerts": true, "systemAlerts": true, "sound": true}},
 "trading": {"defaultSymbol": "BTCUSDT", "orderConfirmation": true, "doubleClickToTrade": false,
             "defaultOrderType": "limit", "defaultTimeInForce": "GTC", "slippageTolerance": 0.005},
 "risk": {"maxPositionSize": 0.1, "maxPositionValue": 10000, "dailyLossLimit": 0.05, "maxOpenOrders": 10,
          "circuitBreaker": {"enabled": true, "threshold": 0.1, "cooldownMinutes": 60},
          "requireConfirmation": {"largeOrders": true, "largeOrderThreshold": 1000, "marketOrders": true}},
 "advanced": {"apiRateLimit": 10, "websocketReconnectDelay": 5000, "orderBookDepth": 20, "logLevel": "info",
              "telemetry": true},
 "security": {"twoFactorEnabled": false, "recoveryEmail": "", "sessionTimeout": 30,
              "requirePasswordForTrades": false}}
"""  # noqa: E501


def contract_defaults() -> dict[str, Any]:
    defaults: dict[str, Any] = json.loads(CONTRACT_DEFAULTS)
    return defaults


def minimal_document(**extra: Any) -> dict[str, Any]:
    return {"general": {}, "trading": {}, "risk": {}, "advanced": {}, **extra}


def error_fields(exc: pytest.ExceptionInfo[InvalidSettings]) -> list[str | None]:
    return [error["field"] for error in exc.value.errors]


# --- defaults --------------------------------------------------------------------------------


def test_defaults_are_the_contracts_exactly() -> None:
    defaults = default_settings()
    assert defaults == contract_defaults()
    # Same keys in the same order, and integers stay integers (10000, not 10000.0).
    assert json.dumps(defaults) == json.dumps(contract_defaults())


def test_defaults_are_a_new_copy_each_time() -> None:
    first = default_settings()
    first["general"]["notifications"]["sound"] = False
    assert default_settings()["general"]["notifications"]["sound"] is True


@pytest.mark.parametrize("name", list(SECTION_MODELS))
def test_each_default_section_is_valid_and_round_trips(name: str) -> None:
    model = SECTION_MODELS[name]
    section = contract_defaults()[name]
    assert model.model_validate(section).model_dump() == section
    assert model().model_dump() == section


def test_the_default_document_is_a_valid_document() -> None:
    SettingsConfig.model_validate(contract_defaults())


# --- types and values ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "data"),
    [
        (GeneralSettings, {"theme": "light"}),
        (GeneralSettings, {"theme": "dark", "language": "zh-CN", "timezone": "Asia/Tokyo"}),
        (GeneralSettings, {"notifications": {"sound": False}}),
        (TradingSettings, {"defaultOrderType": "market", "defaultTimeInForce": "IOC"}),
        (TradingSettings, {"slippageTolerance": 0, "defaultSymbol": "ETHUSDT"}),
        (RiskSettings, {"maxOpenOrders": 0, "maxPositionValue": 2.5, "maxPositionSize": 3}),
        (RiskSettings, {"circuitBreaker": {"threshold": 1}, "requireConfirmation": {}}),
        (AdvancedSettings, {"logLevel": "debug", "apiRateLimit": 1, "orderBookDepth": 5000}),
        (SecuritySettings, {"recoveryEmail": "ops@example.com", "sessionTimeout": 0}),
    ],
)
def test_valid_values(model: type[BaseModel], data: dict[str, Any]) -> None:
    model.model_validate(data)


@pytest.mark.parametrize(
    ("model", "data", "field"),
    [
        (GeneralSettings, {"theme": "blue"}, "theme"),
        (GeneralSettings, {"language": ""}, "language"),
        (GeneralSettings, {"timezone": ""}, "timezone"),
        (GeneralSettings, {"notifications": {"sound": "true"}}, "notifications.sound"),
        (GeneralSettings, {"notifications": {"sound": 1}}, "notifications.sound"),
        (GeneralSettings, {"notifications": "off"}, "notifications"),
        (TradingSettings, {"defaultOrderType": "stop"}, "defaultOrderType"),
        (TradingSettings, {"defaultOrderType": "LIMIT"}, "defaultOrderType"),
        (TradingSettings, {"defaultTimeInForce": "DAY"}, "defaultTimeInForce"),
        (TradingSettings, {"slippageTolerance": 1.5}, "slippageTolerance"),
        (TradingSettings, {"slippageTolerance": float("nan")}, "slippageTolerance"),
        (TradingSettings, {"defaultSymbol": "BTC/USDT"}, "defaultSymbol"),
        (TradingSettings, {"orderConfirmation": None}, "orderConfirmation"),
        (RiskSettings, {"maxOpenOrders": -1}, "maxOpenOrders"),
        (RiskSettings, {"maxOpenOrders": 2.5}, "maxOpenOrders"),
        (RiskSettings, {"maxOpenOrders": "5"}, "maxOpenOrders"),
        (RiskSettings, {"maxOpenOrders": True}, "maxOpenOrders"),
        (RiskSettings, {"maxPositionValue": -1}, "maxPositionValue"),
        (RiskSettings, {"maxPositionValue": float("inf")}, "maxPositionValue"),
        (RiskSettings, {"dailyLossLimit": 2}, "dailyLossLimit"),
        (RiskSettings, {"circuitBreaker": {"cooldownMinutes": -5}},
         "circuitBreaker.cooldownMinutes"),
        (RiskSettings, {"requireConfirmation": {"largeOrders": "no"}},
         "requireConfirmation.largeOrders"),
        (AdvancedSettings, {"logLevel": "verbose"}, "logLevel"),
        (AdvancedSettings, {"logLevel": "warning"}, "logLevel"),
        (AdvancedSettings, {"apiRateLimit": 0}, "apiRateLimit"),
        (AdvancedSettings, {"orderBookDepth": 0}, "orderBookDepth"),
        (AdvancedSettings, {"websocketReconnectDelay": -1}, "websocketReconnectDelay"),
        (SecuritySettings, {"recoveryEmail": "not-an-email"}, "recoveryEmail"),
        (SecuritySettings, {"twoFactorEnabled": "false"}, "twoFactorEnabled"),
    ],
)  # fmt: skip
def test_invalid_values(model: type[BaseModel], data: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as exc:
        model.model_validate(data)
    assert [".".join(str(p) for p in e["loc"]) for e in exc.value.errors()] == [field]


def test_unknown_keys_are_kept_untouched() -> None:
    data = {"theme": "dark", "chartColors": {"up": "#0f0"}, "favourites": ["BTCUSDT"]}
    dumped = GeneralSettings.model_validate(data).model_dump()
    assert dumped["chartColors"] == {"up": "#0f0"}
    assert dumped["favourites"] == ["BTCUSDT"]


# --- documents and sections ------------------------------------------------------------------


def test_a_document_needs_the_four_sections() -> None:
    assert validate_document(minimal_document()) == minimal_document()
    for missing in ("general", "trading", "risk", "advanced"):
        document = minimal_document()
        del document[missing]
        with pytest.raises(InvalidSettings) as exc:
            validate_document(document)
        assert error_fields(exc) == [missing]


def test_a_document_may_hold_any_other_top_level_key() -> None:
    document = minimal_document(apiKeys=[{"exchange": "binance"}], charts={"a": 1}, note="x")
    assert validate_document(document) is document


@pytest.mark.parametrize("document", [[], "text", 1, None])
def test_a_document_must_be_an_object(document: object) -> None:
    with pytest.raises(InvalidSettings) as exc:
        validate_document(document)
    assert error_fields(exc) == [None]


def test_document_errors_name_the_section_and_field() -> None:
    document = minimal_document(trading={"defaultOrderType": "stop"}, risk={"maxOpenOrders": -1})
    with pytest.raises(InvalidSettings) as exc:
        validate_document(document)
    assert error_fields(exc) == ["trading.defaultOrderType", "risk.maxOpenOrders"]
    assert all(set(e) == {"field", "message", "type"} for e in exc.value.errors)


def test_section_errors_carry_the_section_name_and_other_sections_are_free() -> None:
    with pytest.raises(InvalidSettings) as exc:
        validate_section("advanced", {"logLevel": "loud"})
    assert error_fields(exc) == ["advanced.logLevel"]
    validate_section("charts", {"anything": object()})


# --- effective settings (shallow merge over the defaults) ------------------------------------


def test_nothing_stored_means_the_defaults() -> None:
    assert effective({}) == contract_defaults()


def test_each_stored_section_is_shallow_merged_over_its_defaults() -> None:
    stored = {"general": {"theme": "dark", "notifications": {"sound": False}}, "risk": {"x": 1}}
    result = effective(stored)
    expected = contract_defaults()
    expected["general"].update(theme="dark", notifications={"sound": False})  # shallow
    expected["risk"]["x"] = 1
    assert result == expected


def test_other_stored_keys_follow_the_default_sections_as_stored() -> None:
    stored = {"charts": {"interval": "1h"}, "trading": {}, "apiKeys": ["k"]}
    result = effective(stored)
    assert list(result) == [*contract_defaults(), "charts", "apiKeys"]
    assert result["charts"] == {"interval": "1h"}
    assert result["apiKeys"] == ["k"]


def test_effective_shares_nothing_with_the_stored_document() -> None:
    stored = {"general": {"notifications": {"sound": False}}, "charts": {"a": [1]}}
    result = effective(stored)
    result["general"]["notifications"]["sound"] = True
    result["charts"]["a"].append(2)
    assert stored == {"general": {"notifications": {"sound": False}}, "charts": {"a": [1]}}


# --- the service, over SQLite ----------------------------------------------------------------


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[SettingsService]:
    engine = make_engine(f"sqlite:///{tmp_path / 'settings.db'}")
    await asyncio.to_thread(migrate, engine)
    svc = SettingsService(engine)
    await svc.start()
    yield svc
    engine.dispose()


async def restarted(service: SettingsService) -> SettingsService:
    again = SettingsService(service.repository.engine)
    await again.start()
    return again


async def test_service_starts_with_the_defaults_and_stores_nothing(
    service: SettingsService,
) -> None:
    assert service.get() == contract_defaults()
    assert service.repository.load() is None


async def test_get_returns_a_copy(service: SettingsService) -> None:
    service.get()["general"]["theme"] = "dark"
    assert service.get()["general"]["theme"] == "system"


async def test_merge_section_stores_only_what_was_set(service: SettingsService) -> None:
    result = await service.merge_section("general", {"theme": "dark"})
    assert result["general"] == {**contract_defaults()["general"], "theme": "dark"}
    await service.merge_section("general", {"language": "fr"})
    assert service.repository.load() == {"general": {"theme": "dark", "language": "fr"}}
    assert (await restarted(service)).get() == service.get()


async def test_merge_section_creates_a_new_section(service: SettingsService) -> None:
    await service.merge_section("charts", {"interval": "1h"})
    result = await service.merge_section("charts", {"style": "candles"})
    assert result["charts"] == {"interval": "1h", "style": "candles"}


async def test_merge_into_a_non_object_value_replaces_it(service: SettingsService) -> None:
    await service.replace(minimal_document(apiKeys=["k1"]))
    result = await service.merge_section("apiKeys", {"binance": "k2"})
    assert result["apiKeys"] == {"binance": "k2"}


@pytest.mark.parametrize(
    ("section", "data", "field"),
    [
        ("", {}, "section"),
        (None, {}, "section"),
        (5, {}, "section"),
        ("x" * 65, {}, "section"),
        ("general", [], "data"),
        ("general", "dark", "data"),
        ("general", {"theme": "blue"}, "general.theme"),
        ("risk", {"circuitBreaker": {"enabled": 1}}, "risk.circuitBreaker.enabled"),
    ],
)
async def test_merge_section_refuses_invalid_input_and_changes_nothing(
    service: SettingsService, section: object, data: object, field: str
) -> None:
    with pytest.raises(InvalidSettings) as exc:
        await service.merge_section(section, data)
    assert error_fields(exc) == [field]
    assert service.get() == contract_defaults()
    assert service.repository.load() is None


async def test_concurrent_merges_keep_every_key(service: SettingsService) -> None:
    await asyncio.gather(
        *(service.merge_section("charts", {f"k{i}": i}) for i in range(20)),
    )
    assert service.get()["charts"] == {f"k{i}": i for i in range(20)}
    assert (await restarted(service)).get()["charts"] == service.get()["charts"]


async def test_replace_stores_the_document_and_answers_the_effective_settings(
    service: SettingsService,
) -> None:
    document = minimal_document(general={"theme": "light"}, apiKeys={"binance": "k"})
    result = await service.replace(document)
    assert service.repository.load() == document
    assert result == effective(document)
    assert result["security"] == contract_defaults()["security"]


async def test_import_answers_the_document_as_saved(service: SettingsService) -> None:
    document = minimal_document(general={"theme": "light"})
    assert await service.import_config(json.dumps(document)) == document
    assert service.get() == effective(document)
    assert await service.import_config(document) == document


@pytest.mark.parametrize("text", ["{", "not json", "[1, 2]", '"text"', "NaN", '{"general": {}}'])
async def test_import_of_bad_text_is_a_format_error(service: SettingsService, text: str) -> None:
    with pytest.raises(InvalidSettingsText):
        await service.import_config(text)
    assert service.repository.load() is None


@pytest.mark.parametrize("config", [{"general": {}}, [1], 5, minimal_document(risk="x")])
async def test_import_of_a_bad_object_is_a_validation_error(
    service: SettingsService, config: object
) -> None:
    with pytest.raises(InvalidSettings) as exc:
        await service.import_config(config)
    assert not isinstance(exc.value, InvalidSettingsText)


async def test_a_failed_save_changes_nothing(
    service: SettingsService, monkeypatch: pytest.MonkeyPatch
) -> None:
    await service.merge_section("general", {"theme": "dark"})
    before = service.get()

    def broken(*_: Any, **__: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(service.repository, "save", broken)
    with pytest.raises(SettingsStorageError):
        await service.merge_section("general", {"theme": "light"})
    with pytest.raises(SettingsStorageError):
        await service.replace(minimal_document())
    with pytest.raises(SettingsStorageError):
        await service.import_config(minimal_document())
    assert service.get() == before


async def test_export_drops_api_keys_unless_sensitive(service: SettingsService) -> None:
    await service.merge_section("apiKeys", {"binance": "secret"})
    plain = json.loads(service.export(include_sensitive=False))
    assert "apiKeys" not in plain
    assert plain == {k: v for k, v in service.get().items() if k != "apiKeys"}
    assert json.loads(service.export(include_sensitive=True)) == service.get()
    assert service.export(True) == json.dumps(service.get(), indent=2)


async def test_an_unreadable_stored_document_falls_back_to_the_defaults(
    service: SettingsService,
) -> None:
    from sqlalchemy import update

    from app.db.settings import GUI_SETTINGS

    await service.merge_section("general", {"theme": "dark"})
    with service.repository.engine.begin() as conn:
        conn.execute(update(GUI_SETTINGS).values(document="[not json"))
    assert (await restarted(service)).get() == contract_defaults()
