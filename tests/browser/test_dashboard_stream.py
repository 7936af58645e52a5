"""The dashboard's live stream: dropped, restored, and across a gateway restart, it resumes
where it stopped, with no row lost and none shown twice."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from playwright.async_api import Page, expect

from tests.browser.cut_proxy import CutProxy
from tests.browser.dashboard import (
    ApiCalls,
    expect_live,
    history_status,
    open_order_row,
)
from tests.integration.conftest import StartGateway, get_json


@pytest.fixture
async def proxies() -> AsyncIterator[list[CutProxy]]:
    started: list[CutProxy] = []
    yield started
    for proxy in started:
        await proxy.stop()


async def order(client: httpx.AsyncClient, cid: str, **fields: Any) -> None:
    body = {"side": "BUY", "qty": 0.01, "price": 1000, "client_order_id": cid, **fields}
    response = await client.post("/api/order", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["ok"] is True, response.text


async def history_rows(page: Page) -> Counter[str]:
    ids = await page.locator("#history-table tbody tr").evaluate_all(
        "rows => rows.map(row => row.dataset.order)"
    )
    return Counter(ids)


async def expect_shows_exactly_the_gateway_state(page: Page, client: httpx.AsyncClient) -> None:
    """Every order once, with the gateway's status; every fill once (by its event id)."""
    states = (await get_json(client, "/api/orders_state"))["items"]
    for state in states:
        await expect(history_status(page, state["client_order_id"])).to_have_text(state["status"])
    rows = await history_rows(page)
    assert rows == Counter(state["client_order_id"] for state in states)
    fill_ids = [e["_id"] for e in (await get_json(client, "/api/orders"))["items"]
                if e["type"] == "fill"]  # fmt: skip
    fills = page.locator("#fills-table tbody tr")
    await expect(fills).to_have_count(len(fill_ids))
    shown = await fills.evaluate_all("rows => rows.map(row => Number(row.dataset.fill))")
    assert sorted(shown) == sorted(fill_ids)


async def test_stream_resumes_after_an_outage_and_a_restart(
    start_gateway: StartGateway, page: Page, proxies: list[CutProxy]
) -> None:
    server = await start_gateway(env={"VELOZ_SIM_TICK_MS": "20"})
    proxy = CutProxy(server.port)
    proxies.append(proxy)
    await proxy.start()
    calls = ApiCalls()
    calls.watch(page)

    await page.goto(proxy.url)
    await expect_live(page)
    async with server.client() as client:
        await order(client, "st-a")
        await expect(open_order_row(page, "st-a")).to_have_count(1)

        # --- the page loses its connection while the gateway goes on trading -----------------
        proxy.cut()
        await expect(page.get_by_role("status").filter(has_text="Reconnecting")).to_be_visible()
        await order(client, "st-b")
        await order(client, "st-c", order_type="market", price=None)
        response = await client.post("/api/cancel", json={"client_order_id": "st-a"})
        assert response.status_code == 200, response.text
        last_before = max(e["_id"] for e in (await get_json(client, "/api/orders"))["items"])

        proxy.restore()
        await expect_live(page)
        await expect(open_order_row(page, "st-b")).to_have_count(1)
        await expect(open_order_row(page, "st-a")).to_have_count(0)
        await expect_shows_exactly_the_gateway_state(page, client)
        resumed = [p for p in calls.paths() if p.startswith("api/stream?last_id=")]
        assert resumed, calls.paths()
        assert all(int(p.rsplit("=", 1)[1]) < last_before for p in resumed), resumed

    # --- the gateway restarts on the same data; the page follows it ----------------------------
    proxy.cut()
    server.kill()
    await expect(page.get_by_role("status").filter(has_text="Reconnecting")).to_be_visible()
    restarted = await start_gateway(env={"VELOZ_SIM_TICK_MS": "20"}, data_dir=server.data_dir)
    proxy.restore(restarted.port)
    # The page's retries have backed off to at most 5 s while the gateway was starting.
    await expect_live(page, timeout=15_000)
    async with restarted.client() as client:
        await order(client, "st-d")
        await order(client, "st-e", side="SELL", qty=0.005, order_type="market", price=None)
        await expect(history_status(page, "st-e")).to_have_text("FILLED")
        await expect_shows_exactly_the_gateway_state(page, client)
