"""Fixtures and helpers for the identity-and-access tests: auth-enabled settings, logins,
users and API keys made through the admin API, clients at chosen addresses, a raw ASGI call
for streaming routes, and a fake clock for the rate limiter."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.auth import ratelimit
from app.auth.tokens import TokenCodec
from app.core.config import Settings

ADMIN_PASSWORD = "admin-password-1"
USER_PASSWORD = "user-password-1"
RATE_LIMIT_HEADERS = ("x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset")
ALL_RATE_LIMIT_HEADERS = (*RATE_LIMIT_HEADERS, "retry-after")

SettingsFactory = Callable[..., Settings]


@pytest.fixture
def auth_settings(make_settings: SettingsFactory) -> SettingsFactory:
    """Settings with auth on, the admin user from VELOZ_ADMIN_PASSWORD and a roomy bucket."""

    def build(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "auth_enabled": True,
            "admin_password": ADMIN_PASSWORD,
            "rate_limit_capacity": 10_000,
        }
        values.update(overrides)
        return make_settings(**values)

    return build


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def api_key(raw: str) -> dict[str, str]:
    return {"X-API-Key": raw}


async def login_pair(
    client: httpx.AsyncClient, user_id: str, password: str = USER_PASSWORD
) -> dict[str, Any]:
    response = await client.post("/api/auth/login", json={"user_id": user_id, "password": password})
    assert response.status_code == 200, response.text
    pair: dict[str, Any] = response.json()
    return pair


async def login(client: httpx.AsyncClient, user_id: str, password: str = USER_PASSWORD) -> str:
    token: str = (await login_pair(client, user_id, password))["access_token"]
    return token


async def admin_login(client: httpx.AsyncClient) -> str:
    return await login(client, "admin", ADMIN_PASSWORD)


async def create_user(
    client: httpx.AsyncClient, admin_token: str, user_id: str, roles: Sequence[str]
) -> None:
    response = await client.post(
        "/api/auth/users",
        json={"user_id": user_id, "password": USER_PASSWORD, "roles": list(roles)},
        headers=bearer(admin_token),
    )
    assert response.status_code == 201, response.text


async def create_key(
    client: httpx.AsyncClient, token: str, permissions: Sequence[str], name: str = "test-key"
) -> tuple[str, str]:
    """A key owned by the token's user: (key_id, raw key)."""
    response = await client.post(
        "/api/auth/keys",
        json={"name": name, "permissions": list(permissions)},
        headers=bearer(token),
    )
    assert response.status_code == 201, response.text
    body = response.json()
    key_id: str = body["key_id"]
    raw: str = body["api_key"]
    return key_id, raw


async def revoke_key(client: httpx.AsyncClient, admin_token: str, key_id: str) -> None:
    response = await client.delete(
        "/api/auth/keys", params={"key_id": key_id}, headers=bearer(admin_token)
    )
    assert response.status_code == 200, response.text


async def disable_user(client: httpx.AsyncClient, admin_token: str, user_id: str) -> None:
    response = await client.delete(
        "/api/auth/users", params={"user_id": user_id}, headers=bearer(admin_token)
    )
    assert response.status_code == 200, response.text
    assert response.json()["disabled"] is True


def token_codec(settings: Settings) -> TokenCodec:
    """A codec with the gateway's own signing secret, read from <data_dir>/jwt_secret."""
    secret = (settings.data_dir / "jwt_secret").read_text(encoding="utf-8").strip()
    assert secret
    return TokenCodec(secret, settings.token_expiry)


def client_at(app: FastAPI, ip: str, port: int = 40_000) -> httpx.AsyncClient:
    """An in-process client whose socket peer address is `ip`."""
    transport = httpx.ASGITransport(app=app, client=(ip, port))
    return httpx.AsyncClient(transport=transport, base_url="http://gateway")


def rate_limit_headers(response: httpx.Response) -> dict[str, list[str]]:
    """Every rate-limit header present on `response`, with all of its values."""
    return {
        name: response.headers.get_list(name)
        for name in ALL_RATE_LIMIT_HEADERS
        if name in response.headers
    }


@dataclass
class RawResponse:
    """The start of an ASGI response: enough to judge a streaming route without reading it."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header_values(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key == name.lower()]


async def asgi_call(
    app: FastAPI,
    path: str,
    *,
    method: str = "GET",
    headers: Mapping[str, str] | None = None,
    client: tuple[str, int] = ("127.0.0.1", 40_000),
    timeout: float = 5.0,
) -> RawResponse:
    """Call the app directly, disconnecting as soon as the response has started.

    httpx's ASGITransport buffers whole responses, so an endless SSE stream would never come
    back; here the client "goes away" right after the status line, which ends the stream.
    """
    started = asyncio.Event()
    request_sent = False
    start: dict[str, Any] = {}
    chunks: list[bytes] = []

    async def receive() -> dict[str, Any]:
        nonlocal request_sent
        if not request_sent:
            request_sent = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await started.wait()
        return {"type": "http.disconnect"}

    async def send(message: Mapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            start.update(message)
            started.set()
        elif message["type"] == "http.response.body":
            chunks.append(bytes(message.get("body", b"")))

    raw_path, _, query = path.partition("?")
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": raw_path,
        "raw_path": raw_path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [
            (b"host", b"gateway"),
            *(
                (k.lower().encode("latin-1"), v.encode("latin-1"))
                for k, v in (headers or {}).items()
            ),
        ],
        "client": client,
        "server": ("gateway", 80),
        "state": {},
    }
    await asyncio.wait_for(app(scope, receive, send), timeout)
    assert start, f"no response started for {method} {path}"
    return RawResponse(
        status=int(start["status"]),
        headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in start.get("headers", [])],
        body=b"".join(chunks),
    )


class FakeClock:
    """Stands in for the `time` module inside app.auth.ratelimit: a monotonic and a wall clock
    that move only when told to."""

    def __init__(self, wall: float = 1_800_000_000.25) -> None:
        self.mono = 5_000.0
        self.wall = wall

    def monotonic(self) -> float:
        return self.mono

    def time(self) -> float:
        return self.wall

    def advance(self, seconds: float) -> None:
        self.mono += seconds
        self.wall += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """Freeze the rate limiter's clocks (only its module: the event loop keeps real time)."""
    fake = FakeClock()
    monkeypatch.setattr(ratelimit, "time", fake)
    return fake
