"""Order rules: defaults, idempotent submission, durable acknowledgement, cancels."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, replace
from typing import Any

from app.core.errors import ApiError
from app.core.jsonutil import plain_decimal
from app.db.writer import StateWriter, StorageUnavailable
from app.engine.base import Engine, EngineUnavailable, OrderCommand, VenueNotConfigured
from app.state.orders import OrderState, OrderStore


@dataclass(frozen=True, slots=True)
class OrderResult:
    ok: bool
    client_order_id: str
    venue_order_id: str | None = None
    status: str | None = None
    error: str | None = None
    message: str | None = None
    replayed: bool = False  # an idempotent retry: nothing new was created
    details: Any = None  # the venue's answer when it refused, or when the outcome is unknown


@dataclass(frozen=True, slots=True)
class CancelResult:
    ok: bool
    client_order_id: str
    status: str | None
    error: str | None = None
    details: Any = None


def fingerprint(command: OrderCommand) -> str:
    """What makes two submissions "the same order" for idempotent retries."""
    price = "" if command.price is None else plain_decimal(command.price)
    return "|".join(
        (
            command.side,
            command.symbol,
            plain_decimal(command.qty),
            price,
            command.order_type,
            command.time_in_force,
        )
    )


UNKNOWN_OUTCOME = "execution_status_unknown"


def _result(
    cid: str,
    accepted: bool,
    venue_order_id: str | None,
    status: str | None,
    reason: str | None,
    details: Any = None,
) -> OrderResult:
    if accepted:
        return OrderResult(True, cid, venue_order_id, status)
    reason = reason or "rejected"
    message = f"the order was rejected: {reason}"
    if reason == UNKNOWN_OUTCOME:
        message = "the venue did not confirm the order; its state is being reconciled"
    return OrderResult(
        False, cid, venue_order_id, status, error=reason, message=message, details=details
    )


def _result_of(order: OrderState) -> OrderResult:
    """The answer to a retry, rebuilt from what the order is now."""
    return _result(
        order.client_order_id,
        order.status not in ("REJECTED", "UNKNOWN"),
        order.venue_order_id,
        order.status,
        order.reason,
    )


def _unavailable(exc: Exception) -> ApiError:
    if isinstance(exc, StorageUnavailable):
        return ApiError(503, "storage_unavailable", str(exc), headers={"Retry-After": "1"})
    return ApiError(
        503, "engine_unavailable", str(exc) or "engine unavailable", headers={"Retry-After": "1"}
    )


class OrderService:
    def __init__(self, engine: Engine, orders: OrderStore, writer: StateWriter) -> None:
        self._engine = engine
        self._orders = orders
        self._writer = writer
        self._inflight: dict[str, asyncio.Future[None]] = {}

    def default_client_order_id(self) -> str:
        """`web-<epoch ms>`, made unique: a client that sent no id cannot be retrying."""
        base = f"web-{int(time.time() * 1000)}"
        candidate, n = base, 1
        while self._orders.get(candidate) is not None or candidate in self._inflight:
            n += 1
            candidate = f"{base}-{n}"
        return candidate

    async def place(self, command: OrderCommand) -> OrderResult:
        cid = command.client_order_id
        wanted = fingerprint(command)
        pending = self._inflight.get(cid)
        if pending is not None:
            await asyncio.shield(pending)
        existing = self._orders.get(cid)
        if existing is not None:
            if existing.request_fingerprint != wanted:
                raise ApiError(
                    409,
                    "duplicate_client_order_id",
                    f"client_order_id {cid!r} was already used for a different order",
                )
            await self._durable()
            return replace(_result_of(existing), replayed=True)

        if not self._engine.connected:
            raise _unavailable(EngineUnavailable("the engine is not connected"))
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._inflight[cid] = done
        try:
            try:
                ack = await self._engine.place_order(command)
            except EngineUnavailable as exc:
                raise _unavailable(exc) from exc
            except VenueNotConfigured as exc:
                raise ApiError(400, "binance_not_configured", str(exc)) from exc
            order = self._orders.note_order_params(
                cid,
                symbol=command.symbol,
                side=command.side,
                qty=command.qty,
                price=command.price,
                order_type=command.order_type,
                time_in_force=command.time_in_force,
                fingerprint=wanted,
            )
            if order.status is None and ack.status is not None:
                order.status = ack.status
            self._writer.notify()
            await self._durable()
        finally:
            del self._inflight[cid]
            done.set_result(None)
        return _result(cid, ack.accepted, ack.venue_order_id, ack.status, ack.reason, ack.details)

    async def cancel(self, client_order_id: str, symbol: str | None) -> CancelResult:
        order = self._orders.get(client_order_id)
        if order is None:
            raise ApiError(404, "not_found", f"no order with client_order_id {client_order_id!r}")
        if not order.is_open:
            raise ApiError(
                409,
                "order_not_open",
                f"order {client_order_id!r} is {order.status or 'not open'} and cannot be "
                "cancelled",
            )
        try:
            ack = await self._engine.cancel_order(client_order_id, symbol or order.symbol)
        except EngineUnavailable as exc:
            raise _unavailable(exc) from exc
        except VenueNotConfigured as exc:
            raise ApiError(400, "binance_not_configured", str(exc)) from exc
        await self._durable()
        if not ack.cancelled and ack.details is not None:
            # K11: the venue refused (or did not answer); HTTP 200 with its answer. F8: the
            # order's state is left as it was.
            return CancelResult(False, client_order_id, None, ack.reason, ack.details)
        if not ack.cancelled:
            raise ApiError(
                409,
                "order_not_open",
                f"order {client_order_id!r} could not be cancelled: {ack.reason}",
            )
        return CancelResult(ok=True, client_order_id=client_order_id, status=ack.status)

    async def _durable(self) -> None:
        try:
            await self._writer.wait_durable()
        except StorageUnavailable as exc:
            raise _unavailable(exc) from exc
