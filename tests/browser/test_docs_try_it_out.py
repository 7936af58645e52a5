"""Swagger UI and ReDoc in a real browser, with no internet: every request the page makes must
go to the gateway on loopback; "Try it out" calls the running gateway with either credential
from the Authorize dialog."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.async_api import BrowserContext, Page, Request, Route, expect

from tests.integration.conftest import GatewayServer, StartGateway

ADMIN_PASSWORD = "docs-admin-password"
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


@dataclass
class Traffic:
    """What the page asked for: loopback requests go through, anything else is refused."""

    outside: list[str] = field(default_factory=list)
    api_calls: list[Request] = field(default_factory=list)

    async def route(self, route: Route) -> None:
        url = route.request.url
        host = urlsplit(url).hostname or ""
        if url.startswith(("data:", "blob:")) or host in LOOPBACK:
            await route.continue_()
            return
        self.outside.append(url)
        await route.abort()

    def seen(self, request: Request) -> None:
        if "/api/" in request.url:
            self.api_calls.append(request)


@pytest.fixture
async def watched(context: BrowserContext) -> AsyncIterator[Traffic]:
    traffic = Traffic()
    await context.route("**/*", traffic.route)
    context.on("request", traffic.seen)
    yield traffic
    assert traffic.outside == [], "the docs reached beyond loopback"


@pytest.fixture
async def gateway(start_gateway: StartGateway) -> GatewayServer:
    return await start_gateway(
        env={"VELOZ_AUTH_ENABLED": "true", "VELOZ_ADMIN_PASSWORD": ADMIN_PASSWORD}
    )


async def admin_token(server: GatewayServer) -> str:
    async with server.client() as client:
        answer = await client.post(
            "/api/auth/login", json={"user_id": "admin", "password": ADMIN_PASSWORD}
        )
        assert answer.status_code == 200, answer.text
        token: str = answer.json()["access_token"]
        return token


async def authorize(page: Page, scheme: str, value: str) -> None:
    """Fill one scheme of Swagger's Authorize dialog and close it."""
    await page.locator("button.btn.authorize").first.click()
    dialog = page.locator(".auth-container").filter(has_text=scheme)
    await dialog.locator("input").fill(value)
    await dialog.locator("button.authorize").click()
    await expect(dialog.locator("button", has_text="Logout")).to_be_visible()
    await page.locator(".modal-ux .btn-done").first.click()
    await expect(page.locator(".modal-ux")).to_have_count(0)


ACCOUNT = "#operations-account-get_account"


async def open_try_it_out(page: Page) -> None:
    operation = page.locator(ACCOUNT)
    await operation.locator(".opblock-summary").click()
    await operation.locator(".try-out__btn").click()


async def execute(page: Page) -> int:
    """Press Execute on GET /api/account; the status, as the gateway sent it and Swagger shows."""
    operation = page.locator(ACCOUNT)
    async with page.expect_response(lambda r: r.url.endswith("/api/account")) as answer:
        await operation.locator(".execute").click()
    status = (await answer.value).status
    shown = operation.locator(".live-responses-table tr.response .response-col_status").first
    await expect(shown).to_have_text(re.compile(rf"^\s*{status}"))
    return status


async def test_swagger_try_it_out_with_a_bearer_token(
    gateway: GatewayServer, page: Page, watched: Traffic
) -> None:
    await page.goto(f"{gateway.url}/docs")
    await expect(page.locator(".swagger-ui .info .title")).to_contain_text("veloz-gateway")

    await open_try_it_out(page)
    assert await execute(page) == 401
    await authorize(page, "bearerAuth", await admin_token(gateway))
    assert await execute(page) == 200

    calls = [r for r in watched.api_calls if r.url.endswith("/api/account")]
    assert len(calls) == 2
    assert "authorization" not in await calls[0].all_headers()
    assert (await calls[1].all_headers())["authorization"].startswith("Bearer ey")
    body = page.locator("#operations-account-get_account .live-responses-table .microlight")
    await expect(body.first).to_contain_text('"balances"')


async def test_swagger_try_it_out_with_an_api_key(
    gateway: GatewayServer, page: Page, watched: Traffic
) -> None:
    async with gateway.client() as client:
        created = await client.post(
            "/api/auth/keys",
            json={"name": "docs", "permissions": ["trader"]},
            headers={"Authorization": f"Bearer {await admin_token(gateway)}"},
        )
        assert created.status_code == 201, created.text
        raw_key: str = created.json()["api_key"]

    await page.goto(f"{gateway.url}/docs")
    await authorize(page, "apiKeyAuth", raw_key)
    await open_try_it_out(page)
    assert await execute(page) == 200
    calls = [r for r in watched.api_calls if r.url.endswith("/api/account")]
    assert [(await r.all_headers()).get("x-api-key") for r in calls] == [raw_key]


async def test_redoc_renders_every_tag_offline(
    gateway: GatewayServer, page: Page, watched: Traffic
) -> None:
    await page.goto(f"{gateway.url}/redoc")
    await expect(page.locator("h1").first).to_contain_text("veloz-gateway")
    await expect(page.locator("h2").filter(has_text="Place an order").first).to_be_attached()
    async with httpx.AsyncClient(base_url=gateway.url) as client:
        tags = (await client.get("/openapi.json")).json()["tags"]
    menu = page.locator("[role=menuitem], .menu-content li")
    for tag in tags:
        await expect(menu.filter(has_text=tag["name"]).first).to_be_attached()
