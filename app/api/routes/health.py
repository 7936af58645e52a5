from __future__ import annotations

from fastapi import APIRouter

from app.api.deps import RuntimeDep
from app.schemas.system import ApiHealthResponse, EngineHealth, HealthResponse

router = APIRouter(tags=["health"])


@router.get("/health", summary="Liveness", response_model=HealthResponse)
async def get_health() -> HealthResponse:
    """Answers while the process serves HTTP. No auth, no rate limit."""
    return HealthResponse(ok=True)


@router.get("/api/health", summary="Engine health", response_model=ApiHealthResponse)
async def get_engine_health(runtime: RuntimeDep) -> ApiHealthResponse:
    """`engine.connected` is false while the engine cannot take orders."""
    return ApiHealthResponse(ok=True, engine=EngineHealth(connected=runtime.engine.connected))
