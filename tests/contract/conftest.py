"""The contract suite: the original gateway's documented API (python-gateway-api.md), asserted
against this gateway as a client sees it, with authentication off and on.

Every test that takes `api` runs twice: `auth-off` (the default: no credentials, no rate-limit
headers) and `auth-on` (an admin's Bearer token on every request). Test modules share one
gateway per mode, so they run in the module's event loop (`pytestmark` below in each module).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import pytest_asyncio

from app.core.config import Settings
from tests.conftest import Gateway, running_gateway

ADMIN_PASSWORD = "contract-admin-password"
SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "x-xss-protection": "1; mode=block",
    "content-security-policy": "default-src 'self'; script-src 'self' 'unsafe-inline'; "
    "style-src 'self' 'unsafe-inline'",
    "referrer-policy": "strict-origin-when-cross-origin",
    "permissions-policy": "geolocation=(), microphone=(), camera=()",
}
RATE_LIMIT_HEADERS = ("x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset")


@dataclass
class Api:
    """A running gateway and the headers of the caller the contract's examples assume."""

    gateway: Gateway
    auth_on: bool
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def client(self) -> httpx.AsyncClient:
        return self.gateway.client

    async def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        return await self.client.request(method, path, headers=headers, **kwargs)


def keys_in_order(body: dict[str, Any]) -> list[str]:
    return list(body)


def assert_error(
    response: httpx.Response, status: int, code: str, message: str | None = None
) -> None:
    """The contract's error body: `{"error": code}` plus an optional message (exact if given)."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == code, body
    assert set(body) <= {"error", "message", "details"}, body
    if message is not None:
        assert body.get("message") == message, body


@pytest_asyncio.fixture(params=["auth-off", "auth-on"], scope="module", loop_scope="module")
async def api(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Api]:
    """One gateway per module and mode: the contract's examples do not depend on each other."""
    auth_on = request.param == "auth-on"
    with pytest.MonkeyPatch.context() as env:
        for name in [n for n in os.environ if n.startswith("VELOZ_")]:
            env.delenv(name)
        settings = Settings(
            data_dir=tmp_path_factory.mktemp("contract") / "data",
            sim_seed=7,
            sim_tick_ms=60_000,
            auth_enabled=auth_on,
            admin_password=ADMIN_PASSWORD,
            rate_limit_capacity=10_000,
        )
    async with running_gateway(settings) as gateway:
        headers: dict[str, str] = {}
        if auth_on:
            login = await gateway.client.post(
                "/api/auth/login", json={"user_id": "admin", "password": ADMIN_PASSWORD}
            )
            assert login.status_code == 200, login.text
            headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        yield Api(gateway, auth_on, headers)
