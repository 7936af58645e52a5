"""Helpers for driving the web dashboard: locators by role and label, as a user finds things."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
from playwright.async_api import Locator, Page, Request, expect

ADMIN_PASSWORD = "admin-password-1"
VIEWER_PASSWORD = "viewer-password-1"
JWT_SECRET = "browser-tests-jwt-secret-0123456789abcdef"
AUTH_ENV = {
    "VELOZ_AUTH_ENABLED": "true",
    "VELOZ_ADMIN_PASSWORD": ADMIN_PASSWORD,
    "VELOZ_JWT_SECRET": JWT_SECRET,
    "VELOZ_RATE_LIMIT_CAPACITY": "10000",
}
# Calls that are public by contract and so carry no token.
PUBLIC_API = (
    "/api/auth/status", "/api/auth/login", "/api/auth/refresh", "/api/auth/logout", "/api/stream",
)  # fmt: skip


async def eventually(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    """Wait until `condition()` holds (for state the test itself collects)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"still not true after {timeout}s: {what}")
        await asyncio.sleep(0.05)


async def admin_headers(client: httpx.AsyncClient) -> dict[str, str]:
    login = await client.post(
        "/api/auth/login", json={"user_id": "admin", "password": ADMIN_PASSWORD}
    )
    return {"Authorization": f"Bearer {login.json()['access_token']}"}


async def create_viewer(client: httpx.AsyncClient) -> None:
    """The user `vera` with the viewer role, password VIEWER_PASSWORD."""
    headers = await admin_headers(client)
    response = await client.post(
        "/api/auth/users",
        json={"user_id": "vera", "password": VIEWER_PASSWORD, "roles": ["viewer"]},
        headers=headers,
    )
    assert response.status_code == 201, response.text


async def sign_in(page: Page, user_id: str, password: str) -> None:
    form = page.locator("#login-form")
    await form.get_by_label("User id").fill(user_id)
    await form.get_by_label("Password").fill(password)
    await form.get_by_role("button", name="Sign in").click()


async def expect_live(page: Page, timeout: float = 10_000) -> None:
    await expect(page.get_by_role("status").filter(has_text="Live")).to_be_visible(timeout=timeout)


async def expect_viewer_view(page: Page) -> None:
    """A viewer sees prices; what it may not read says so; no administration."""
    await expect(page.get_by_test_id("price")).to_have_text(re.compile(r"\d"))
    await expect(page.locator(".open-orders .panel-error")).to_have_text(
        "Required permissions: read:orders"
    )
    await expect(page.locator(".balances .panel-error")).to_have_text(
        "Required permissions: read:account"
    )
    await expect(page.get_by_role("region", name="Administration")).to_be_hidden()


async def place_order(
    page: Page,
    *,
    side: str = "Buy",
    order_type: str = "limit",
    qty: str,
    price: str = "",
    client_order_id: str = "",
) -> None:
    ticket = page.locator("#ticket")
    await ticket.get_by_label(side, exact=True).check()
    await ticket.get_by_label("Order type").select_option(order_type)
    await ticket.get_by_label("Quantity").fill(qty)
    if order_type == "limit":
        await ticket.get_by_label("Limit price").fill(price)
    await ticket.get_by_label("Client order id (optional)").fill(client_order_id)
    await ticket.get_by_role("button", name="Place order").click()


def open_order_row(page: Page, cid: str) -> Locator:
    return page.locator(f'#open-orders-table tbody tr[data-order="{cid}"]')


def history_status(page: Page, cid: str) -> Locator:
    return page.locator(f'#history-table tbody tr[data-order="{cid}"] .order-status')


def balance_cell(page: Page, asset: str, column: str) -> Locator:
    return page.locator(f'#balances-table tbody tr[data-asset="{asset}"] td.{column}')


@dataclass
class ApiCalls:
    """Every request the page makes to /api/*, to check what it sent."""

    requests: list[Request] = field(default_factory=list)
    done: list[Request] = field(default_factory=list)

    def watch(self, page: Page) -> None:
        page.on("request", self._seen)
        page.on("requestfinished", self._answered)
        page.on("requestfailed", self._answered)

    def _seen(self, request: Request) -> None:
        if "/api/" in request.url:
            self.requests.append(request)

    def _answered(self, request: Request) -> None:
        self.done.append(request)

    def unanswered(self) -> list[str]:
        """Calls still waiting for their answer, the endless stream aside."""
        return [
            request.url
            for request in self.requests
            if request not in self.done and "/api/stream" not in request.url
        ]

    def paths(self) -> list[str]:
        return [request.url.split("://", 1)[1].split("/", 1)[1] for request in self.requests]

    async def without_token(self) -> list[str]:
        """Protected calls sent without `Authorization: Bearer ...`."""
        missing = []
        for request in self.requests:
            path = "/" + request.url.split("://", 1)[1].split("/", 1)[1].split("?")[0]
            if path.startswith(PUBLIC_API):
                continue
            header = await request.header_value("authorization")
            if not header or not header.startswith("Bearer "):
                missing.append(f"{request.method} {path}")
        return missing
