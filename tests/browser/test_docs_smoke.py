"""The interactive API docs render in a real browser with no internet access."""

from __future__ import annotations

from playwright.async_api import Page, expect

from tests.integration.conftest import StartGateway


async def test_swagger_ui_renders_the_operations(start_gateway: StartGateway, page: Page) -> None:
    server = await start_gateway()
    failed: list[str] = []
    page.on("requestfailed", lambda request: failed.append(request.url))
    await page.goto(f"{server.url}/docs")
    await expect(page.locator(".swagger-ui .info .title")).to_contain_text("veloz-gateway")
    await expect(page.locator(".opblock").first).to_be_visible()
    assert failed == []
