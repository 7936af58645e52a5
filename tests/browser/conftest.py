"""Headless Chromium (Debian's package) driven by Playwright, against a live gateway.

Playwright's own browser download is not used: the system Chromium is launched through
`executable_path`. A failing test leaves a full-page screenshot in `test-artifacts/`.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright, expect

from tests.integration.conftest import PROJECT_ROOT, start_gateway

__all__ = ["start_gateway"]

ARTIFACTS = PROJECT_ROOT / "test-artifacts"
# Upper bound of every `expect(...)` wait: the machine may be busy; passing tests never wait it.
expect.set_options(timeout=10_000)
# Headless, no sandbox (tests may run as root), and nothing that reaches for the internet:
# this machine's network is closed and Chromium's background connections would only fail.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


def chromium_path() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.fail("Chromium is not installed: run scripts/ensure-system-packages (apt-get)")
    return path


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    report = yield
    if report.when == "call":
        item.stash[FAILED] = report.failed
    return report


FAILED = pytest.StashKey[bool]()


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
async def context(browser: Browser) -> AsyncIterator[BrowserContext]:
    ctx = await browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        yield ctx
    finally:
        await ctx.close()


@pytest.fixture
async def page(request: pytest.FixtureRequest, context: BrowserContext) -> AsyncIterator[Page]:
    """A fresh page; on failure its screenshot goes to test-artifacts/<test name>.png."""
    new_page = await context.new_page()
    yield new_page
    if request.node.stash.get(FAILED, False):
        ARTIFACTS.mkdir(exist_ok=True)
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.nodeid)
        path: Path = ARTIFACTS / f"{name}.png"
        try:
            await new_page.screenshot(path=str(path), full_page=True)
            print(f"screenshot saved: {path}")
        except Exception as exc:  # the page may be gone; the failure itself matters more
            print(f"no screenshot: {exc}")
