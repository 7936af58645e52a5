"""Request signing as the venue specifies: sorted parameters, hex HMAC-SHA256, signature last."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from urllib.parse import urlencode

from app.core.jsonutil import plain_decimal

ParamValue = str | int | Decimal | bool


@dataclass(frozen=True, slots=True)
class Credentials:
    api_key: str
    api_secret: str = field(repr=False)

    @property
    def usable(self) -> bool:
        return bool(self.api_key and self.api_secret)


def wire_value(value: ParamValue) -> str:
    """Parameters as the venue expects them: decimals plain (0.00001, never 1e-05), booleans
    lower-case."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return plain_decimal(value)
    if isinstance(value, float):
        return plain_decimal(Decimal(repr(value)))
    return str(value)


def query_string(params: Mapping[str, ParamValue]) -> str:
    """Parameters sorted by name and url-encoded."""
    return urlencode(sorted((name, wire_value(value)) for name, value in params.items()))


def signature(secret: str, payload: str) -> str:
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def signed_query(
    params: Mapping[str, ParamValue], secret: str, timestamp_ms: int, recv_window_ms: int
) -> str:
    """The full query of a signed call: params + timestamp + recvWindow, sorted, then
    `&signature=<hex HMAC-SHA256 of everything before it>`."""
    payload = query_string({**params, "timestamp": timestamp_ms, "recvWindow": recv_window_ms})
    return f"{payload}&signature={signature(secret, payload)}"


def signed_ws_params(
    credentials: Credentials, timestamp_ms: int, recv_window_ms: int
) -> dict[str, str | int]:
    """Params of a signed WebSocket API request (e.g. `userDataStream.subscribe.signature`):
    the signature covers every other parameter, sorted, as a query string."""
    params: dict[str, str | int] = {
        "apiKey": credentials.api_key,
        "recvWindow": recv_window_ms,
        "timestamp": timestamp_ms,
    }
    params["signature"] = signature(credentials.api_secret, query_string(params))
    return params
