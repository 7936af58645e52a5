"""A trader's session on the dashboard, with authentication on, against a live gateway."""

from __future__ import annotations

import re

import httpx
from playwright.async_api import Page, Response, expect

from tests.browser.dashboard import (
    ADMIN_PASSWORD,
    AUTH_ENV,
    ApiCalls,
    balance_cell,
    eventually,
    expect_live,
    history_status,
    open_order_row,
    place_order,
    sign_in,
)
from tests.integration.conftest import StartGateway


async def admin_headers(client: httpx.AsyncClient) -> dict[str, str]:
    response = await client.post(
        "/api/auth/login", json={"user_id": "admin", "password": ADMIN_PASSWORD}
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def test_sign_in_trade_cancel_and_sign_out(start_gateway: StartGateway, page: Page) -> None:
    # Tokens live 4 s and rotate: the page has to renew them, and keep the newest, to go on.
    server = await start_gateway(
        env={
            **AUTH_ENV,
            "VELOZ_TOKEN_EXPIRY": "4",
            "VELOZ_REFRESH_ROTATION": "true",
            "VELOZ_MARKET_SYMBOLS": "BTCUSDT,ETHUSDT",
        }
    )
    calls = ApiCalls()
    calls.watch(page)
    refreshes: list[Response] = []
    page.on("response", lambda r: refreshes.append(r) if "/api/auth/refresh" in r.url else None)

    # --- the shell is public; the API asks for a login ---------------------------------------
    await page.goto(server.url)
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    await sign_in(page, "admin", "not-the-password")
    await expect(page.locator("#login-error")).to_have_text("Wrong user id or password.")
    calls.requests.clear()  # before signing in, the page's probe of the API went without one
    await sign_in(page, "admin", ADMIN_PASSWORD)
    await expect(page.get_by_text("Signed in as admin")).to_be_visible()
    await expect_live(page)

    # --- the price moves, and the chart with it ----------------------------------------------
    price = page.get_by_test_id("price")
    await expect(price).to_have_text(re.compile(r"^\d{1,3}(,\d{3})*\.\d{2}$"))
    first = await price.inner_text()
    await expect(price).not_to_have_text(first)
    points = int(await page.locator("#chart").get_attribute("data-points") or "0")
    await expect(page.locator("#chart")).not_to_have_attribute("data-points", str(points))

    # --- every symbol's last price; choosing one charts it ------------------------------------
    for symbol in ("BTCUSDT", "ETHUSDT"):
        await expect(page.locator(f'.ticker[data-symbol="{symbol}"]')).to_have_text(
            re.compile(rf"^{symbol} [\d,]+\.\d+$")
        )
    await page.get_by_role("button", name=re.compile("^ETHUSDT")).click()
    await expect(page.get_by_role("button", name=re.compile("^ETHUSDT"))).to_have_attribute(
        "aria-pressed", "true"
    )
    await expect(page.locator("#chart")).to_have_attribute(
        "aria-label", re.compile(r"^ETHUSDT price chart, last 2,\d{3}\.\d{2}$")
    )
    await page.get_by_role("region", name="Market").get_by_label("Symbol").select_option("BTCUSDT")
    await expect(page.locator("#chart")).to_have_attribute(
        "aria-label", re.compile(r"^BTCUSDT price chart")
    )

    # --- the ticket checks what the API checks, before sending anything ----------------------
    sent_before = calls.paths().count("api/order")
    await place_order(page, qty="0", price="abc", client_order_id="has space")
    await expect(page.locator("#ticket-qty-error")).to_have_text("quantity must be greater than 0")
    await expect(page.locator("#ticket-price-error")).to_have_text("price must be a number")
    await expect(page.locator("#ticket-cid-error")).to_have_text(
        "client order id: 1 to 64 printable characters, no spaces"
    )
    await expect(page.get_by_label("Quantity")).to_be_focused()
    assert calls.paths().count("api/order") == sent_before

    # --- a resting limit order appears, reserves funds, and is cancelled with one click ------
    await place_order(page, qty="0.01", price="1000", client_order_id="ui-rest-1")
    await expect(page.locator("#ticket-result")).to_have_text("Order ui-rest-1 accepted.")
    row = open_order_row(page, "ui-rest-1")
    await expect(row).to_have_count(1)
    await expect(row.locator(".status")).to_have_text("ACCEPTED")
    await expect(balance_cell(page, "USDT", "locked")).to_have_text("10")
    await expect(balance_cell(page, "USDT", "free")).to_have_text("99,990")
    # The Cancel button keeps the keyboard focus while live updates redraw the table.
    cancel = page.get_by_role("button", name="Cancel order ui-rest-1")
    await cancel.focus()
    async with server.client() as client:
        response = await client.post(
            "/api/order",
            json={"qty": 0.01, "price": 1000, "client_order_id": "ui-rest-2"},
            headers=await admin_headers(client),
        )
        assert response.status_code == 200, response.text
    await expect(open_order_row(page, "ui-rest-2")).to_have_count(1)
    await expect(cancel).to_be_focused()
    await page.keyboard.press("Enter")
    await expect(row).to_have_count(0)
    await expect(history_status(page, "ui-rest-1")).to_have_text("CANCELLED")
    await expect(balance_cell(page, "USDT", "locked")).to_have_text("10")
    await page.get_by_role("button", name="Cancel order ui-rest-2").click()
    await expect(open_order_row(page, "ui-rest-2")).to_have_count(0)
    await expect(balance_cell(page, "USDT", "locked")).to_have_text("0")
    await expect(balance_cell(page, "USDT", "free")).to_have_text("100,000")

    # --- a market order fills at once: a fill row, balances move ------------------------------
    await place_order(page, order_type="market", qty="0.01", client_order_id="ui-mkt-1")
    await expect(history_status(page, "ui-mkt-1")).to_have_text("FILLED")
    await expect(page.locator('#fills-table tbody tr[data-order="ui-mkt-1"]')).to_have_count(1)
    await expect(balance_cell(page, "BTC", "free")).to_have_text("0.01")
    assert await balance_cell(page, "USDT", "free").inner_text() != "100,000"

    # --- refusals show the API's own message ---------------------------------------------------
    # The same order again is an idempotent replay: its answer is the page's refusal.
    refused = {"side": "BUY", "symbol": "BTCUSDT", "qty": "900", "price": "42000",
               "order_type": "limit", "time_in_force": "GTC",
               "client_order_id": "ui-big-1"}  # fmt: skip
    await place_order(page, qty="900", price="42000", client_order_id="ui-big-1")
    async with server.client() as client:
        replay = await client.post("/api/order", json=refused, headers=await admin_headers(client))
    assert replay.status_code == 200, replay.text
    assert replay.json()["ok"] is False
    await expect(page.locator("#ticket-error")).to_have_text(
        f"Order ui-big-1 refused: {replay.json()['message']}"
    )
    await expect(history_status(page, "ui-big-1")).to_have_text("REJECTED")

    await place_order(page, qty="0.02", price="1000", client_order_id="ui-rest-1")
    await expect(page.locator("#ticket-error")).to_have_text(
        "Order refused: client_order_id 'ui-rest-1' was already used for a different order"
    )

    # --- tokens were renewed before they ran out, and every protected call carried one -------
    await eventually(lambda: any(r.status == 200 for r in refreshes), "a token refresh")
    assert [r.status for r in refreshes if r.status != 200] == []
    assert await calls.without_token() == []

    # --- sign out: the session ends on the gateway too ----------------------------------------
    await page.get_by_role("button", name="Log out").click()
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert any(path == "api/auth/logout" for path in calls.paths())
    assert await page.evaluate("sessionStorage.length") == 0
