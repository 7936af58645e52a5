"""Signed REST calls to the venue on one pooled `httpx.AsyncClient`.

Every answer is a `RestResult`. Failures keep the original's error shapes (contract §7.3):
`{"_http_error": status, "_body": body}` or `{"_error": text}`. A 5xx, a `-1007` or a timeout
after the request went out means the call's effect is unknown (`unknown=True`): the caller
must find out what happened before trying again. A `-1021` (our clock is off) is answered by
measuring the offset with `GET /api/v3/time` and retrying once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from app.core.jsonutil import loads
from app.execution.binance.limits import VenueLimits
from app.execution.binance.signing import Credentials, ParamValue, query_string, signed_query

log = logging.getLogger("veloz.binance")

USER_AGENT = "VeloZ/0.1"
RECV_WINDOW_MS = 5000
TIMESTAMP_OUTSIDE_WINDOW = -1021
UNKNOWN_STATUS_TIMEOUT = -1007
ORDER_DOES_NOT_EXIST = -2013
UNKNOWN_ORDER = -2011

# (endpoint, seconds, error type or None) after each call, for metrics.
CallObserver = Callable[[str, float, str | None], None]


@dataclass(frozen=True, slots=True)
class RestResult:
    ok: bool
    data: Any = None
    error: dict[str, Any] | None = None
    status: int | None = None
    unknown: bool = False  # the request may have taken effect; its outcome is not known
    sent: bool = True  # False when refused locally (ban, back-off, no credentials)

    @property
    def code(self) -> int | None:
        """The venue's error code (`{"code": -2013, "msg": ...}`), if any."""
        body = (self.error or {}).get("_body")
        if isinstance(body, dict) and isinstance(body.get("code"), int):
            return int(body["code"])
        return None


