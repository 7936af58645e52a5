"""The event stream's payloads (contract §5, §6.3), for the OpenAPI document."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

EVENT_TYPES = (
    "engine_started",
    "market",
    "order_update",
    "fill",
    "order_state",
    "account",
    "error",
)


class StreamEventData(BaseModel):
    """The `data:` line of one event: a JSON object whose `type` is also the `event:` name.
    Other fields depend on the type; an external engine may send types not listed here."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {"type": "engine_started", "version": "0.4.0"},
                {"type": "market", "symbol": "BTCUSDT", "ts_ns": 1795490821174999712,
                 "price": 42000.5},
                {"type": "order_update", "ts_ns": 1795490829314797617, "client_order_id": "c1",
                 "venue_order_id": "sim-1", "status": "ACCEPTED", "symbol": "BTCUSDT",
                 "side": "BUY", "qty": 0.002, "price": 50000.0},
                {"type": "fill", "ts_ns": 1795490829314818776, "client_order_id": "c1",
                 "symbol": "BTCUSDT", "qty": 0.001, "price": 50000.0},
                {"type": "account", "ts_ns": 1795490829337507783,
                 "balances": [{"asset": "USDT", "free": 99950.0, "locked": 50.0}]},
                {"type": "error", "ts_ns": 1795490829337507783, "message": "unknown order"},
            ]
        },
    )  # fmt: skip

    type: str = Field(description="One of: " + ", ".join(f"`{t}`" for t in EVENT_TYPES) + ".")


STREAM_EVENT_SCHEMA = {
    "type": "object",
    "description": "One event; the response is an endless sequence of them.",
    "required": ["id", "event", "data"],
    "properties": {
        "id": {
            "type": "string",
            "pattern": "^[0-9]+$",
            "description": "Increases forever, also across restarts; resume after it.",
        },
        "event": {
            "type": "string",
            "description": "The payload's `type`: " + ", ".join(EVENT_TYPES) + ".",
            "examples": list(EVENT_TYPES),
        },
        "data": {
            "type": "string",
            "contentMediaType": "application/json",
            "contentSchema": {"$ref": "#/components/schemas/StreamEventData"},
        },
    },
}
