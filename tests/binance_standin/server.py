"""The stand-in venue served over real HTTP and WebSocket on 127.0.0.1 (uvicorn, in the test's
event loop): the REST paths the gateway calls, the WebSocket API with
`userDataStream.subscribe.signature`, and a market stream."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from tests.binance_standin.venue import RecordedRequest, Venue, VenueError, fmt

WEIGHTS = {"/api/v3/account": 20, "/api/v3/openOrders": 6, "/api/v3/ticker/price": 2}


@dataclass
class Subscription:
    socket: WebSocket
    subscription_id: int
    api_key: str


@dataclass
class StandinBinance:
    venue: Venue
    base_url: str = ""
    ws_api_url: str = ""
    market_ws_url: str = ""
    subscriptions: list[Subscription] = field(default_factory=list)
    sockets: set[WebSocket] = field(default_factory=set)
    market_sockets: dict[WebSocket, set[str]] = field(default_factory=dict)
    refuse_ws: bool = False
    replay_on_subscribe: bool = False  # resend recent events to a new subscription
    sent: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # api key -> events
    next_subscription: int = 0
    subscribe_count: int = 0

    # --- what tests call --------------------------------------------------------------------
    async def trade(self, api_key: str, client_order_id: str, qty: str, price: str) -> None:
        for event in self.venue.trade(api_key, client_order_id, qty, price):
            await self.push(api_key, event)

    async def drop_streams(self) -> None:
        """Close every WebSocket connection as a failing venue would."""
        for ws in list(self.sockets):
            with contextlib.suppress(Exception):
                await ws.close(code=1011)
        self.subscriptions.clear()

    def subscribed(self, api_key: str | None = None) -> bool:
        return any(api_key in (None, s.api_key) for s in self.subscriptions)

    async def push_market(self, stream: str, data: dict[str, Any]) -> None:
        for ws, streams in list(self.market_sockets.items()):
            if stream in streams:
                with contextlib.suppress(Exception):
                    await ws.send_text(json.dumps({"stream": stream, "data": data}))

    # --- internals --------------------------------------------------------------------------
    async def push(self, api_key: str, event: dict[str, Any]) -> None:
        self.sent.setdefault(api_key, []).append(event)
        for sub in list(self.subscriptions):
            if sub.api_key == api_key:
                message = {"subscriptionId": sub.subscription_id, "event": event}
                try:
                    await sub.socket.send_text(json.dumps(message))
                except Exception:
                    self.subscriptions.remove(sub)


def _answer(venue: Venue, status: int, body: Any, retry_after: int | None = None) -> Response:
    headers = {"X-MBX-USED-WEIGHT-1M": str(venue.used_weight)}
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    return JSONResponse(body, status_code=status, headers=headers)


def build_app(standin: StandinBinance) -> Starlette:
    venue = standin.venue
    venue.push = standin.push

    async def rest(request: Request) -> Response:
        path = request.url.path
        method = request.method
        query = request.scope["query_string"].decode()
        venue.requests.append(
            RecordedRequest(method, path, query, {k.lower(): v for k, v in request.headers.items()})
        )
        venue.used_weight += WEIGHTS.get(path, 1)
        fault = venue.take_fault(method, path)
        if fault is not None and not fault.after_processing:
            return _answer(venue, fault.status, fault.body, fault.retry_after)
        try:
            status, body, events, api_key = _serve(venue, method, path, query, request)
        except VenueError as exc:
            return _answer(venue, exc.status, exc.body())
        for event in events:
            await standin.push(api_key, event)
        if fault is not None:
            return _answer(venue, fault.status, fault.body, fault.retry_after)
        return _answer(venue, status, body)

    async def ws_api(ws: WebSocket) -> None:
        if standin.refuse_ws:
            await ws.close(code=1013)
            return
        await ws.accept()
        standin.sockets.add(ws)
        try:
            while True:
                request = json.loads(await ws.receive_text())
                await ws.send_text(json.dumps(await _ws_request(standin, ws, request)))
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            standin.sockets.discard(ws)
            standin.subscriptions[:] = [s for s in standin.subscriptions if s.socket is not ws]

    async def market(ws: WebSocket) -> None:
        if standin.refuse_ws:
            await ws.close(code=1013)
            return
        streams = set(ws.query_params.get("streams", "").split("/"))
        await ws.accept()
        standin.sockets.add(ws)
        standin.market_sockets[ws] = streams
        try:
            while True:
                await ws.receive_text()
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            standin.sockets.discard(ws)
            standin.market_sockets.pop(ws, None)

    paths = [
        "/api/v3/ping", "/api/v3/time", "/api/v3/order", "/api/v3/openOrders",
        "/api/v3/account", "/api/v3/ticker/price", "/sapi/v1/account/apiRestrictions",
    ]  # fmt: skip
    routes: list[Any] = [Route(p, rest, methods=["GET", "POST", "DELETE"]) for p in paths]
    routes += [WebSocketRoute("/ws-api/v3", ws_api), WebSocketRoute("/stream", market)]
    return Starlette(routes=routes)


def _serve(
    venue: Venue, method: str, path: str, query: str, request: Request
) -> tuple[int, Any, list[Any], str]:
    """(status, body, events to push, account) for one REST call."""
    if path == "/api/v3/ping":
        return 200, {}, [], ""
    if path == "/api/v3/time":
        return 200, {"serverTime": venue.now_ms()}, [], ""
    if path == "/api/v3/ticker/price":
        symbol = dict(parse_qsl(query)).get("symbol", "")
        if symbol not in venue.prices:
            raise VenueError(400, -1121, "Invalid symbol.")
        return 200, {"symbol": symbol, "price": fmt(venue.prices[symbol])}, [], ""
    api_key = request.headers.get("x-mbx-apikey")
    _, params = venue.verify(query, api_key)
    assert api_key is not None
    if path == "/api/v3/order" and method == "POST":
        order, events = venue.place(api_key, params)
        return (
            200,
            {**order.rest_view(), "transactTime": order.time_ms, "fills": []},
            events,
            api_key,
        )
    if path == "/api/v3/order" and method == "DELETE":
        order, events = venue.cancel(api_key, params)
        view = order.rest_view()
        body = {**view, "origClientOrderId": order.client_order_id,
                "clientOrderId": f"cancel-{order.order_id}"}  # fmt: skip
        return 200, body, events, api_key
    if path == "/api/v3/order":
        return 200, venue.find(api_key, params).rest_view(), [], api_key
    if path == "/api/v3/openOrders":
        open_orders = [o.rest_view() for (key, _), o in venue.orders.items()
                       if key == api_key and o.status in ("NEW", "PARTIALLY_FILLED")]  # fmt: skip
        return 200, open_orders, [], api_key
    if path == "/api/v3/account":
        return 200, venue.account_view(api_key), [], api_key
    if path == "/sapi/v1/account/apiRestrictions":
        if not venue.sapi_available:
            raise VenueError(404, -1, "Not found")
        account = venue.accounts[api_key]
        return 200, {"ipRestrict": False, "enableReading": True,
                     "enableSpotAndMarginTrading": True, "enableFutures": False,
                     "enableWithdrawals": account.can_withdraw}, [], api_key  # fmt: skip
    raise VenueError(404, -1, "Not found")


async def _ws_request(standin: StandinBinance, ws: WebSocket, request: Any) -> dict[str, Any]:
    venue = standin.venue
    request_id = request.get("id") if isinstance(request, dict) else None
    method = request.get("method") if isinstance(request, dict) else None
    params = request.get("params") or {}
    if method == "ping":
        return {"id": request_id, "status": 200, "result": {}}
    if method == "userDataStream.subscribe.signature":
        signed = {k: str(v) for k, v in params.items() if k != "signature"}
        payload = "&".join(f"{k}={v}" for k, v in sorted(signed.items()))
        try:
            venue.check_signed(str(params.get("apiKey")), payload, str(params.get("signature")),
                               signed)  # fmt: skip
        except VenueError as exc:
            return {"id": request_id, "status": exc.status, "error": exc.body()}
        subscription = Subscription(ws, standin.next_subscription, str(params["apiKey"]))
        standin.next_subscription += 1
        standin.subscribe_count += 1
        standin.subscriptions.append(subscription)
        if standin.replay_on_subscribe:
            asyncio.get_running_loop().create_task(_replay(standin, subscription))
        return {"id": request_id, "status": 200,
                "result": {"subscriptionId": subscription.subscription_id}}  # fmt: skip
    return {"id": request_id, "status": 400,
            "error": {"code": -1100, "msg": f"unknown method {method}"}}  # fmt: skip


async def _replay(standin: StandinBinance, sub: Subscription) -> None:
    await asyncio.sleep(0)  # after the subscription's answer
    for event in list(standin.sent.get(sub.api_key, [])):
        with contextlib.suppress(Exception):
            await sub.socket.send_text(json.dumps({"subscriptionId": sub.subscription_id,
                                                   "event": event}))  # fmt: skip


@asynccontextmanager
async def serve_standin(venue: Venue | None = None) -> AsyncIterator[StandinBinance]:
    """Run the stand-in on a free 127.0.0.1 port for the duration of the block."""
    standin = StandinBinance(venue or Venue())
    # IPPROTO_TCP named explicitly: asyncio only sets TCP_NODELAY on such sockets, and without
    # it every keep-alive answer waits ~40 ms for a delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        build_app(standin), log_level="warning", ws="websockets-sansio", lifespan="off",
        ws_ping_interval=None,
    )  # fmt: skip
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    standin.base_url = f"http://127.0.0.1:{port}"
    standin.ws_api_url = f"ws://127.0.0.1:{port}/ws-api/v3"
    standin.market_ws_url = f"ws://127.0.0.1:{port}"
    try:
        yield standin
    finally:
        await standin.drop_streams()
        server.should_exit = True
        await task
        sock.close()
