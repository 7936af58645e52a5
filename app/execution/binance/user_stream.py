"""The user-data stream over the WebSocket API (`userDataStream.subscribe.signature`).

The venue removed the REST listenKey endpoints, so the stream is a subscription on a WebSocket
API connection: one signed request, answered with a `subscriptionId`, after which account
events arrive as `{"subscriptionId": n, "event": {...}}`. The stream counts as connected only
once the subscription is confirmed. A dropped connection is retried with capped exponential
back-off and jitter; `on_subscribed` runs after every confirmation so the owner can close the
gap with REST.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException

from app.core.jsonutil import dumps, loads
from app.execution.binance.backoff import Backoff
from app.execution.binance.signing import Credentials, signed_ws_params

log = logging.getLogger("veloz.binance")

SUBSCRIBE_TIMEOUT = 10.0


class SubscriptionRefused(Exception):
    def __init__(self, status: Any, error: Any) -> None:
        super().__init__(f"subscription refused ({status}): {error}")
        self.status = status
        self.error = error

    @property
    def code(self) -> int | None:
        if isinstance(self.error, dict) and isinstance(self.error.get("code"), int):
            return int(self.error["code"])
        return None


class UserDataStream:
    def __init__(
        self,
        url: str,
        credentials: Callable[[], Credentials | None],
        now_ms: Callable[[], int],
        recv_window_ms: int,
        on_event: Callable[[dict[str, Any]], None],
        on_subscribed: Callable[[], Awaitable[None]],
        on_problem: Callable[[str, Exception | None], Awaitable[None]],
        backoff: Backoff | None = None,
    ) -> None:
        self.url = url
        self._credentials = credentials
        self._now_ms = now_ms
        self._recv_window_ms = recv_window_ms
        self._on_event = on_event
        self._on_subscribed = on_subscribed
        self._on_problem = on_problem
        self._backoff = backoff or Backoff()
        self._task: asyncio.Task[None] | None = None
        self._socket: ClientConnection | None = None
        self.connected = False
        self.reconnects = 0
        self.subscription_id: int | None = None
        self.on_state: Callable[[bool], None] = lambda _up: None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        if not self.running:
            self._task = asyncio.create_task(self._run(), name="veloz-binance-user-stream")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.wait([task])
        self._set_connected(False)

    async def reconnect(self) -> None:
        """Drop the current connection (e.g. new credentials); the loop connects again."""
        socket = self._socket
        if socket is not None:
            await socket.close()

    def _set_connected(self, up: bool) -> None:
        if up != self.connected:
            self.connected = up
            self.on_state(up)

    async def _run(self) -> None:
        first = True
        while True:
            if not first:
                await asyncio.sleep(self._backoff.delay())
                self.reconnects += 1
            first = False
            credentials = self._credentials()
            if credentials is None or not credentials.usable:
                return  # restarted by the owner once credentials exist
            try:
                async with connect(self.url, open_timeout=SUBSCRIBE_TIMEOUT) as socket:
                    self._socket = socket
                    await self._subscribe(socket, credentials)
                    self._backoff.reset()
                    self._set_connected(True)
                    log.info("user-data stream subscribed (subscription %s)", self.subscription_id)
                    await self._on_subscribed()
                    async for message in socket:
                        self._dispatch(message)
                self._set_connected(False)
                await self._on_problem("user_stream_closed", None)
            except asyncio.CancelledError:
                raise
            except (OSError, WebSocketException, TimeoutError, SubscriptionRefused) as exc:
                self._set_connected(False)
                log.warning("user-data stream down: %s", exc)
                await self._on_problem("user_stream_error", exc)
            except Exception as exc:  # a bad message must not end the stream for good
                self._set_connected(False)
                log.exception("user-data stream failed")
                await self._on_problem("user_stream_error", exc)
            finally:
                self._socket = None
                self.subscription_id = None
                self._set_connected(False)

    async def _subscribe(self, socket: ClientConnection, credentials: Credentials) -> None:
        request_id = f"subscribe-{self.reconnects}"
        params = signed_ws_params(credentials, self._now_ms(), self._recv_window_ms)
        request = {"id": request_id, "method": "userDataStream.subscribe.signature"}
        await socket.send(dumps({**request, "params": params}))
        async with asyncio.timeout(SUBSCRIBE_TIMEOUT):
            while True:
                answer = loads(await socket.recv())
                if isinstance(answer, dict) and answer.get("id") == request_id:
                    break
                self._dispatch_parsed(answer)  # an event racing the answer
        if answer.get("status") != 200:
            raise SubscriptionRefused(answer.get("status"), answer.get("error"))
        result = answer.get("result") or {}
        self.subscription_id = result.get("subscriptionId")

    def _dispatch(self, message: str | bytes) -> None:
        try:
            parsed = loads(message)
        except ValueError:
            log.warning("user-data stream: a message that is not JSON was ignored")
            return
        self._dispatch_parsed(parsed)

    def _dispatch_parsed(self, parsed: Any) -> None:
        if not isinstance(parsed, dict):
            return
        event = parsed.get("event")
        if isinstance(event, dict):
            try:
                self._on_event(event)
            except Exception:  # one bad event must not end the stream
                log.exception("user-data event could not be handled: %s", event.get("e"))
