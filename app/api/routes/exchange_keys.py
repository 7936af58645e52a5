"""Exchange API keys (contract §4.14). Guards as the original's defaults: reading needs
read:config, changing or testing needs write:orders. Secrets are accepted, never returned."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from app.api.context import audit
from app.api.deps import body_doc, read_object_body, required_query
from app.api.security import require
from app.auth.permissions import READ_CONFIG, WRITE_ORDERS
from app.core.errors import ApiError
from app.schemas.common import error_responses
from app.schemas.exchange_keys import (
    NOT_BLANK,
    ConnectionTestResult,
    ExchangeKeyCreate,
    ExchangeKeyCreated,
    ExchangeKeyDeleted,
    ExchangeKeyList,
    ExchangeKeyTest,
)
from app.services.exchange_keys import ExchangeKeyService

router = APIRouter(tags=["exchange-keys"])


def _service(request: Request) -> ExchangeKeyService:
    service: ExchangeKeyService = request.app.state.runtime.exchange_keys
    return service


@router.get(
    "/api/exchange-keys",
    summary="List exchange API keys",
    response_model=ExchangeKeyList,
    responses=error_responses(401, 403, 429),
    dependencies=[Depends(require(READ_CONFIG))],
)
async def list_exchange_keys(request: Request) -> ExchangeKeyList:
    """Every stored key, oldest first, without its key or secret."""
    return ExchangeKeyList.model_validate({"keys": await _service(request).list_keys()})


@router.post(
    "/api/exchange-keys",
    summary="Store an exchange API key",
    status_code=201,
    response_model=ExchangeKeyCreated,
    responses=error_responses(400, 401, 403, 429, 500),
    dependencies=[Depends(require(WRITE_ORDERS))],
    openapi_extra=body_doc(ExchangeKeyCreate),
)
async def create_exchange_key(request: Request) -> ExchangeKeyCreated:
    """Stores the key and secret encrypted. In Binance mode a `binance` key is used for
    trading at once (the user-data stream is started or re-subscribed with it)."""
    body = await read_object_body(request, form_allowed=False)
    key_id = await _service(request).create(body)
    details = {"keyId": key_id, "exchange": str(body.get("exchange", "")).strip().lower(),
               "name": body.get("name"), "testnet": body.get("testnet", True)}  # fmt: skip
    await audit(request, "api_key", "create_exchange_key", details)
    return ExchangeKeyCreated(keyId=key_id)


@router.delete(
    "/api/exchange-keys",
    summary="Delete an exchange API key",
    response_model=ExchangeKeyDeleted,
    responses=error_responses(400, 401, 403, 404, 429, 500),
    dependencies=[Depends(require(WRITE_ORDERS))],
)
async def delete_exchange_key(
    request: Request,
    key_id: Annotated[
        str | None, required_query("The key's id (`keyId` also works).", pattern=NOT_BLANK)
    ] = None,
    keyId: Annotated[
        str | None, Query(description="Same as `key_id`, the original's spelling.", deprecated=True)
    ] = None,
) -> ExchangeKeyDeleted:
    """Deletes the stored key named by `key_id` (or `keyId`); `400 bad_params` without one,
    `404 not_found` for an unknown id."""
    wanted = (key_id or keyId or "").strip()
    if not wanted:
        raise ApiError(400, "bad_params", "key_id is required")
    await _service(request).delete(wanted)
    await audit(request, "api_key", "delete_exchange_key", {"keyId": wanted})
    return ExchangeKeyDeleted(keyId=wanted)


@router.post(
    "/api/exchange-keys/test",
    summary="Test an exchange API key",
    response_model=ConnectionTestResult,
    responses=error_responses(400, 401, 403, 404, 429, 500),
    dependencies=[Depends(require(WRITE_ORDERS))],
    openapi_extra=body_doc(ExchangeKeyTest),
)
async def test_exchange_key(request: Request) -> ConnectionTestResult:
    """Asks the configured venue what the key may do and holds, and how fast it answers.
    HTTP 200 even when the test fails; a key that may withdraw fails it."""
    body = await read_object_body(request, form_allowed=False)
    outcome = await _service(request).test(body)
    await audit(request, "api_key", "test_exchange_key",
                {"keyId": body.get("keyId"), "exchange": outcome["exchange"],
                 "success": outcome["success"], "error": outcome["error"]})  # fmt: skip
    return ConnectionTestResult.model_validate(outcome)
