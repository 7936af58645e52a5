"""Prometheus metrics: the original's `veloz_*` names and labels (contract §9), kept live.

Each app gets its own registry, so several apps (tests, replicas in one process) never clash.
Gauges that describe current state are read at scrape time from the live objects.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_fastapi_instrumentator.metrics import Info, latency, requests
from prometheus_fastapi_instrumentator.middleware import PrometheusInstrumentatorMiddleware
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from app.events.bus import Event

if TYPE_CHECKING:
    from app.execution.binance.engine import BinanceEngine

HTTP_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
SIZE_BUCKETS = (100, 500, 1e3, 5e3, 1e4, 5e4, 1e5, 5e5, 1e6)
ORDER_LATENCY_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1)
ROUTE_CACHE_SIZE = 1024
MARKET_BUCKETS = (0.0001, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1)
EXCHANGE_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
KNOWN_ENGINE_ERRORS = frozenset(
    {
        "duplicate_client_order_id", "unknown_order", "order_not_open", "bad_command",
        "cancel_rejected", "engine_exited", "partially_filled_order_not_restored",
        "market_source_error", "binance_poll_error", "user_stream_error", "user_stream_closed",
    }
)  # fmt: skip


class GatewayMetrics:
    def __init__(self) -> None:
        self.registry = registry = CollectorRegistry()
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        GCCollector(registry=registry)
        self.started = time.time()

        self.http_requests = Counter(
            "veloz_http_requests_total", "HTTP requests", ["method", "endpoint", "status"],
            registry=registry,
        )  # fmt: skip
        self.http_duration = Histogram(
            "veloz_http_request_duration_seconds", "HTTP request duration",
            ["method", "endpoint"], buckets=HTTP_BUCKETS, registry=registry,
        )  # fmt: skip
        self.http_request_size = Histogram(
            "veloz_http_request_size_bytes", "HTTP request body size", ["method", "endpoint"],
            buckets=SIZE_BUCKETS, registry=registry,
        )  # fmt: skip
        self.http_response_size = Histogram(
            "veloz_http_response_size_bytes", "HTTP response body size", ["method", "endpoint"],
            buckets=SIZE_BUCKETS, registry=registry,
        )  # fmt: skip
        self.uptime = Gauge(
            "veloz_gateway_uptime_seconds", "Seconds since start", registry=registry
        )
        self.uptime.set_function(lambda: time.time() - self.started)
        self.engine_running = Gauge(
            "veloz_engine_running", "1 while the engine takes orders", registry=registry
        )
        self.sse_clients = Gauge("veloz_sse_clients", "Connected stream clients", registry=registry)
        self.active_orders = Gauge("veloz_active_orders", "Open orders", registry=registry)
        self.orders = Counter(
            "veloz_orders_total", "Orders accepted", ["side", "type"], registry=registry
        )
        self.order_rejections = Counter(
            "veloz_risk_rejections_total", "Orders refused by the engine", ["reason"],
            registry=registry,
        )  # fmt: skip
        self.fills = Counter("veloz_fills_total", "Fills", ["side"], registry=registry)
        self.cancels = Counter("veloz_cancels_total", "Orders cancelled", registry=registry)
        self.order_latency = Histogram(
            "veloz_order_latency_seconds", "Order submission to acceptance (stored)",
            buckets=ORDER_LATENCY_BUCKETS, registry=registry,
        )  # fmt: skip
        self.market_updates = Counter(
            "veloz_market_updates_total", "Market data events", ["type"], registry=registry
        )
        self.rate_limited = Counter(
            "veloz_rate_limit_rejections_total", "Requests refused by the rate limit",
            registry=registry,
        )  # fmt: skip
        self.auth_failures = Counter(
            "veloz_auth_failures_total", "Refused authentications and permissions", ["reason"],
            registry=registry,
        )  # fmt: skip
        self.audit_queue_depth = Gauge(
            "veloz_audit_queue_depth", "Audit entries waiting to be written", registry=registry
        )
        self.audit_backpressure = Counter(
            "veloz_audit_backpressure_total", "Times a request waited for the audit queue",
            registry=registry,
        )  # fmt: skip
        self.errors = Counter(
            "veloz_errors_total", "Errors", ["type", "component"], registry=registry
        )
        # The rest of the original's table (§9). Venue and WebSocket series stay empty until
        # an exchange connection exists; book, trade and lag metrics follow engine events.
        self.in_flight = 0
        self.active_connections = Gauge(
            "veloz_active_connections", "HTTP requests in progress plus open streams",
            registry=registry,
        )  # fmt: skip
        self.websocket_connected = Gauge(
            "veloz_websocket_connected", "1 while a venue WebSocket is connected",
            registry=registry,
        )  # fmt: skip
        self.orderbook_updates = Counter(
            "veloz_orderbook_updates_total", "Order book events", registry=registry
        )
        self.trade_updates = Counter("veloz_trade_updates_total", "Trade events", registry=registry)
        self.market_data_lag = Gauge(
            "veloz_market_data_lag_ms", "Age of the last market event when it was folded",
            registry=registry,
        )  # fmt: skip
        self.market_processing = Histogram(
            "veloz_market_processing_latency_seconds", "Market event to state folded",
            buckets=MARKET_BUCKETS, registry=registry,
        )  # fmt: skip
        self.risk_utilization = Gauge(
            "veloz_risk_utilization_percent", "Share of the quote asset reserved by open orders",
            registry=registry,
        )  # fmt: skip
        self.position_value = Gauge(
            "veloz_position_value", "Base-asset holdings at the last price", ["symbol"],
            registry=registry,
        )  # fmt: skip
        self.exchange_latency = Histogram(
            "veloz_exchange_api_latency_seconds", "Venue API call duration",
            ["exchange", "endpoint"], buckets=EXCHANGE_BUCKETS, registry=registry,
        )  # fmt: skip
        self.exchange_errors = Counter(
            "veloz_exchange_api_errors_total", "Venue API errors", ["exchange", "error_type"],
            registry=registry,
        )  # fmt: skip
        self.websocket_reconnects = Counter(
            "veloz_websocket_reconnects_total", "Venue WebSocket reconnects", ["exchange"],
            registry=registry,
        )  # fmt: skip

        # Venue limits and the user-data stream (Binance mode).
        self.venue_used_weight = Gauge(
            "veloz_binance_used_weight_1m", "Request weight used this minute, as the venue "
            "reports it", registry=registry,
        )  # fmt: skip
        self.venue_banned = Gauge(
            "veloz_binance_banned", "1 while calls are held back: 418 ban or 429 back-off",
            ["kind"], registry=registry,
        )  # fmt: skip
        self.venue_limit_hits = Counter(
            "veloz_binance_limit_responses_total", "429 and 418 answers from the venue",
            ["status"], registry=registry,
        )  # fmt: skip
        self.venue_user_stream = Gauge(
            "veloz_binance_user_stream_connected", "1 while the user-data subscription is "
            "confirmed", registry=registry,
        )  # fmt: skip

    def watch_venue(self, engine: BinanceEngine) -> None:
        """Venue gauges read at scrape time; calls and reconnects counted as they happen."""
        limits, stream = engine.limits, engine.stream
        self.venue_used_weight.set_function(lambda: float(limits.current_weight()))
        self.venue_banned.labels(kind="418").set_function(
            lambda: 1.0 if limits.snapshot()["banned"] else 0.0
        )
        self.venue_banned.labels(kind="429").set_function(
            lambda: 1.0 if limits.snapshot()["backing_off"] else 0.0
        )
        connected = lambda: 1.0 if stream.connected else 0.0  # noqa: E731
        self.venue_user_stream.set_function(connected)
        self.websocket_connected.set_function(connected)
        seen_up = False

        def on_state(up: bool) -> None:
            nonlocal seen_up
            if up and seen_up:
                self.websocket_reconnects.labels(exchange="binance").inc()
            seen_up = seen_up or up

        stream.on_state = on_state

        def on_call(endpoint: str, seconds: float, error_type: str | None) -> None:
            self.exchange_latency.labels(exchange="binance", endpoint=endpoint).observe(seconds)
            if error_type is not None:
                self.exchange_errors.labels(exchange="binance", error_type=error_type).inc()
            if error_type == "rate_limited":
                self.venue_limit_hits.labels(status="429").inc()
            elif error_type == "ip_banned":
                self.venue_limit_hits.labels(status="418").inc()

        engine.rest.observe = on_call

    def watch(
        self,
        engine_running: Callable[[], bool],
        sse_clients: Callable[[], int],
        active_orders: Callable[[], int],
        audit_depth: Callable[[], int],
    ) -> None:
        """Gauges read from live state at each scrape."""
        self.engine_running.set_function(lambda: 1.0 if engine_running() else 0.0)
        self.sse_clients.set_function(lambda: float(sse_clients()))
        self.active_connections.set_function(lambda: float(self.in_flight + sse_clients()))
        self.active_orders.set_function(lambda: float(active_orders()))
        self.audit_queue_depth.set_function(lambda: float(audit_depth()))

    def on_event(self, event: Event) -> None:
        """Bus listener: counts what the engine reports."""
        kind = event.type
        if kind == "market":
            self.market_updates.labels(type="market").inc()
            ts_ns = event.data.get("ts_ns")
            if isinstance(ts_ns, int):
                age = max(0.0, (time.time_ns() - ts_ns) / 1e9)
                self.market_data_lag.set(age * 1000)
                self.market_processing.observe(age)
        elif kind in ("book_top", "book_delta"):
            self.orderbook_updates.inc()
        elif kind == "trade":
            self.trade_updates.inc()
        elif kind == "fill":
            self.fills.labels(side=str(event.data.get("side") or "unknown")).inc()
        elif kind == "order_update":
            status = event.data.get("status")
            if status == "CANCELLED":
                self.cancels.inc()
            elif status == "REJECTED":
                self.order_rejections.labels(reason=str(event.data.get("reason") or "")).inc()
        elif kind == "error":
            message = str(event.data.get("message") or "")
            # Label values stay bounded even when an external engine invents messages.
            label = message if message in KNOWN_ENGINE_ERRORS else "other"
            self.errors.labels(type=label, component="engine").inc()

    def instrumentations(self) -> list[Callable[[Info], None]]:
        """The library's HTTP metrics, plus the original's `veloz_http_*` names."""
        # Of the library's metrics, the request count and latency: its full default set also
        # records sizes and a 21-bucket histogram, which cost ~40 us more per request.
        library = (
            requests(registry=self.registry),
            latency(registry=self.registry, buckets=HTTP_BUCKETS),
        )
        return [f for f in (*library, self.observe_http) if f is not None]

    def observe_http(self, info: Info) -> None:
        """prometheus-fastapi-instrumentator hook: the original's HTTP metric names."""
        endpoint = info.modified_handler
        method = info.method
        self.http_requests.labels(method, endpoint, info.modified_status).inc()
        self.http_duration.labels(method, endpoint).observe(info.modified_duration)
        length = info.request.headers.get("content-length")
        if length and length.isdigit():
            self.http_request_size.labels(method, endpoint).observe(int(length))
        if info.response is not None:
            size = info.response.headers.get("content-length")
            if size and size.isdigit():
                self.http_response_size.labels(method, endpoint).observe(int(size))


class RouteCachingInstrumentatorMiddleware(PrometheusInstrumentatorMiddleware):
    """prometheus-fastapi-instrumentator's middleware, with the route template of each
    (method, path) remembered: the library matches every route again on every request, which
    cost about 100 µs here. Routes are static, so the answer for a path never changes."""

    def __init__(self, app: ASGIApp, /, *, gateway: GatewayMetrics, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self._gateway = gateway
        self._handlers: OrderedDict[tuple[str, str], tuple[str, bool]] = OrderedDict()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self._gateway.in_flight += 1
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._gateway.in_flight -= 1

    def _get_handler(self, request: Request) -> tuple[str, bool]:
        key = (request.method, request.url.path)
        found = self._handlers.get(key)
        if found is None:
            found = super()._get_handler(request)
            self._handlers[key] = found
            if len(self._handlers) > ROUTE_CACHE_SIZE:  # unknown paths must not grow it
                self._handlers.popitem(last=False)
        return found
