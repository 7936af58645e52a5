"""Bridge to an external engine process speaking the VeloZ text protocol (contract §6).

Commands go to the process's stdin (`ORDER <SIDE> <symbol> <qty> <price> <cid> [type] [tif]`,
`CANCEL <cid>`); every JSON object line on its stdout is an event, other lines are ignored.
The process is supervised: when it dies it is restarted with capped back-off, orders answer
503 while it is down, and resting orders the gateway acknowledged are sent to the new process.
"""

from __future__ import annotations

import asyncio
import json
import logging
import shlex
import time
from collections.abc import Callable
from typing import Any

from app.core.jsonutil import plain_decimal
from app.engine.base import (
    CancelAck,
    Engine,
    EngineUnavailable,
    EventSink,
    OrderAck,
    OrderCommand,
)
from app.state.orders import OrderState

log = logging.getLogger("veloz.engine")

ANSWER_TIMEOUT = 2.0  # seconds to wait for the engine to answer an order or a cancel
BACKOFF_FIRST = 0.2
BACKOFF_MAX = 5.0
STABLE_AFTER = 10.0  # a process that ran this long resets the back-off
MAX_LINE = 1 << 20


class StdioEngine(Engine):
    name = "stdio"

    def __init__(self, command: str, publish: EventSink, clock: Callable[[], int]) -> None:
        self._argv = shlex.split(command)
        self._publish = publish
        self._clock = clock
        self._process: asyncio.subprocess.Process | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._stopping = False
        self._orders: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._cancels: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self.restarts = 0
        # Set by the runtime: the orders to hand to a (re)started process.
        self.open_orders: Callable[[], list[OrderState]] = list
        # Set by the runtime: True while a venue market source delivered a price recently.
        self.venue_prices_fresh: Callable[[], bool] = lambda: False

    @property
    def connected(self) -> bool:
        process = self._process
        return self._ready.is_set() and process is not None and process.returncode is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    async def start(self) -> None:
        await self._spawn()
        self._supervisor = asyncio.create_task(self._supervise(), name="veloz-engine-supervisor")

    async def stop(self) -> None:
        self._stopping = True
        if self._supervisor is not None:
            self._supervisor.cancel()
            await asyncio.wait([self._supervisor])
        process = self._process
        if process is not None and process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 3.0)
            except TimeoutError:
                process.kill()
                await process.wait()
        self._ready.clear()

    # --- process ----------------------------------------------------------------------------
    async def _spawn(self) -> None:
        self._ready.clear()
        self._process = await asyncio.create_subprocess_exec(
            *self._argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
            limit=MAX_LINE,
        )
        log.info("engine process %d started: %s", self._process.pid, self._argv[0])
        await self._replay_open_orders()
        self._ready.set()

    async def _supervise(self) -> None:
        backoff = BACKOFF_FIRST
        while not self._stopping:
            process = self._process
            assert process is not None
            started = time.monotonic()
            await self._read(process)
            code = await process.wait()
            self._ready.clear()
            self._fail_waiters()
            if self._stopping:
                return
            log.error("engine process exited with code %s; restarting in %.1fs", code, backoff)
            self._publish(
                [
                    {
                        "type": "error",
                        "ts_ns": self._clock(),
                        "message": "engine_exited",
                        "exit_code": code,
                    }
                ]
            )
            if time.monotonic() - started > STABLE_AFTER:
                backoff = BACKOFF_FIRST
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, BACKOFF_MAX)
            try:
                await self._spawn()
                self.restarts += 1
            except OSError:
                log.exception("could not start the engine process")

    async def _read(self, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None
        while True:
            try:
                line = await process.stdout.readline()
            except ValueError:  # a line longer than MAX_LINE: skip it
                continue
            if not line:
                return
            text = line.strip()
            if not text.startswith(b"{"):
                continue  # banners and other non-JSON lines (contract §6.1)
            try:
                event = json.loads(text)
            except ValueError:
                continue
            if isinstance(event, dict):
                self._handle(event)

    def _handle(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        cid = event.get("client_order_id")
        if isinstance(cid, str) and kind in ("order_update", "order_received"):
            cancel = self._cancels.get(cid)
            if cancel is not None and event.get("status") in ("CANCELLED", "REJECTED"):
                if event.get("status") == "REJECTED":
                    # F8: a refused cancel must not mark the order rejected.
                    event = {"type": "error", "ts_ns": event.get("ts_ns") or self._clock(),
                             "message": "cancel_rejected", "client_order_id": cid,
                             "reason": event.get("reason")}  # fmt: skip
                if not cancel.done():
                    cancel.set_result(event)
            else:
                waiter = self._orders.get(cid)
                if waiter is not None and not waiter.done():
                    waiter.set_result(event)
        if kind == "market" and self.venue_prices_fresh():
            return  # venue market data is live: the engine's own prices are dropped (§6.6)
        self._publish([event])

    def _fail_waiters(self) -> None:
        for waiters in (self._orders, self._cancels):
            for future in waiters.values():
                if not future.done():
                    future.set_exception(EngineUnavailable("the engine process exited"))

    async def _replay_open_orders(self) -> None:
        """A new process knows nothing: give it the resting orders that have no fill yet."""
        for order in self.open_orders():
            if order.executed_qty > 0:
                self._publish(
                    [
                        {
                            "type": "error",
                            "ts_ns": self._clock(),
                            "message": "partially_filled_order_not_restored",
                            "client_order_id": order.client_order_id,
                        }
                    ]
                )
                continue
            if order.order_qty is None or order.side is None or order.symbol is None:
                continue
            await self._write(self._order_line(
                order.side.upper(), order.symbol, plain_decimal(order.order_qty),
                plain_decimal(order.limit_price) if order.limit_price is not None else "0",
                order.client_order_id, order.order_type or "limit", order.time_in_force or "GTC",
            ))  # fmt: skip

    async def _write(self, line: str) -> None:
        process = self._process
        if process is None or process.stdin is None or process.returncode is not None:
            raise EngineUnavailable("the engine process is not running")
        try:
            process.stdin.write(line.encode() + b"\n")
            await process.stdin.drain()
        except (BrokenPipeError, ConnectionResetError) as exc:
            raise EngineUnavailable("the engine process is not running") from exc

    @staticmethod
    def _order_line(
        side: str, symbol: str, qty: str, price: str, cid: str, order_type: str, tif: str
    ) -> str:
        line = f"ORDER {side} {symbol} {qty} {price} {cid}"
        if order_type != "limit" or tif != "GTC":  # the original never sent the defaults
            line += f" {order_type.upper()} {tif}"
        return line

    # --- commands ---------------------------------------------------------------------------
    async def place_order(self, command: OrderCommand) -> OrderAck:
        if not self.connected:
            raise EngineUnavailable("the engine is not running")
        cid = command.client_order_id
        waiter: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._orders[cid] = waiter
        try:
            price = plain_decimal(command.price) if command.price is not None else "0"
            await self._write(self._order_line(
                command.side, command.symbol, plain_decimal(command.qty), price, cid,
                command.order_type, command.time_in_force,
            ))  # fmt: skip
            try:
                answer = await asyncio.wait_for(asyncio.shield(waiter), ANSWER_TIMEOUT)
            except TimeoutError:
                # The engine took the line but has not answered: the order is pending.
                return OrderAck(cid, True, "PENDING")
        finally:
            self._orders.pop(cid, None)
        if answer.get("type") == "order_received":
            return OrderAck(cid, True, "PENDING")
        status = answer.get("status")
        if status == "REJECTED":
            return OrderAck(cid, False, "REJECTED", reason=str(answer.get("reason") or "rejected"))
        venue = answer.get("venue_order_id")
        return OrderAck(cid, True, str(status) if status else None,
                        venue_order_id=str(venue) if venue else None)  # fmt: skip

    async def cancel_order(self, client_order_id: str, symbol: str | None) -> CancelAck:
        if not self.connected:
            raise EngineUnavailable("the engine is not running")
        waiter: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._cancels[client_order_id] = waiter
        try:
            await self._write(f"CANCEL {client_order_id}")
            try:
                answer = await asyncio.wait_for(asyncio.shield(waiter), ANSWER_TIMEOUT)
            except TimeoutError:
                return CancelAck(client_order_id, True, None)  # sent; the engine will report
        finally:
            self._cancels.pop(client_order_id, None)
        if answer.get("type") == "error":
            return CancelAck(client_order_id, False, None, reason=str(answer.get("reason")))
        return CancelAck(client_order_id, True, "CANCELLED")

    async def ping(self) -> dict[str, Any]:
        return {"ok": self.connected}
