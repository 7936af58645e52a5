"""GET /metrics (contract §9, K12, F1): public Prometheus text with the original's `veloz_*`
names and labels, kept live by requests, orders, fills, cancels, market data, rate limits and
refused credentials; route templates as endpoint labels, so unknown paths cannot grow the
label set; one registry per app.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from app.core.config import Settings
from tests.conftest import Gateway, running_gateway

ADMIN_PASSWORD = "metrics-admin-pass-1"
INF = float("inf")
HTTP_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, INF]
SIZE_BUCKETS = [100, 500, 1e3, 5e3, 1e4, 5e4, 1e5, 5e5, 1e6, INF]
ORDER_LATENCY_BUCKETS = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, INF]

# Family name as the parser reports it (counters without `_total`) -> (type, label names).
GATEWAY_FAMILIES: dict[str, tuple[str, set[str]]] = {
    "veloz_http_requests": ("counter", {"method", "endpoint", "status"}),
    "veloz_http_request_duration_seconds": ("histogram", {"method", "endpoint"}),
    "veloz_http_request_size_bytes": ("histogram", {"method", "endpoint"}),
    "veloz_http_response_size_bytes": ("histogram", {"method", "endpoint"}),
    "veloz_gateway_uptime_seconds": ("gauge", set()),
    "veloz_engine_running": ("gauge", set()),
    "veloz_sse_clients": ("gauge", set()),
    "veloz_active_orders": ("gauge", set()),
    "veloz_orders": ("counter", {"side", "type"}),
    "veloz_fills": ("counter", {"side"}),
    "veloz_cancels": ("counter", set()),
    "veloz_order_latency_seconds": ("histogram", set()),
    "veloz_market_updates": ("counter", {"type"}),
    "veloz_risk_rejections": ("counter", {"reason"}),
    "veloz_rate_limit_rejections": ("counter", set()),
    "veloz_auth_failures": ("counter", {"reason"}),
    "veloz_audit_queue_depth": ("gauge", set()),
    "veloz_errors": ("counter", {"type", "component"}),
}
# The rest of the contract's table (§9): F1 says every `veloz_*` metric is served.
OTHER_CONTRACT_FAMILIES: dict[str, str] = {
    "veloz_active_connections": "gauge",
    "veloz_websocket_connected": "gauge",
    "veloz_orderbook_updates": "counter",
    "veloz_trade_updates": "counter",
    "veloz_market_data_lag_ms": "gauge",
    "veloz_market_processing_latency_seconds": "histogram",
    "veloz_risk_utilization_percent": "gauge",
    "veloz_position_value": "gauge",
    "veloz_exchange_api_latency_seconds": "histogram",
    "veloz_exchange_api_errors": "counter",
    "veloz_websocket_reconnects": "counter",
}

Families = dict[str, Any]  # family name -> prometheus_client Metric


# --- helpers ----------------------------------------------------------------------------------


@pytest.fixture
async def gw(make_settings: Callable[..., Settings]) -> AsyncIterator[Gateway]:
    """Auth off: what is measured does not depend on the caller."""
    async with running_gateway(make_settings()) as running:
        yield running


def parse(text: str) -> Families:
    return {family.name: family for family in text_string_to_metric_families(text)}


async def scrape(gw: Gateway) -> Families:
    response = await gw.client.get("/metrics")
    assert response.status_code == 200, response.text
    return parse(response.text)


def samples(families: Families, name: str) -> list[Sample]:
    """Every sample called `name` (e.g. `veloz_orders_total`), whatever its family."""
    return [s for family in families.values() for s in family.samples if s.name == name]


def value(families: Families, name: str, **labels: str) -> float:
    """The sample's value; 0 when the labelled child does not exist yet."""
    found = [s.value for s in samples(families, name) if s.labels == labels]
    assert len(found) <= 1, (name, labels)
    return float(found[0]) if found else 0.0


def label_values(families: Families, name: str, label: str) -> set[str]:
    return {s.labels[label] for s in samples(families, name)}


def buckets(families: Families, name: str, **labels: str) -> list[float]:
    return [
        float(s.labels["le"])
        for s in samples(families, f"{name}_bucket")
        if {k: v for k, v in s.labels.items() if k != "le"} == labels
    ]


async def place(gw: Gateway, **body: Any) -> dict[str, Any]:
    response = await gw.client.post("/api/order", json=body)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


# --- access -----------------------------------------------------------------------------------


