"""Exchange-key shapes (contract §4.14), in the original's camelCase. Secrets never appear in
an answer."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

# The handlers strip text before checking it, so required text must hold a non-blank character.
NOT_BLANK = r"\S"
MAX_NAME = 255
MAX_SECRET = 1024
Exchange = Literal["binance", "binance_futures", "okx", "bybit", "coinbase"]


class ExchangeKeyPublic(BaseModel):
    id: str
    exchange: str
    name: str
    permissions: list[str]
    createdAt: str = Field(description="ISO 8601, UTC.")
    lastUsed: str | None = Field(description="Last successful connection test or activation.")
    status: str
    testnet: bool


class ExchangeKeyList(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "keys": [
                        {"id": "d36167f5-d27d-4950-9144-595b07d842e2", "exchange": "binance",
                         "name": "main", "permissions": ["read", "trade"],
                         "createdAt": "2026-11-24T03:28:01.617751+00:00", "lastUsed": None,
                         "status": "active", "testnet": True}
                    ]
                }
            ]
        }
    )  # fmt: skip

    keys: list[ExchangeKeyPublic]


class ExchangeKeyCreate(BaseModel):
    """`exchange`, `apiKey` and `apiSecret` are required; `passphrase` for okx. Text is
    stripped; `exchange` is lower-cased."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [{"exchange": "binance", "apiKey": "...", "apiSecret": "...",
                          "name": "main", "testnet": True}],
            "if": {"properties": {"exchange": {"const": "okx"}}, "required": ["exchange"]},
            "then": {"required": ["passphrase"],
                     "properties": {"passphrase": {"type": "string", "pattern": NOT_BLANK}}},
        },
    )  # fmt: skip

    exchange: Exchange
    apiKey: str = Field(pattern=NOT_BLANK, max_length=MAX_SECRET)
    apiSecret: str = Field(pattern=NOT_BLANK, max_length=MAX_SECRET)
    name: str = Field("Default", max_length=MAX_NAME, description="Blank means `Default`.")
    testnet: bool = True
    passphrase: str | None = Field(None, max_length=MAX_SECRET)


class ExchangeKeyCreated(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"ok": True, "keyId": "d36167f5-d27d-4950-9144-595b07d842e2",
                          "message": "API key stored securely"}]
        }
    )  # fmt: skip

    ok: bool = True
    keyId: str
    message: str = "API key stored securely"


class ExchangeKeyDeleted(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"ok": True, "keyId": "d36167f5-d27d-4950-9144-595b07d842e2"}]
        }
    )

    ok: bool = True
    keyId: str


class ExchangeKeyTest(BaseModel):
    """Either `keyId` (a stored key) or `exchange`, `apiKey`, `apiSecret` (and `testnet`,
    `passphrase`); `keyId` wins when both are given."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {"keyId": "d36167f5-d27d-4950-9144-595b07d842e2"},
                {"exchange": "binance", "apiKey": "...", "apiSecret": "...", "testnet": True},
            ],
            "anyOf": [
                {"required": ["keyId"],
                 "properties": {"keyId": {"type": "string", "pattern": NOT_BLANK}}},
                {"required": ["exchange", "apiKey", "apiSecret"],
                 "properties": {name: {"type": "string", "pattern": NOT_BLANK}
                                for name in ("exchange", "apiKey", "apiSecret")}},
            ],
        },
    )  # fmt: skip

    keyId: str | None = None
    exchange: str | None = Field(None, description="Any name; only `binance` is tested for real.")
    apiKey: str | None = None
    apiSecret: str | None = None
    testnet: bool = True
    passphrase: str | None = None


class ConnectionTestResult(BaseModel):
    """HTTP 200 even when the test failed: `success` and `error` say how it went."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"success": True, "exchange": "binance", "permissions": ["read", "spot"],
                 "balanceAvailable": True, "latencyMs": 42, "error": None, "warnings": [],
                 "balance": {"USDT": 10000.0}}
            ]
        }
    )  # fmt: skip

    success: bool
    exchange: str
    permissions: list[str]
    balanceAvailable: bool
    latencyMs: int
    error: str | None
    warnings: list[str]
    balance: dict[str, float] | None
