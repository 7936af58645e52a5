"""Two gateways sharing one Redis (each in-process, each with its own PostgreSQL database):
one rate-limit budget per principal, revocations and failed logins seen by both at once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack

import httpx
import pytest
from redis.asyncio import Redis

from app.core.config import Settings
from app.replication.changes import ChangeFeed
from app.replication.shared_auth import RedisSharedAuth
from tests.conftest import Gateway, PostgresServer, running_gateway

ADMIN_PASSWORD = "admin-password-1"
JWT_SECRET = "j" * 40


@pytest.fixture
async def pair(
    make_settings: Callable[..., Settings], postgres_server: PostgresServer, redis_url: str
) -> AsyncIterator[tuple[Gateway, Gateway]]:
    async with AsyncExitStack() as stack:
        gateways = []
        for name in ("a", "b"):
            settings = make_settings(
                data_dir=make_settings().data_dir / name,
                database_url=postgres_server.create_database(),
                redis_url=redis_url,
                master_key="m" * 40,
                auth_enabled=True,
                admin_password=ADMIN_PASSWORD,
                jwt_secret=JWT_SECRET,
                api_key_secret="k" * 40,
                rate_limit_capacity=4,
                rate_limit_refill=0.001,
            )
            gateways.append(await stack.enter_async_context(running_gateway(settings)))
        yield gateways[0], gateways[1]


async def _login(client: httpx.AsyncClient, password: str = ADMIN_PASSWORD) -> httpx.Response:
    return await client.post("/api/auth/login", json={"user_id": "admin", "password": password})


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_one_rate_limit_budget_across_replicas(pair: tuple[Gateway, Gateway]) -> None:
    a, b = pair
    token = (await _login(a.client)).json()["access_token"]
    statuses = []
    remaining = []
    for gateway in (a, b, a, b, a, b):
        response = await gateway.client.get("/api/orders", headers=_bearer(token))
        statuses.append(response.status_code)
        remaining.append(response.headers.get("x-ratelimit-remaining"))

    assert statuses == [200, 200, 200, 200, 429, 429]
    assert remaining == ["3", "2", "1", "0", "0", "0"]
    refused = await b.client.get("/api/orders", headers=_bearer(token))
    assert refused.json()["error"] == "rate_limit_exceeded"
    assert int(refused.headers["retry-after"]) >= 1


async def test_logout_on_one_replica_revokes_on_the_other(pair: tuple[Gateway, Gateway]) -> None:
    a, b = pair
    tokens = (await _login(a.client)).json()
    assert (await b.client.get("/api/account", headers=_bearer(tokens["access_token"]))).is_success

    logout = await a.client.post(
        "/api/auth/logout",
        json={"refresh_token": tokens["refresh_token"]},
        headers=_bearer(tokens["access_token"]),
    )
    assert logout.status_code == 200, logout.text

    refused = await b.client.get("/api/account", headers=_bearer(tokens["access_token"]))
    assert (refused.status_code, refused.json()["error"]) == (401, "invalid_token")
    refresh = await b.client.post(
        "/api/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
    )
    assert (refresh.status_code, refresh.json()["error"]) == (401, "invalid_refresh_token")


async def test_failed_logins_count_across_replicas(pair: tuple[Gateway, Gateway]) -> None:
    a, b = pair
    for gateway in (a, b, a, b, a):
        assert (await _login(gateway.client, "wrong-password")).status_code == 401

    blocked = await _login(b.client)  # even the right password waits now

    assert (blocked.status_code, blocked.json()["error"]) == (429, "rate_limit_exceeded")
    assert int(blocked.headers["retry-after"]) >= 1


async def test_the_bucket_is_atomic_under_concurrent_takers(redis_url: str) -> None:
    redis = Redis.from_url(redis_url)
    shared = RedisSharedAuth(redis, ChangeFeed(redis, "test"))
    try:
        results = await asyncio.gather(
            *(shared.take_token("user:many", 20, 0.0001) for _ in range(60))
        )
    finally:
        await redis.aclose()

    assert sum(allowed for allowed, _ in results) == 20
    assert min(tokens for _, tokens in results) < 1