class BinanceRestClient:
    def __init__(
        self,
        base_url: str,
        credentials: Credentials | None,
        limits: VenueLimits,
        *,
        timeout: float = 5.0,
        recv_window_ms: int = RECV_WINDOW_MS,
        observe: CallObserver | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.credentials = credentials
        self.limits = limits
        self.recv_window_ms = recv_window_ms
        self.clock_offset_ms = 0  # venue time minus ours, measured after a -1021
        self.observe = observe
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout, connect=min(timeout, 3.0)),
            limits=httpx.Limits(max_connections=10, max_keepalive_connections=5),
            headers={"User-Agent": USER_AGENT},
        )

    @property
    def configured(self) -> bool:
        return bool(self.base_url and self.credentials and self.credentials.usable)

    async def close(self) -> None:
        await self._http.aclose()

    def now_ms(self) -> int:
        """Our best idea of the venue's clock, in milliseconds."""
        return int(time.time() * 1000) + self.clock_offset_ms

    # --- calls ------------------------------------------------------------------------------
    async def ping(self) -> RestResult:
        return await self.request("GET", "/api/v3/ping")

    async def server_time(self) -> RestResult:
        return await self.request("GET", "/api/v3/time")

    async def place_order(self, params: Mapping[str, ParamValue]) -> RestResult:
        return await self.request("POST", "/api/v3/order", params, signed=True)

    async def cancel_order(self, symbol: str, client_order_id: str) -> RestResult:
        params = {"symbol": symbol, "origClientOrderId": client_order_id}
        return await self.request("DELETE", "/api/v3/order", params, signed=True)

    async def query_order(
        self, symbol: str, client_order_id: str, *, background: bool = False
    ) -> RestResult:
        params = {"symbol": symbol, "origClientOrderId": client_order_id}
        return await self.request(
            "GET", "/api/v3/order", params, signed=True, background=background
        )

    async def open_orders(self, symbol: str | None = None) -> RestResult:
        params = {"symbol": symbol} if symbol else {}
        return await self.request("GET", "/api/v3/openOrders", params, signed=True, background=True)

    async def account(self) -> RestResult:
        params = {"omitZeroBalances": True}
        return await self.request("GET", "/api/v3/account", params, signed=True, background=True)

    async def sync_clock(self) -> bool:
        """Measure the venue's clock against ours (half the round trip counted each way)."""
        sent = time.time()
        result = await self.server_time()
        received = time.time()
        if not result.ok or not isinstance(result.data, dict):
            return False
        server_ms = result.data.get("serverTime")
        if not isinstance(server_ms, int):
            return False
        self.clock_offset_ms = server_ms - int((sent + received) / 2 * 1000)
        log.info("venue clock offset measured: %d ms", self.clock_offset_ms)
        return True

    # --- transport --------------------------------------------------------------------------
    async def request(
        self,
        method: str,
        path: str,
        params: Mapping[str, ParamValue] | None = None,
        *,
        signed: bool = False,
        background: bool = False,
        credentials: Credentials | None = None,
        base_url: str | None = None,
    ) -> RestResult:
        """One call; a `-1021` measures the clock and retries once."""
        result = await self._send(method, path, params, signed, background, credentials, base_url)
        if signed and result.code == TIMESTAMP_OUTSIDE_WINDOW and await self.sync_clock():
            result = await self._send(
                method, path, params, signed, background, credentials, base_url
            )
        return result

    async def _send(
        self,
        method: str,
        path: str,
        params: Mapping[str, ParamValue] | None,
        signed: bool,
        background: bool,
        credentials: Credentials | None,
        base_url: str | None,
    ) -> RestResult:
        refusal = self.limits.refusal(background)
        if refusal is not None:
            error = {"_error": refusal.reason, "retry_after": round(refusal.retry_after, 3)}
            return RestResult(False, error=error, sent=False)
        keys = credentials or self.credentials
        headers = {}
        if signed:
            if keys is None or not keys.usable:
                return RestResult(False, error={"_error": "binance_not_configured"}, sent=False)
            query = signed_query(params or {}, keys.api_secret, self.now_ms(), self.recv_window_ms)
            headers["X-MBX-APIKEY"] = keys.api_key
        else:
            query = query_string(params or {})
        url = f"{(base_url or self.base_url).rstrip('/')}{path}"
        if query:
            url = f"{url}?{query}"
        started = time.perf_counter()
        try:
            response = await self._http.request(method, url, headers=headers)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            # Nothing reached the venue: a plain failure.
            self._record(path, started, "connect")
            return RestResult(False, error={"_error": f"{type(exc).__name__}: {exc}"}, sent=False)
        except httpx.HTTPError as exc:
            # The request may have been received and executed.
            self._record(path, started, "timeout")
            error = {"_error": f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__}
            return RestResult(False, error=error, unknown=True)
        self.limits.observe(response.status_code, response.headers)
        body = _parse(response)
        if response.is_success:
            self._record(path, started, None)
            return RestResult(True, data=body if body != "" else {}, status=response.status_code)
        error = {"_http_error": response.status_code, "_body": body}
        code = body.get("code") if isinstance(body, dict) else None
        unknown = response.status_code >= 500 or code == UNKNOWN_STATUS_TIMEOUT
        self._record(path, started, _error_type(response.status_code, code))
        return RestResult(False, error=error, status=response.status_code, unknown=unknown)

    def _record(self, path: str, started: float, error_type: str | None) -> None:
        if self.observe is not None:
            self.observe(path, time.perf_counter() - started, error_type)


def _parse(response: httpx.Response) -> Any:
    if not response.content:
        return ""
    try:
        return loads(response.content)
    except ValueError:
        return response.text


def _error_type(status: int, code: Any) -> str:
    if status == 418:
        return "ip_banned"
    if status == 429:
        return "rate_limited"
    if status >= 500:
        return "server_error"
    if code == TIMESTAMP_OUTSIDE_WINDOW:
        return "timestamp"
    return "rejected"
