from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from app.api.context import audit
from app.api.deps import RuntimeDep, body_doc, read_object_body
from app.api.security import require
from app.auth.permissions import ADMIN_CONFIG, READ_CONFIG
from app.execution.binance.engine import BinanceEngine
from app.schemas.common import error_responses
from app.schemas.system import (
    ConfigChange,
    ConfigChangeResponse,
    ConfigResponse,
    ExecutionPingResponse,
)
from app.services.runtime_config import redacted

router = APIRouter(tags=["config"])


@router.get(
    "/api/config",
    summary="Effective configuration",
    response_model=ConfigResponse,
    responses=error_responses(401, 403, 429),
    dependencies=[Depends(require(READ_CONFIG))],
)
async def get_config(runtime: RuntimeDep) -> ConfigResponse:
    """Market source, symbol, execution mode and auth switch, in the original's key order."""
    settings = runtime.settings
    binance_mode = settings.execution_mode == "binance_testnet_spot"
    venue = runtime.engine if isinstance(runtime.engine, BinanceEngine) else None
    return ConfigResponse(
        market_source=settings.market_source,
        market_symbol=settings.market_symbol,
        binance_base_url=(settings.binance_base_url if settings.market_source != "sim" else None),
        execution_mode=settings.execution_mode,
        binance_trade_enabled=settings.binance_trade_enabled
        or (venue is not None and venue.configured),
        binance_trade_base_url=settings.binance_trade_base_url if binance_mode else None,
        binance_user_stream_connected=venue is not None and venue.stream.connected,
        auth_enabled=settings.auth_enabled,
        effective=redacted(settings),
    )


@router.post(
    "/api/config",
    summary="Change settings at run time",
    response_model=ConfigChangeResponse,
    responses=error_responses(400, 401, 403, 429),
    dependencies=[Depends(require(ADMIN_CONFIG))],
    openapi_extra=body_doc(ConfigChange),
)
async def update_config(request: Request, runtime: RuntimeDep) -> ConfigChangeResponse:
    """Stores the given settings (names as in GET /api/config's `effective`) and applies at
    once those that can be; the answer lists which wait for a restart (F7)."""
    changes = await read_object_body(request, form_allowed=False)
    if not changes:
        return ConfigChangeResponse(ok=True, message="Nothing to change.", applied=[],
                                    restart_required=[])  # fmt: skip
    runtime.settings, outcome = await runtime.config.update(runtime.settings, changes)
    await audit(request, "config", "update_config", {"fields": sorted(changes), **outcome})
    message = (
        "Configuration saved. Restart the gateway for some changes to take effect."
        if outcome["restart_required"]
        else "Configuration saved and applied."
    )
    return ConfigChangeResponse(ok=True, message=message, **outcome)


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
    return ExecutionPingResponse.model_validate(await runtime.engine_ping())
