"""Health, configuration and execution-ping shapes."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class HealthResponse(BaseModel):
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


class ConfigChange(BaseModel):
    """Settings to change, by name, e.g. `{"rate_limit_capacity": 50}`."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={"examples": [{"rate_limit_capacity": 50, "log_level": "debug"}]},
    )


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
