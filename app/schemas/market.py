"""Market data and account shapes."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class MarketResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"symbol": "BTCUSDT", "price": 42003.5, "ts_ns": 1795490824177642764}]
        }
    )

    symbol: str
    price: float | None = Field(description="Last price; null before the first tick.")
    ts_ns: int | None = Field(description="Time of the last tick, UTC epoch nanoseconds.")


class BalanceModel(BaseModel):
    asset: str
    free: float
    locked: float = Field(description="Reserved by open orders.")


class AccountResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "ts_ns": 1795490829337507783,
                    "balances": [
                        {"asset": "USDT", "free": 99950.0, "locked": 50.0},
                        {"asset": "BTC", "free": 0.0, "locked": 0.0},
                    ],
                }
            ]
        }
    )

    ts_ns: int | None
    balances: list[BalanceModel]
