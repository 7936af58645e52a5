"""A page load with authentication on asks only what it may: before signing in nothing but the
public status, after signing in as a viewer nothing a viewer would be refused. So loading the
dashboard leaves no `auth_failed` or `permission_denied` entry in the audit log."""

from __future__ import annotations

from typing import Any

import httpx
from playwright.async_api import Page, expect

from tests.browser.dashboard import (
    AUTH_ENV,
    VIEWER_PASSWORD,
    ApiCalls,
    admin_headers,
    create_viewer,
    eventually,
    expect_live,
    expect_viewer_view,
    sign_in,
)
from tests.integration.conftest import StartGateway

REFUSALS = ("auth_failed", "permission_denied")
# What a viewer's page may ask for: the public status and stream, itself, and what it may read.
VIEWER_CALLS = {"api/auth/status", "api/auth/me", "api/config", "api/market", "api/stream"}


async def audit_entries(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    response = await client.get(
        "/api/audit/logs", params={"limit": 1000}, headers=await admin_headers(client)
    )
    assert response.status_code == 200, response.text
    entries: list[dict[str, Any]] = response.json()["logs"]
    return entries


def called(calls: ApiCalls) -> set[str]:
    return {path.split("?")[0] for path in calls.paths()}


async def test_page_loads_leave_no_refusals_in_the_audit_log(
    start_gateway: StartGateway, page: Page
) -> None:
    server = await start_gateway(env=AUTH_ENV)
    async with server.client() as client:
        await create_viewer(client)
    calls = ApiCalls()
    calls.watch(page)

    # Before signing in: the status says auth is on, and the sign-in form is all there is.
    await page.goto(server.url)
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    await eventually(lambda: not calls.unanswered(), "the page's calls are answered")
    assert calls.paths() == ["api/auth/status"]

    # Signed in as a viewer: what it may not read says so without asking; no administration.
    await sign_in(page, "vera", VIEWER_PASSWORD)
    await expect_live(page)
    await expect_viewer_view(page)
    await expect(page.locator("#session-user")).to_have_text("Signed in as vera")

    # A reload keeps the session and asks the same.
    await page.reload()
    await expect_live(page)
    await expect(page.locator(".balances .panel-error")).to_have_text(
        "Required permissions: read:account"
    )

    # After a sleep past the token's lifetime, the page renews it before sending it.
    await page.evaluate(
        """() => {
            const state = JSON.parse(sessionStorage.getItem("veloz.session"));
            sessionStorage.setItem("veloz.session", JSON.stringify({ ...state, obtainedAt: 0 }));
        }"""
    )
    before = len(calls.paths())
    await page.reload()
    await expect_live(page)
    reloaded = [path.split("?")[0] for path in calls.paths()[before:]]
    assert reloaded[:3] == ["api/auth/status", "api/auth/refresh", "api/auth/me"], reloaded

    await eventually(lambda: not calls.unanswered(), "the page's calls are answered")
    assert called(calls) - {"api/auth/login", "api/auth/refresh"} <= VIEWER_CALLS, calls.paths()
    assert await calls.without_token() == []

    async with server.client() as client:
        entries = await audit_entries(client)
    actions = [(entry["action"], entry["user_id"]) for entry in entries]
    assert ("login", "vera") in actions  # the log is read, and has the viewer's sign-in
    assert [entry for entry in entries if entry["action"] in REFUSALS] == []
