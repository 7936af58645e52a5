"""Health, configuration and execution-ping shapes."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.schemas.common import POSITIVE_DECIMAL_TEXT


class HealthResponse(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"ok": True}]})

    ok: bool = Field(True, examples=[True])


class EngineHealth(BaseModel):
    connected: bool = Field(description="True while the engine can take orders.")


class ApiHealthResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"ok": True, "engine": {"connected": True}}]}
    )

    ok: bool
    engine: EngineHealth


class ConfigResponse(BaseModel):
    """The effective configuration, in the original gateway's key order (contract §4.2)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "market_source": "sim",
                    "market_symbol": "BTCUSDT",
                    "binance_base_url": None,
                    "execution_mode": "sim_engine",
                    "binance_trade_enabled": False,
                    "binance_trade_base_url": None,
                    "binance_user_stream_connected": False,
                    "auth_enabled": False,
                }
            ]
        }
    )

    market_source: Literal["sim", "binance_rest", "binance_ws"]
    market_symbol: str
    binance_base_url: str | None
    execution_mode: Literal["sim_engine", "binance_testnet_spot"]
    binance_trade_enabled: bool
    binance_trade_base_url: str | None
    binance_user_stream_connected: bool
    auth_enabled: bool
    effective: dict[str, Any] = Field(
        default_factory=dict,
        description="Every setting in effect (environment, file and run-time changes); "
        "secrets only show whether they are set.",
    )


def _changeable_settings(schema: dict[str, Any]) -> None:
    """Document exactly the settings POST /api/config accepts, with the JSON types it takes:
    lists also as comma-separated text and positive decimals also as text, as in the
    environment; any other name answers 400."""
    from app.core.config import Settings
    from app.services.runtime_config import ACCEPTED_FIELDS, LIVE_FIELDS

    settings = Settings.model_json_schema()["properties"]
    properties: dict[str, Any] = {}
    for name in sorted(ACCEPTED_FIELDS):
        prop = {k: v for k, v in settings[name].items() if k not in ("default", "title")}
        branches = prop.pop("anyOf", None)
        if branches:  # a decimal: a number, or text when it only has to be positive
            number = branches[0]
            prop.update(number)
            if number.get("exclusiveMinimum") == 0 and "maximum" not in number:
                prop = {"anyOf": [number, {"type": "string", "pattern": POSITIVE_DECIMAL_TEXT}]}
        if prop.get("type") == "array":
            prop = {"anyOf": [prop, {"type": "string", "description": "Comma-separated."}]}
        if name == "audit_retention":
            prop["additionalProperties"] = {"type": "integer", "minimum": 1}
        when = "applied at once" if name in LIVE_FIELDS else "used from the next start"
        prop["description"] = f"VELOZ_{name.upper()}; {when}."
        properties[name] = prop
    schema["properties"] = properties
    schema["additionalProperties"] = False
    schema["examples"] = [{"rate_limit_capacity": 50, "log_level": "debug"}]


class ConfigChange(BaseModel):
    """Settings to change, by name (as in GET /api/config's `effective`). Live settings apply
    at once; the others are stored and used from the next start."""

    model_config = ConfigDict(extra="allow", json_schema_extra=_changeable_settings)


class ConfigChangeResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"ok": True, "message": "Configuration saved and applied.",
                 "applied": ["rate_limit_capacity"], "restart_required": []}
            ]
        }
    )  # fmt: skip

    ok: bool
    message: str
    applied: list[str] = Field(description="Changed on the running gateway.")
    restart_required: list[str] = Field(description="Stored; used from the next start.")


class ExecutionPingResponse(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"ok": True}]})

    ok: bool
    error: str | None = None
    result: Any = None
    details: dict[str, Any] | None = Field(
        None,
        description="Venue mode: request weight used and budget, 429/418 back-off, clock "
        "offset, user-data stream state.",
    )
