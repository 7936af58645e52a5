from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from app.api.deps import RuntimeDep
from app.api.security import require
from app.auth.permissions import READ_ACCOUNT, READ_MARKET
from app.core.errors import ApiError
from app.schemas.common import error_responses
from app.schemas.market import AccountResponse, MarketResponse

router = APIRouter(tags=["market"])


@router.get(
    "/api/market",
    summary="Latest market price",
    response_model=MarketResponse,
    responses=error_responses(401, 403, 404, 429),
    dependencies=[Depends(require(READ_MARKET))],
)
async def get_market(
    runtime: RuntimeDep,
    symbol: Annotated[
        str | None, Query(description="A configured symbol; defaults to VELOZ_MARKET_SYMBOL.")
    ] = None,
) -> MarketResponse:
    """The last price and its time for one symbol; `price` is null before the first tick."""
    settings = runtime.settings
    wanted = (symbol or settings.market_symbol).strip().upper()
    if wanted not in settings.market_symbols:
        raise ApiError(
            404,
            "not_found",
            f"unknown symbol {wanted!r}",
            details={"symbols": settings.market_symbols},
        )
    quote = runtime.state.market.get(wanted)
    if quote is None:
        return MarketResponse(symbol=wanted, price=None, ts_ns=None)
    return MarketResponse.model_validate(quote.to_public())


account_router = APIRouter(tags=["account"])


@account_router.get(
    "/api/account",
    summary="Account balances",
    response_model=AccountResponse,
    responses=error_responses(401, 403, 429),
    dependencies=[Depends(require(READ_ACCOUNT))],
)
async def get_account(runtime: RuntimeDep) -> AccountResponse:
    """Free and locked (reserved by open orders) balance of every asset."""
    return AccountResponse.model_validate(runtime.state.account.snapshot())
