"""Order, cancel and order-state shapes."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from pydantic.config import JsonDict

from app.schemas.common import POSITIVE_DECIMAL_TEXT

ClientOrderId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=64,
        pattern=r"^[!-~]+$",
        description="Your id for the order: printable ASCII, no spaces, at most 64 characters.",
    ),
]
# A positive decimal, as a JSON number or as text (forms, and JSON clients that send strings).
Positive = Annotated[
    Decimal,
    Field(
        gt=0,
        allow_inf_nan=False,
        json_schema_extra={
            "anyOf": [
                {"type": "number", "exclusiveMinimum": 0},
                {"type": "string", "pattern": POSITIVE_DECIMAL_TEXT},
            ]
        },
    ),
]
SYMBOL_PATTERN = r"^[A-Za-z0-9]+$"


class OrderRequest(BaseModel):
    """A new order. Sent as JSON or as a form (`application/x-www-form-urlencoded`)."""

    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={
            # A limit order (the default type) needs a price; a market order ignores it.
            "if": {"properties": {"order_type": {"const": "market"}}, "required": ["order_type"]},
            "then": {},
            "else": {"required": ["price"], "properties": {"price": {"not": {"type": "null"}}}},
            "examples": [
                {
                    "side": "BUY",
                    "symbol": "BTCUSDT",
                    "qty": 0.001,
                    "price": 41000.0,
                    "client_order_id": "my-order-1",
                },
                {"side": "SELL", "symbol": "BTCUSDT", "qty": 0.5, "order_type": "market"},
            ],
        },
    )

    side: Literal["BUY", "SELL"] = Field("BUY", description="`BUY` or `SELL`, any case.")
    symbol: str | None = Field(
        None,
        max_length=20,
        pattern=SYMBOL_PATTERN,
        description="Letters and digits; defaults to the configured VELOZ_MARKET_SYMBOL.",
    )
    qty: Positive = Field(description="Quantity in the base asset; must be > 0.")
    order_type: Literal["limit", "market"] = "limit"
    time_in_force: Literal["GTC", "IOC", "FOK"] = "GTC"
    price: Positive | None = Field(
        None,
        validate_default=True,
        description="Limit price; required for limit orders, ignored for market orders.",
    )
    client_order_id: ClientOrderId | None = Field(
        None, description="Defaults to `web-<epoch ms>`. Retrying with the same id is safe."
    )

    @field_validator("side", "time_in_force", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("symbol", mode="before")
    @classmethod
    def _symbol_upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("order_type", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("symbol")
    @classmethod
    def _symbol(cls, value: str | None) -> str | None:
        if value is not None and not value.isalnum():
            raise ValueError("symbol must be letters and digits, e.g. BTCUSDT")
        return value or None

    @field_validator("price")
    @classmethod
    def _price_for_limit(cls, value: Decimal | None, info: ValidationInfo) -> Decimal | None:
        order_type = info.data.get("order_type")
        if order_type == "market":
            return None
        if value is None and order_type == "limit":
            raise ValueError("price is required for limit orders")
        return value


class CancelRequest(BaseModel):
    """Cancel an open order. Sent as JSON or as a form."""

    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={"examples": [{"client_order_id": "my-order-1"}]},
    )

    client_order_id: ClientOrderId
    symbol: str | None = Field(None, max_length=20, description="Informational in the simulator.")

    @field_validator("client_order_id", "symbol", mode="before")
    @classmethod
    def _strip(cls, value: Any) -> Any:
        return value.strip() or None if isinstance(value, str) else value

    @field_validator("symbol")
    @classmethod
    def _symbol(cls, value: str | None) -> str | None:
        return value.upper() if value else None


class OrderResponse(BaseModel):
    """The answer to an order. `ok` is false when the engine or venue refused it."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "ok": True,
                    "client_order_id": "my-order-1",
                    "venue_order_id": "sim-1",
                    "status": "ACCEPTED",
                },
                {
                    "ok": False,
                    "client_order_id": "my-order-2",
                    "status": "REJECTED",
                    "error": "insufficient_funds",
                    "message": "the order was rejected: insufficient_funds",
                },
            ]
        }
    )

    ok: bool
    client_order_id: str
    venue_order_id: str | None = None
    status: str | None = Field(None, description="Order status right after submission.")
    error: str | None = Field(None, description="Why the order was refused.")
    message: str | None = None
    details: Any = None


class CancelResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"ok": True, "client_order_id": "my-order-1", "status": "CANCELLED"}]
        }
    )

    ok: bool
    client_order_id: str
    status: str | None = None
    error: str | None = Field(None, description="`binance_error` when the venue refused.")
    details: Any = Field(None, description="The venue's answer when it refused.")


ORDER_STATE_EXAMPLE: JsonDict = {
    "client_order_id": "c1", "symbol": "BTCUSDT", "side": "BUY", "order_type": "limit",
    "order_qty": 0.002, "limit_price": 50000.0, "venue_order_id": "sim-1",
    "status": "PARTIALLY_FILLED", "reason": None, "executed_qty": 0.001, "avg_price": 50000.0,
    "last_ts_ns": 1795490829314818776,
}  # fmt: skip


class OrderStateModel(BaseModel):
    """An order's folded state: always these 12 fields, in this order."""

    model_config = ConfigDict(json_schema_extra={"examples": [ORDER_STATE_EXAMPLE]})

    client_order_id: str
    symbol: str | None
    side: str | None
    order_type: str | None
    order_qty: float | None
    limit_price: float | None
    venue_order_id: str | None
    status: str | None = Field(
        description="PENDING, ACCEPTED, PARTIALLY_FILLED, FILLED, CANCELLED, REJECTED, EXPIRED"
    )
    reason: str | None
    executed_qty: float
    avg_price: float | None = Field(description="Volume-weighted average fill price.")
    last_ts_ns: int | None


class OrderStatesResponse(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"items": [ORDER_STATE_EXAMPLE]}]})

    items: list[OrderStateModel]


class OrderEventsResponse(BaseModel):
    """The last 200 order-related events, oldest first, each with its stream id `_id`."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": [
                        {
                            "type": "order_update",
                            "ts_ns": 1795490829314797617,
                            "client_order_id": "c1",
                            "venue_order_id": "sim-1",
                            "status": "ACCEPTED",
                            "symbol": "BTCUSDT",
                            "side": "BUY",
                            "qty": 0.002,
                            "price": 50000.0,
                            "_id": 20,
                        }
                    ]
                }
            ]
        }
    )

    items: list[dict[str, Any]]
