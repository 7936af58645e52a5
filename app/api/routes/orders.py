from __future__ import annotations

import time
from typing import Annotated, TypeVar

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel, ValidationError

from app.api.context import audit
from app.api.deps import OrderServiceDep, RuntimeDep, body_doc, read_object_body, required_query
from app.api.security import require
from app.auth.permissions import READ_ORDERS, WRITE_CANCEL, WRITE_ORDERS
from app.core.errors import ApiError, validation_details
from app.engine.base import OrderCommand
from app.schemas.common import error_responses
from app.schemas.orders import (
    CancelRequest,
    CancelResponse,
    OrderEventsResponse,
    OrderRequest,
    OrderResponse,
    OrderStateModel,
    OrderStatesResponse,
)

router = APIRouter(tags=["orders"])
M = TypeVar("M", bound=BaseModel)


async def _parse(request: Request, model: type[M]) -> M:
    data = await read_object_body(request, form_allowed=True)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ApiError(
            400, "bad_params", "invalid request", validation_details(exc.errors())
        ) from exc


@router.post(
    "/api/order",
    summary="Place an order",
    response_model=OrderResponse,
    response_model_exclude_none=True,
    responses=error_responses(400, 401, 403, 409, 413, 429, 503),
    dependencies=[Depends(require(WRITE_ORDERS))],
    openapi_extra=body_doc(OrderRequest, form=True),
)
async def place_order(
    request: Request, runtime: RuntimeDep, orders: OrderServiceDep
) -> OrderResponse:
    """Submit a limit or market order. The answer comes once the order is stored durably.

    Retrying with the same `client_order_id` and the same parameters returns the first
    result and creates nothing; different parameters answer `409 duplicate_client_order_id`.
    An order the engine refuses (e.g. `insufficient_funds`) answers 200 with `ok: false`.
    """
    body = await _parse(request, OrderRequest)
    command = OrderCommand(
        client_order_id=body.client_order_id or orders.default_client_order_id(),
        symbol=body.symbol or runtime.settings.market_symbol,
        side=body.side,
        qty=body.qty,
        price=body.price,
        order_type=body.order_type,
        time_in_force=body.time_in_force,
    )
    details = {
        "client_order_id": command.client_order_id, "symbol": command.symbol,
        "side": command.side, "qty": str(command.qty),
        "price": None if command.price is None else str(command.price),
        "order_type": command.order_type, "time_in_force": command.time_in_force,
    }  # fmt: skip
    started = time.perf_counter()
    try:
        result = await orders.place(command)
    except ApiError as exc:
        await audit(request, "order", "place_order", {**details, "ok": False, "error": exc.code})
        raise
    if result.ok and not result.replayed:
        metrics = runtime.metrics
        metrics.order_latency.observe(time.perf_counter() - started)
        metrics.orders.labels(side=command.side, type=command.order_type).inc()
    await audit(request, "order", "place_order", {**details, "ok": result.ok,
                "status": result.status, "error": result.error})  # fmt: skip
    return OrderResponse(
        ok=result.ok,
        client_order_id=result.client_order_id,
        venue_order_id=result.venue_order_id,
        status=result.status,
        error=result.error,
        message=result.message,
        details=result.details,
    )


@router.post(
    "/api/cancel",
    summary="Cancel an order",
    response_model=CancelResponse,
    response_model_exclude_none=True,
    responses=error_responses(400, 401, 403, 404, 409, 413, 429, 503),
    dependencies=[Depends(require(WRITE_CANCEL))],
    openapi_extra=body_doc(CancelRequest, form=True),
)
async def cancel_order(request: Request, orders: OrderServiceDep) -> CancelResponse:
    """Cancel an open order; what it reserved is released. Unknown ids answer 404."""
    body = await _parse(request, CancelRequest)
    details = {"client_order_id": body.client_order_id, "symbol": body.symbol}
    try:
        result = await orders.cancel(body.client_order_id, body.symbol)
    except ApiError as exc:
        await audit(request, "order", "cancel_order", {**details, "ok": False, "error": exc.code})
        raise
    outcome = {"ok": True} if result.ok else {"ok": False, "error": result.error}
    await audit(request, "order", "cancel_order", {**details, **outcome})
    return CancelResponse(
        ok=result.ok,
        client_order_id=result.client_order_id,
        status=result.status,
        error=result.error,
        details=result.details,
    )


@router.get(
    "/api/orders",
    summary="Recent order events",
    response_model=OrderEventsResponse,
    responses=error_responses(401, 403, 429),
    dependencies=[Depends(require(READ_ORDERS))],
)
async def list_order_events(runtime: RuntimeDep) -> Response:
    """The last 200 order-related events (`order_update`, `fill`, ...), oldest first."""
    items = ",".join(event.with_id_json() for event in runtime.history.events())
    return Response(f'{{"items":[{items}]}}', media_type="application/json")


@router.get(
    "/api/orders_state",
    summary="All order states",
    response_model=OrderStatesResponse,
    responses=error_responses(401, 403, 429),
    dependencies=[Depends(require(READ_ORDERS))],
)
async def list_order_states(runtime: RuntimeDep) -> OrderStatesResponse:
    """Every order the gateway knows, in the order it first saw them."""
    return OrderStatesResponse.model_validate(
        {"items": [order.to_public() for order in runtime.state.orders]}
    )


@router.get(
    "/api/order_state",
    summary="One order's state",
    response_model=OrderStateModel,
    responses=error_responses(400, 401, 403, 404, 429),
    dependencies=[Depends(require(READ_ORDERS))],
)
async def get_order_state(
    runtime: RuntimeDep,
    client_order_id: Annotated[
        str | None, required_query("The order's client id.", minLength=1, maxLength=64)
    ] = None,
) -> OrderStateModel:
    """The 12-field state of one order. A missing or blank id answers 400, an unknown one 404."""
    cid = (client_order_id or "").strip()
    if not cid:
        raise ApiError(400, "bad_params", "client_order_id is required")
    order = runtime.state.orders.get(cid)
    if order is None:
        raise ApiError(404, "not_found", f"no order with client_order_id {cid!r}")
    return OrderStateModel.model_validate(order.to_public())