async def test_metrics_are_public_and_not_rate_limited_with_auth_on(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(
        auth_enabled=True,
        admin_password=ADMIN_PASSWORD,
        rate_limit_capacity=1,
        rate_limit_refill=0.001,
    )
    async with running_gateway(settings) as gw:
        for headers in ({}, {}, {}, {"Authorization": "Bearer not.a.token"}):
            response = await gw.client.get("/metrics", headers=headers)
            assert response.status_code == 200, response.text
            assert response.headers["content-type"].startswith("text/plain")
            assert "charset=utf-8" in response.headers["content-type"]
            assert "x-ratelimit-limit" not in response.headers
            families = parse(response.text)
            assert families["veloz_engine_running"].samples[0].value == 1.0
        # Meanwhile a protected route refuses the same anonymous caller.
        assert (await gw.client.get("/api/orders_state")).status_code == 401


# --- names, types, labels, buckets ------------------------------------------------------------


async def test_gateway_families_have_the_contract_types_labels_and_buckets(gw: Gateway) -> None:
    gw.move_market("42000")
    await place(gw, side="BUY", qty=0.01, price=1000, client_order_id="rest")
    await place(gw, side="BUY", qty=0.1, order_type="market", client_order_id="now")
    refused = await place(gw, side="SELL", qty=100, price=90000, client_order_id="big")
    assert refused["ok"] is False
    assert (await gw.client.post("/api/cancel", json={"client_order_id": "rest"})).is_success
    gw.runtime.bus.publish_many([{"type": "error", "ts_ns": 1, "message": "engine_exited"}])
    missing = await gw.client.get("/api/order_state", params={"client_order_id": "x"})
    assert missing.status_code == 404
    families = await scrape(gw)
    # Auth is off here, so nothing is refused; its labels are checked where auth is on.
    without_samples = {"veloz_auth_failures"}

    for name, (kind, labels) in GATEWAY_FAMILIES.items():
        assert name in families, name
        family = families[name]
        assert family.type == kind, name
        measured = [s for s in family.samples if not s.name.endswith("_created")]
        assert bool(measured) is (name not in without_samples), name
        for sample in measured:
            assert set(sample.labels) - {"le"} == labels, (name, sample)

    # Histograms keep the original's buckets.
    for method, endpoint in (("POST", "/api/order"), ("GET", "/api/order_state")):
        got = buckets(families, "veloz_http_request_duration_seconds", method=method,
                      endpoint=endpoint)  # fmt: skip
        assert got == HTTP_BUCKETS, endpoint
    got = buckets(families, "veloz_http_request_size_bytes", method="POST", endpoint="/api/order")
    assert got == SIZE_BUCKETS
    got = buckets(families, "veloz_http_response_size_bytes", method="POST", endpoint="/api/order")
    assert got == SIZE_BUCKETS
    assert buckets(families, "veloz_order_latency_seconds") == ORDER_LATENCY_BUCKETS
    assert value(families, "veloz_errors_total", type="engine_exited", component="engine") == 1
    rejections = value(
        families, "veloz_risk_rejections_total", reason="max_order_notional_exceeded"
    )
    assert rejections == 1


async def test_every_contract_metric_is_served(gw: Gateway) -> None:
    """F1: the response carries every `veloz_*` metric of §9's table, not only the live ones."""
    families = await scrape(gw)
    served = {name: families[name].type for name in OTHER_CONTRACT_FAMILIES if name in families}
    assert served == OTHER_CONTRACT_FAMILIES


# --- values -----------------------------------------------------------------------------------


async def test_http_requests_are_counted_per_route_template_and_exact_status(
    gw: Gateway,
) -> None:
    path = "/api/order_state"
    assert (await gw.client.get(path, params={"client_order_id": "nope"})).status_code == 404
    assert (await gw.client.get(path, params={"client_order_id": "other"})).status_code == 404
    assert (await gw.client.get(path)).status_code == 400
    assert (await gw.client.get("/api/health")).status_code == 200
    families = await scrape(gw)
    get = {"method": "GET", "endpoint": path}
    assert value(families, "veloz_http_requests_total", **get, status="404") == 2
    assert value(families, "veloz_http_requests_total", **get, status="400") == 1
    assert value(families, "veloz_http_requests_total", **get, status="4xx") == 0
    assert value(families, "veloz_http_request_duration_seconds_count", **get) == 3
    assert value(families, "veloz_http_request_duration_seconds_sum", **get) > 0
    health = {"method": "GET", "endpoint": "/api/health", "status": "200"}
    assert value(families, "veloz_http_requests_total", **health) == 1
    assert label_values(families, "veloz_http_requests_total", "endpoint") == {
        path,
        "/api/health",
    }
    # The scrape itself is not counted.
    again = await scrape(gw)
    assert "/metrics" not in label_values(again, "veloz_http_requests_total", "endpoint")


async def test_order_fill_cancel_and_market_counters_move(gw: Gateway) -> None:
    before = await scrape(gw)
    assert value(before, "veloz_active_orders") == 0

    await place(gw, side="BUY", qty=0.01, price=1000, client_order_id="r1")
    rested = await scrape(gw)
    limit_buy = {"side": "BUY", "type": "limit"}
    assert value(rested, "veloz_orders_total", **limit_buy) == 1
    assert value(rested, "veloz_active_orders") == 1
    assert value(rested, "veloz_order_latency_seconds_count") == 1
    assert value(rested, "veloz_fills_total", side="BUY") == 0

    updates = value(rested, "veloz_market_updates_total", type="market")
    gw.move_market("42000")
    moved = await scrape(gw)
    assert value(moved, "veloz_market_updates_total", type="market") == updates + 1

    result = await place(gw, side="BUY", qty=0.1, order_type="market", client_order_id="m1")
    assert result["status"] == "FILLED"
    filled = await scrape(gw)
    assert value(filled, "veloz_fills_total", side="BUY") == 1
    assert value(filled, "veloz_fills_total", side="SELL") == 0
    assert value(filled, "veloz_orders_total", side="BUY", type="market") == 1
    assert value(filled, "veloz_orders_total", **limit_buy) == 1
    assert value(filled, "veloz_active_orders") == 1  # the market order is done at once
    assert value(filled, "veloz_order_latency_seconds_count") == 2

    assert value(filled, "veloz_cancels_total") == 0
    cancel = await gw.client.post("/api/cancel", json={"client_order_id": "r1"})
    assert cancel.status_code == 200, cancel.text
    cancelled = await scrape(gw)
    assert value(cancelled, "veloz_cancels_total") == 1
    assert value(cancelled, "veloz_active_orders") == 0
    assert value(cancelled, "veloz_orders_total", **limit_buy) == 1


async def test_engine_uptime_sse_and_audit_gauges_are_read_live(gw: Gateway) -> None:
    families = await scrape(gw)
    assert value(families, "veloz_gateway_uptime_seconds") > 0
    assert value(families, "veloz_engine_running") == 1
    assert value(families, "veloz_sse_clients") == 0

    subscription, _ = gw.runtime.bus.subscribe(None, 10)
    assert value(await scrape(gw), "veloz_sse_clients") == 1
    gw.runtime.bus.unsubscribe(subscription)
    assert value(await scrape(gw), "veloz_sse_clients") == 0

    # Entries still queued show as the queue depth (read before the writer gets to run).
    audit = gw.runtime.audit
    for n in range(5):
        await audit.record("order", "probe", details={"n": n})
    queued = parse(generate_latest(gw.runtime.metrics.registry).decode())
    assert value(queued, "veloz_audit_queue_depth") == audit.depth == 5
    await audit.flush()
    assert value(await scrape(gw), "veloz_audit_queue_depth") == 0

    await gw.runtime.engine.stop()
    stopped = await scrape(gw)
    assert value(stopped, "veloz_engine_running") == 0
    assert value(stopped, "veloz_gateway_uptime_seconds") > value(
        families, "veloz_gateway_uptime_seconds"
    )


async def test_rate_limit_and_auth_failure_counters_move(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(
        auth_enabled=True,
        admin_password=ADMIN_PASSWORD,
        rate_limit_capacity=1,
        rate_limit_refill=0.001,
    )
    async with running_gateway(settings) as gw:
        auth = gw.runtime.auth
        _, trader = await auth.create_key("admin", "trader", ["trader"], None)
        _, viewer = await auth.create_key("admin", "viewer", ["viewer"], None)
        before = await scrape(gw)
        assert value(before, "veloz_rate_limit_rejections_total") == 0
        assert value(before, "veloz_auth_failures_total", reason="invalid_api_key") == 0

        path = "/api/orders_state"
        assert (await gw.client.get(path, headers={"X-API-Key": trader})).status_code == 200
        assert (await gw.client.get(path, headers={"X-API-Key": trader})).status_code == 429
        limited = await scrape(gw)
        assert value(limited, "veloz_rate_limit_rejections_total") == 1
        get = {"method": "GET", "endpoint": path}
        assert value(limited, "veloz_http_requests_total", **get, status="429") == 1
        assert value(limited, "veloz_http_requests_total", **get, status="200") == 1

        bad_key = {"X-API-Key": "veloz_" + "0" * 64}
        assert (await gw.client.get(path, headers=bad_key)).status_code == 401
        refused = await scrape(gw)
        assert value(refused, "veloz_auth_failures_total", reason="invalid_api_key") == 1
        assert value(refused, "veloz_rate_limit_rejections_total") == 1

        assert (await gw.client.get(path)).status_code == 401
        bad_token = {"Authorization": "Bearer not.a.token"}
        assert (await gw.client.get(path, headers=bad_token)).status_code == 401
        assert (await gw.client.get(path, headers={"X-API-Key": viewer})).status_code == 403
        after = await scrape(gw)
        reasons = {
            reason: value(after, "veloz_auth_failures_total", reason=reason)
            for reason in label_values(after, "veloz_auth_failures_total", "reason")
        }
        assert reasons == {
            "invalid_api_key": 1,
            "authentication_required": 1,
            "invalid_token": 1,
            "forbidden": 1,
        }
        assert value(after, "veloz_http_requests_total", **get, status="401") == 3
        assert value(after, "veloz_http_requests_total", **get, status="403") == 1


# --- label cardinality, library metrics, isolation --------------------------------------------


async def test_unknown_paths_share_one_endpoint_label(gw: Gateway) -> None:
    paths = [f"/api/{uuid.uuid4().hex}" for _ in range(25)]
    paths += [f"/docs/{n}/{uuid.uuid4()}" for n in range(25)]
    for path in paths:
        response = await gw.client.get(path)
        assert response.status_code == 404, path
    ui_routes = [f"/nothing/{n}/{uuid.uuid4()}" for n in range(25)]  # the web UI's fallback
    for path in ui_routes:
        response = await gw.client.get(path)
        assert response.status_code == 200, path
    paths += ui_routes
    response = await gw.client.get("/metrics")
    families = parse(response.text)
    assert label_values(families, "veloz_http_requests_total", "endpoint") == {"none"}
    assert value(families, "veloz_http_requests_total", method="GET", endpoint="none",
                 status="404") == 50  # fmt: skip
    assert value(families, "veloz_http_requests_total", method="GET", endpoint="none",
                 status="200") == 25  # fmt: skip
    assert label_values(families, "http_requests_total", "handler") == {"none"}
    for path in paths:
        assert path.rsplit("/", 1)[-1] not in response.text, path


async def test_library_default_http_metrics_are_served(gw: Gateway) -> None:
    for _ in range(2):
        assert (await gw.client.get("/api/health")).status_code == 200
    families = await scrape(gw)
    family = families["http_requests"]
    assert family.type == "counter"
    handled = [s for s in family.samples if s.name == "http_requests_total"]
    assert handled
    assert all(set(s.labels) == {"handler", "method", "status"} for s in handled)
    health = {"handler": "/api/health", "method": "GET", "status": "200"}
    assert value(families, "http_requests_total", **health) == 2
    assert "http_request_duration_seconds" in families
    # The process, platform and gc collectors of the default registry (§9) are there too.
    assert "process_cpu_seconds" in families
    assert "python_info" in families
    assert "python_gc_collections" in families


async def test_two_apps_in_one_process_keep_separate_registries(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    first_settings = make_settings(data_dir=tmp_path / "one")
    second_settings = make_settings(data_dir=tmp_path / "two")
    async with running_gateway(first_settings) as one, running_gateway(second_settings) as two:
        assert one.runtime.metrics.registry is not two.runtime.metrics.registry
        for _ in range(3):
            assert (await one.client.get("/api/health")).status_code == 200
        assert (await two.client.get("/api/health")).status_code == 200
        await place(one, side="BUY", qty=0.01, price=1000, client_order_id="only-one")
        first, second = await asyncio.gather(scrape(one), scrape(two))
    health = {"method": "GET", "endpoint": "/api/health", "status": "200"}
    assert value(first, "veloz_http_requests_total", **health) == 3
    assert value(second, "veloz_http_requests_total", **health) == 1
    assert value(first, "veloz_orders_total", side="BUY", type="limit") == 1
    assert value(second, "veloz_orders_total", side="BUY", type="limit") == 0
    assert value(first, "veloz_active_orders") == 1
    assert value(second, "veloz_active_orders") == 0
