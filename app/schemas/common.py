"""Shapes shared by every domain: the error body."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

# A positive decimal written as text (forms, environment-style values): no sign but `+`, no
# exponent, not zero.
POSITIVE_DECIMAL_TEXT = (
    r"^\s*\+?(0*[1-9][0-9]*(\.[0-9]*)?|0*\.[0-9]*[1-9][0-9]*|0+\.[0-9]*[1-9][0-9]*)\s*$"
)


class ErrorResponse(BaseModel):
    """Every error: a machine-readable code, optionally a message and details."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "error": "bad_params",
                    "message": "invalid request",
                    "details": [
                        {
                            "field": "qty",
                            "message": "Input should be greater than 0",
                            "type": "greater_than",
                        }
                    ],
                }
            ]
        }
    )

    error: str = Field(description="Stable error code, e.g. `bad_params`, `not_found`.")
    message: str | None = Field(None, description="Human-readable explanation.")
    details: Any = Field(None, description="Extra context, e.g. the fields that failed.")


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The `responses=` entry documenting the error statuses a route can answer."""
    descriptions = {
        400: "Invalid input (`bad_params`, `bad_json`)",
        401: "Not authenticated (`authentication_required`, `invalid_token`, `invalid_api_key`)",
        403: "Not allowed (`forbidden`, `ip_forbidden`)",
        404: "Not found (`not_found`)",
        409: "Conflict with existing state",
        413: "Body larger than VELOZ_MAX_BODY_SIZE (`payload_too_large`)",
        429: "Rate limit exceeded (`rate_limit_exceeded`); see `Retry-After`",
        503: "Engine or storage unavailable (`engine_unavailable`, `storage_unavailable`)",
    }
    return {
        code: {"model": ErrorResponse, "description": descriptions.get(code, "Error")}
        for code in codes
    }
