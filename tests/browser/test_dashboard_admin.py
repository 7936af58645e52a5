"""Administration on the dashboard: API keys shown once and revoked, the audit log filtered;
hidden from a viewer; usable on a phone-sized screen."""

from __future__ import annotations

import re

from playwright.async_api import Page, expect

from tests.browser.dashboard import (
    ADMIN_PASSWORD,
    AUTH_ENV,
    VIEWER_PASSWORD,
    admin_headers,
    create_viewer,
    expect_live,
    expect_viewer_view,
    sign_in,
)
from tests.integration.conftest import StartGateway


async def test_api_keys_and_audit_log(start_gateway: StartGateway, page: Page) -> None:
    server = await start_gateway(env=AUTH_ENV)
    await page.goto(server.url)
    await sign_in(page, "admin", ADMIN_PASSWORD)
    await expect_live(page)
    admin = page.get_by_role("region", name="Administration")
    await expect(admin).to_be_visible()

    # --- create: the raw key is shown once, and works --------------------------------------
    await admin.get_by_label("Key name").fill("ui-bot")
    await admin.get_by_label("Permissions").select_option("trader")
    await admin.get_by_role("button", name="Create key").click()
    shown = page.get_by_test_id("new-api-key")
    await expect(shown).to_have_text(re.compile(r"^veloz_[0-9a-f]{64}$"))
    raw_key = await shown.inner_text()
    row = admin.locator("#keys-table tbody tr").filter(has_text="ui-bot")
    await expect(row.locator(".key-status")).to_have_text("active")
    await expect(row).to_contain_text("trader")
    async with server.client() as client:
        response = await client.get("/api/account", headers={"X-API-Key": raw_key})
        assert response.status_code == 200, response.text

    await admin.get_by_role("button", name="I have stored it").click()
    await expect(shown).to_be_hidden()
    assert raw_key not in await page.content()

    # --- revoke: two clicks, then the key stops working -------------------------------------
    await admin.get_by_role("button", name="Revoke key ui-bot").click()
    await admin.get_by_role("button", name="Confirm revoking key ui-bot").click()
    await expect(row.locator(".key-status")).to_have_text("revoked")
    async with server.client() as client:
        response = await client.get("/api/account", headers={"X-API-Key": raw_key})
        assert response.status_code == 401
        assert response.json() == {"error": "invalid_api_key"}

    # --- the audit log, reached by keyboard, filtered ---------------------------------------
    await admin.get_by_role("tab", name="API keys").focus()
    await page.keyboard.press("ArrowRight")
    await expect(admin.get_by_role("tab", name="Audit log")).to_have_attribute(
        "aria-selected", "true"
    )
    audit = admin.get_by_role("tabpanel", name="Audit log")
    await audit.get_by_label("Log type").select_option("api_key")
    await audit.get_by_role("button", name="Show entries").click()
    rows = audit.locator("#audit-table tbody tr")
    await expect(rows).to_have_count(2)
    assert await rows.evaluate_all("rows => rows.map(r => r.dataset.action)") == [
        "revoke_api_key",
        "create_api_key",
    ]
    await expect(audit.get_by_role("status")).to_have_text("Entries 1 to 2 of 2.")

    await audit.get_by_label("Log type").select_option("auth")
    await audit.get_by_label("Action").fill("login_failed")
    await audit.get_by_role("button", name="Show entries").click()
    await expect(audit.get_by_role("status")).to_have_text("Entries 0 to 0 of 0.")
    await audit.get_by_label("Action").fill("login")
    await audit.get_by_label("User id").fill("admin")
    await audit.get_by_role("button", name="Show entries").click()
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_contain_text("admin")


async def test_viewer_on_a_narrow_screen(start_gateway: StartGateway, page: Page) -> None:
    server = await start_gateway(env=AUTH_ENV)
    async with server.client() as client:
        await create_viewer(client)
    await page.set_viewport_size({"width": 390, "height": 844})
    await page.goto(server.url)
    await sign_in(page, "vera", VIEWER_PASSWORD)
    await expect_live(page)

    # A viewer sees prices; what it may not read says so; no administration.
    await expect_viewer_view(page)

    # Keyboard only: type, tab, Enter. The gateway's refusal is what the page shows.
    await page.get_by_label("Quantity").focus()
    await page.keyboard.type("0.01")
    await page.keyboard.press("Tab")
    await expect(page.get_by_label("Limit price")).to_be_focused()
    await page.keyboard.type("1000")
    await page.keyboard.press("Enter")
    await expect(page.locator("#ticket-error")).to_have_text(
        "Order refused: Required permissions: write:orders"
    )

    # Every control a user can reach has a name.
    unnamed = await page.evaluate(
        """() => [...document.querySelectorAll("input, select, button")]
            .filter((e) => e.offsetParent !== null)
            .filter((e) => !(e.labels && e.labels.length) && !e.getAttribute("aria-label")
                           && !e.textContent.trim())
            .map((e) => e.outerHTML)"""
    )
    assert unnamed == []

    # Nothing wider than the screen: tables scroll inside their own box.
    widths = await page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1], widths
    box = await page.get_by_role("button", name="Place order").bounding_box()
    assert box is not None
    assert box["x"] >= 0
    assert box["x"] + box["width"] <= widths[1]

    # Disabled by an admin: the next call is refused, renewal too, and the page asks to sign in.
    async with server.client() as client:
        response = await client.delete(
            "/api/auth/users", params={"user_id": "vera"}, headers=await admin_headers(client)
        )
        assert response.status_code == 200, response.text
    await page.get_by_role("button", name="Place order").click()
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    await expect(page.locator("#login-note")).to_have_text(
        "Your session has ended. Please sign in again."
    )
    assert await page.evaluate("sessionStorage.length") == 0
