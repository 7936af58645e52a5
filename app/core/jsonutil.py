"""JSON at the edge: Decimals inside the gateway become plain JSON numbers on the wire."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def dumps(value: Any) -> str:
    """Compact JSON text; Decimal values are written as numbers."""
    return orjson.dumps(value, default=_default).decode()


def dumps_bytes(value: Any) -> bytes:
    return orjson.dumps(value, default=_default)


def loads(text: str | bytes) -> Any:
    return orjson.loads(text)


def to_decimal(value: Any) -> Decimal | None:
    """A number from an event (float, int, str or Decimal) as a Decimal; None when absent or bad."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, Decimal):
        return value
    try:
        result = Decimal(str(value))
    except ArithmeticError:
        return None
    return result if result.is_finite() else None


def plain_decimal(value: Decimal) -> str:
    """A decimal written without an exponent: 0.00001, never 1E-5."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"
