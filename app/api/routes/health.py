from __future__ import annotations

from fastapi import APIRouter, Depends

from app.api.deps import RuntimeDep
from app.api.security import public, public_rate_limited
from app.schemas.common import error_responses
from app.schemas.system import ApiHealthResponse, EngineHealth, HealthResponse

router = APIRouter(tags=["health"])


@router.get(
    "/health", summary="Liveness", response_model=HealthResponse, dependencies=[Depends(public)]
)
async def get_health() -> HealthResponse:
    """Answers while the process serves HTTP. No auth, no rate limit."""
    return HealthResponse(ok=True)


@router.get(
    "/api/health",
    summary="Engine health",
    response_model=ApiHealthResponse,
    dependencies=[Depends(public_rate_limited)],
    responses=error_responses(429),
)
async def get_engine_health(runtime: RuntimeDep) -> ApiHealthResponse:
    """`engine.connected` is false while the engine cannot take orders."""
    return ApiHealthResponse(ok=True, engine=EngineHealth(connected=runtime.engine_connected))
