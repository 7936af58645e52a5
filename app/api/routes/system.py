from __future__ import annotations

from fastapi import APIRouter, Depends

from app.api.deps import RuntimeDep, SettingsDep
from app.api.security import require
from app.auth.permissions import READ_CONFIG
from app.schemas.common import error_responses
from app.schemas.system import ConfigResponse, ExecutionPingResponse

router = APIRouter(tags=["config"])


@router.get(
    "/api/config",
    summary="Effective configuration",
    response_model=ConfigResponse,
    responses=error_responses(401, 403, 429),
    dependencies=[Depends(require(READ_CONFIG))],
)
async def get_config(settings: SettingsDep) -> ConfigResponse:
    """Market source, symbol, execution mode and auth switch, in the original's key order."""
    binance_mode = settings.execution_mode == "binance_testnet_spot"
    return ConfigResponse(
        market_source=settings.market_source,
        market_symbol=settings.market_symbol,
        binance_base_url=(
            settings.binance_base_url if settings.market_source == "binance_rest" else None
        ),
        execution_mode=settings.execution_mode,
        binance_trade_enabled=settings.binance_trade_enabled,
        binance_trade_base_url=settings.binance_trade_base_url if binance_mode else None,
        binance_user_stream_connected=False,
        auth_enabled=settings.auth_enabled,
    )


execution_router = APIRouter(tags=["execution"])


@execution_router.get(
    "/api/execution/ping",
    responses=error_responses(401, 403, 429),
    dependencies=[Depends(require(READ_CONFIG))],
    summary="Ping the execution venue",
    response_model=ExecutionPingResponse,
    response_model_exclude_none=True,
)
async def ping_execution(runtime: RuntimeDep) -> ExecutionPingResponse:
    """`{"ok": true}` when the engine or venue answers."""
    return ExecutionPingResponse.model_validate(await runtime.engine.ping())
