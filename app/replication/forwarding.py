"""Orders and cancels on a follower go to the leader; on the leader they run here."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import asdict
from decimal import Decimal
from typing import Any

from app.core.errors import ApiError
from app.core.jsonutil import plain_decimal
from app.db.writer import StateWriter
from app.engine.base import Engine, OrderCommand
from app.services.orders import CancelResult, OrderResult, OrderService
from app.state.orders import OrderStore

# (kind, body) -> the leader's answer; raises ApiError 503 when no leader answers.
Forward = Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]]


def command_body(command: OrderCommand, generated: bool) -> dict[str, Any]:
    return {
        "client_order_id": command.client_order_id,
        "symbol": command.symbol,
        "side": command.side,
        "qty": plain_decimal(command.qty),
        "price": None if command.price is None else plain_decimal(command.price),
        "order_type": command.order_type,
        "time_in_force": command.time_in_force,
        "generated": generated,
    }


def command_from(body: dict[str, Any]) -> OrderCommand:
    price = body.get("price")
    return OrderCommand(
        client_order_id=str(body["client_order_id"]),
        symbol=str(body["symbol"]),
        side=body["side"],
        qty=Decimal(body["qty"]),
        price=None if price is None else Decimal(price),
        order_type=body["order_type"],
        time_in_force=body["time_in_force"],
    )


def error_reply(exc: ApiError) -> dict[str, Any]:
    return {
        "error": {
            "status": exc.status,
            "code": exc.code,
            "message": exc.message,
            "details": exc.details,
            "headers": dict(exc.headers or {}),
        }
    }


def raise_if_error(reply: dict[str, Any]) -> None:
    error = reply.get("error")
    if error is not None:
        raise ApiError(
            error["status"],
            error["code"],
            error["message"],
            error.get("details"),
            headers=error.get("headers") or None,
        )


class ReplicatedOrders(OrderService):
    """The order service of a replica: local while it leads, forwarded while it follows."""

    def __init__(
        self,
        engine: Engine,
        orders: OrderStore,
        writer: StateWriter,
        leading: Callable[[], bool],
        forward: Forward,
    ) -> None:
        super().__init__(engine, orders, writer)
        self._leading = leading
        self._forward = forward
        self._generated: set[str] = set()

    def default_client_order_id(self) -> str:
        candidate = super().default_client_order_id()
        self._generated.add(candidate)  # the leader may still have to make it unique
        return candidate

    async def place(self, command: OrderCommand) -> OrderResult:
        generated = command.client_order_id in self._generated
        self._generated.discard(command.client_order_id)
        if self._leading():
            return await super().place(command)
        reply = await self._forward("place", command_body(command, generated))
        raise_if_error(reply)
        return OrderResult(**reply["order"])

    async def cancel(self, client_order_id: str, symbol: str | None) -> CancelResult:
        if self._leading():
            return await super().cancel(client_order_id, symbol)
        reply = await self._forward("cancel", {"client_order_id": client_order_id,
                                               "symbol": symbol})  # fmt: skip
        raise_if_error(reply)
        return CancelResult(**reply["cancel"])

    # --- the leader's side ------------------------------------------------------------------
    async def run_forwarded(self, kind: str, body: dict[str, Any]) -> dict[str, Any]:
        """Run a command another replica received; the answer, or the error it raised."""
        try:
            if kind == "place":
                command = command_from(body)
                if body.get("generated"):
                    command = self._unique(command)
                return {"order": asdict(await super().place(command))}
            if kind == "cancel":
                result = await super().cancel(body["client_order_id"], body.get("symbol"))
                return {"cancel": asdict(result)}
            raise ApiError(400, "bad_params", f"unknown command {kind!r}")
        except ApiError as exc:
            return error_reply(exc)

    def _unique(self, command: OrderCommand) -> OrderCommand:
        """A default id another replica made may already be taken here."""
        base, n, candidate = command.client_order_id, 1, command.client_order_id
        while self._orders.get(candidate) is not None or candidate in self._inflight:
            n += 1
            candidate = f"{base}-{n}"
        if candidate == base:
            return command
        return OrderCommand(
            candidate, command.symbol, command.side, command.qty, command.price,
            command.order_type, command.time_in_force,
        )  # fmt: skip
