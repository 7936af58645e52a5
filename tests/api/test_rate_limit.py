"""Token-bucket rate limiting over HTTP (contract §3, K8, F4) and the login brute-force limit.

Most tests freeze the rate limiter's clocks (`clock`), so the counts and the header values are
exact whatever the machine's speed; one test lets real time refill a bucket.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx

from tests.api.conftest import (
    ADMIN_PASSWORD,
    ALL_RATE_LIMIT_HEADERS,
    RATE_LIMIT_HEADERS,
    USER_PASSWORD,
    FakeClock,
    SettingsFactory,
    admin_login,
    api_key,
    asgi_call,
    bearer,
    client_at,
    create_key,
    create_user,
    login,
    rate_limit_headers,
)
from tests.conftest import running_gateway

LIMITED = {"error": "rate_limit_exceeded"}


def assert_limit_headers(
    response: httpx.Response,
    *,
    limit: int,
    remaining: int,
    reset: int,
    retry_after: int | None = None,
) -> None:
    """The rate-limit headers, each exactly once (F4), with these values."""
    want = {
        "x-ratelimit-limit": [str(limit)],
        "x-ratelimit-remaining": [str(remaining)],
        "x-ratelimit-reset": [str(reset)],
    }
    if retry_after is not None:
        want["retry-after"] = [str(retry_after)]
    assert rate_limit_headers(response) == want


def assert_no_limit_headers(response: httpx.Response) -> None:
    assert rate_limit_headers(response) == {}, response.headers


async def burst(
    client: httpx.AsyncClient, path: str, headers: dict[str, str], count: int, **kwargs: Any
) -> list[httpx.Response]:
    return [await client.get(path, headers=headers, **kwargs) for _ in range(count)]


# --- a burst, then 429 ---------------------------------------------------------------------------


async def test_a_burst_of_capacity_then_429(
    auth_settings: SettingsFactory, clock: FakeClock
) -> None:
    async with running_gateway(
        auth_settings(rate_limit_capacity=3, rate_limit_refill=1.0)
    ) as gateway:
        client = gateway.client
        admin = await admin_login(client)
        _, key = await create_key(client, admin, ["read"])
        wall = int(clock.wall)

        responses = await burst(client, "/api/market", api_key(key), 4)
        for response, remaining in zip(responses[:3], (2, 1, 0), strict=True):
            assert response.status_code == 200, response.text
            # The bucket is full again after (capacity - tokens) / refill seconds.
            assert_limit_headers(response, limit=3, remaining=remaining, reset=wall + 3 - remaining)
        refused = responses[3]
        assert refused.status_code == 429
        assert refused.json() == LIMITED
        # Retry-After = int((1 - 0 tokens) / 1.0) + 1; every header once.
        assert_limit_headers(refused, limit=3, remaining=0, reset=wall + 3, retry_after=2)
        for name in ALL_RATE_LIMIT_HEADERS:
            assert len(refused.headers.get_list(name)) == 1, name
        # The 429 is an ordinary error answer: JSON, with the security headers.
        assert refused.headers["content-type"] == "application/json"
        assert refused.headers["x-content-type-options"] == "nosniff"

        # Still refused while no time passes; refused requests take nothing.
        again = await client.get("/api/market", headers=api_key(key))
        assert again.status_code == 429
        assert_limit_headers(again, limit=3, remaining=0, reset=wall + 3, retry_after=2)


async def test_a_jwt_caller_gets_the_same_headers(
    auth_settings: SettingsFactory, clock: FakeClock
) -> None:
    async with running_gateway(
        auth_settings(rate_limit_capacity=2, rate_limit_refill=0.5)
    ) as gateway:
        admin = await admin_login(gateway.client)
        wall = int(clock.wall)
        first, second, third = await burst(gateway.client, "/api/config", bearer(admin), 3)
        assert_limit_headers(first, limit=2, remaining=1, reset=wall + 2)
        assert_limit_headers(second, limit=2, remaining=0, reset=wall + 4)
        assert third.status_code == 429
        assert third.json() == LIMITED
        # int((1 - 0) / 0.5) + 1 = 3
        assert_limit_headers(third, limit=2, remaining=0, reset=wall + 4, retry_after=3)


async def test_error_answers_of_a_rate_checked_request_carry_the_headers(
    auth_settings: SettingsFactory, clock: FakeClock
) -> None:
    async with running_gateway(
        auth_settings(rate_limit_capacity=3, rate_limit_refill=1.0)
    ) as gateway:
        admin = await admin_login(gateway.client)
        wall = int(clock.wall)
        response = await gateway.client.get(
            "/api/order_state", params={"client_order_id": "unknown"}, headers=bearer(admin)
        )
        assert response.status_code == 404
        assert response.json()["error"] == "not_found"
        assert_limit_headers(response, limit=3, remaining=2, reset=wall + 1)

        response = await gateway.client.get("/api/order_state", headers=bearer(admin))
        assert response.status_code == 400
        assert response.json()["error"] == "bad_params"
        assert_limit_headers(response, limit=3, remaining=1, reset=wall + 2)

        # A handler's own check runs after the rate limit (§2.6 step 7), so it costs a token.
        _, granular = await create_key(gateway.client, admin, ["admin:keys"])
        response = await gateway.client.post(
            "/api/auth/keys", json={"name": "x"}, headers=api_key(granular)
        )
        assert response.status_code == 403
        assert response.json() == {"error": "forbidden", "message": "admin permission required"}
        assert_limit_headers(response, limit=3, remaining=2, reset=wall + 1)


# --- whose bucket ----------------------------------------------------------------------------


async def test_buckets_are_per_api_key_and_per_user(
    auth_settings: SettingsFactory, clock: FakeClock
) -> None:
    async with running_gateway(
        auth_settings(rate_limit_capacity=3, rate_limit_refill=1.0)
    ) as gateway:
        client = gateway.client
        admin = await admin_login(client)
        await create_user(client, admin, "tom", ["trader"])
        await create_user(client, admin, "vera", ["viewer"])
        tom_first, tom_second = await login(client, "tom"), await login(client, "tom")
        vera = await login(client, "vera")
        clock.advance(3600)  # the set-up draws on the admin's bucket: fill it again
        # Two keys of one user.
        _, key_a = await create_key(client, admin, ["read"], name="a")
        _, key_b = await create_key(client, admin, ["read"], name="b")
        clock.advance(3600)

        responses = await burst(client, "/api/market", api_key(key_a), 4)
        assert [r.status_code for r in responses] == [200, 200, 200, 429]
        # The other key of the same user has its own full bucket, and so has the user's JWT.
        response = await client.get("/api/market", headers=api_key(key_b))
        assert response.status_code == 200
        assert response.headers["x-ratelimit-remaining"] == "2"
        response = await client.get("/api/market", headers=bearer(admin))
        assert response.status_code == 200
        assert response.headers["x-ratelimit-remaining"] == "2"

        # Two tokens of one user share the user's bucket.
        responses = await burst(client, "/api/market", bearer(tom_first), 3)
        assert [r.status_code for r in responses] == [200, 200, 200]
        response = await client.get("/api/market", headers=bearer(tom_second))
        assert response.status_code == 429
        assert response.json() == LIMITED
        # Another user at the same address is not affected.
        response = await client.get("/api/market", headers=bearer(vera))
        assert response.status_code == 200
        assert response.headers["x-ratelimit-remaining"] == "2"


async def test_refused_requests_take_no_token_and_carry_no_headers(
    auth_settings: SettingsFactory, clock: FakeClock
) -> None:
    async with running_gateway(
        auth_settings(rate_limit_capacity=3, rate_limit_refill=1.0)
    ) as gateway:
        client = gateway.client
        admin = await admin_login(client)
        await create_user(client, admin, "vera", ["viewer"])
        vera = await login(client, "vera")
        _, writer = await create_key(client, admin, ["write"])

        for _ in range(5):
            response = await client.get("/api/account", headers=bearer(vera))
            assert response.status_code == 403
            assert_no_limit_headers(response)
            response = await client.get("/api/market", headers=api_key(writer))
            assert response.status_code == 403
            assert_no_limit_headers(response)
            for headers, code in (
                ({}, "authentication_required"),
                (bearer("garbage"), "invalid_token"),
                (api_key("veloz_unknown"), "invalid_api_key"),
            ):
                response = await client.get("/api/market", headers=headers)
                assert response.status_code == 401
                assert response.json() == {"error": code}
                assert_no_limit_headers(response)

        # Every bucket involved is still full.
        response = await client.get("/api/market", headers=bearer(vera))
        assert response.headers["x-ratelimit-remaining"] == "2"
        response = await client.post(
            "/api/cancel", json={"client_order_id": "none"}, headers=api_key(writer)
        )
        assert response.status_code == 404
        assert response.headers["x-ratelimit-remaining"] == "2"
        response = await client.get("/api/health")  # the address's bucket
        assert response.headers["x-ratelimit-remaining"] == "2"


async def test_public_routes_are_limited_per_client_address(
    auth_settings: SettingsFactory, clock: FakeClock
) -> None:
    async with running_gateway(
        auth_settings(rate_limit_capacity=3, rate_limit_refill=1.0)
    ) as gateway:
        wall = int(clock.wall)
        async with (
            client_at(gateway.app, "198.51.100.1") as first,
            client_at(gateway.app, "198.51.100.2") as second,
        ):
            responses = await burst(first, "/api/health", {}, 4)
            assert [r.status_code for r in responses] == [200, 200, 200, 429]
            assert_limit_headers(responses[0], limit=3, remaining=2, reset=wall + 1)
            assert responses[3].json() == LIMITED
            assert_limit_headers(responses[3], limit=3, remaining=0, reset=wall + 3, retry_after=2)

            # /api/stream draws on the same per-address bucket.
            refused = await asgi_call(gateway.app, "/api/stream", client=("198.51.100.1", 1))
            assert refused.status == 429
            assert json.loads(refused.body) == LIMITED
            assert refused.header_values("retry-after") == ["2"]

            # Another address has its own bucket.
            response = await second.get("/api/health")
            assert response.status_code == 200
            assert_limit_headers(response, limit=3, remaining=2, reset=wall + 1)
            started = await asgi_call(gateway.app, "/api/stream", client=("198.51.100.2", 1))
            assert started.status == 200
            # A stream carries no rate-limit headers (contract §3), but it took a token.
            assert started.header_values("x-ratelimit-remaining") == []
            response = await second.get("/api/health")
            assert_limit_headers(response, limit=3, remaining=0, reset=wall + 3)

            # An authenticated caller at the exhausted address uses its own bucket.
            admin = await admin_login(first)
            response = await first.get("/api/market", headers=bearer(admin))
            assert response.status_code == 200
            assert response.headers["x-ratelimit-remaining"] == "2"


async def test_health_and_the_auth_endpoints_are_not_limited(
    auth_settings: SettingsFactory, clock: FakeClock
) -> None:
    async with running_gateway(
        auth_settings(rate_limit_capacity=2, rate_limit_refill=1.0)
    ) as gateway:
        client = gateway.client
        for _ in range(5):
            response = await client.get("/health")
            assert response.status_code == 200
            assert_no_limit_headers(response)
            response = await client.post("/api/auth/login", json={})
            assert response.status_code == 400
            assert_no_limit_headers(response)
            response = await client.post("/api/auth/refresh", json={"refresh_token": "x.y.z"})
            assert response.status_code == 401
            assert response.json() == {"error": "invalid_refresh_token"}
            assert_no_limit_headers(response)
            response = await client.post("/api/auth/logout", json={"refresh_token": "x.y.z"})
            assert response.status_code == 200
            assert_no_limit_headers(response)
        for _ in range(3):  # more than the capacity
            response = await client.post(
                "/api/auth/login", json={"user_id": "admin", "password": ADMIN_PASSWORD}
            )
            assert response.status_code == 200
            assert_no_limit_headers(response)
        # None of it touched the address's bucket.
        response = await client.get("/api/health")
        assert response.status_code == 200
        assert response.headers["x-ratelimit-remaining"] == "1"


async def test_no_rate_limit_with_auth_disabled(make_settings: SettingsFactory) -> None:
    settings = make_settings(rate_limit_capacity=1, rate_limit_refill=0.001)
    async with running_gateway(settings) as gateway:
        client = gateway.client
        for _ in range(3):
            for path, params, status in (
                ("/api/market", None, 200),
                ("/api/health", None, 200),
                ("/api/order_state", {"client_order_id": "unknown"}, 404),
                ("/health", None, 200),
            ):
                response = await client.get(path, params=params, headers=api_key("garbage"))
                assert response.status_code == status, (path, response.text)
                assert_no_limit_headers(response)
            stream = await asgi_call(gateway.app, "/api/stream")
            assert stream.status == 200
            assert [h for h, _ in stream.headers if h in ALL_RATE_LIMIT_HEADERS] == []


# --- refill ------------------------------------------------------------------------------------


async def test_the_bucket_refills_over_time(
    auth_settings: SettingsFactory, clock: FakeClock
) -> None:
    async with running_gateway(
        auth_settings(rate_limit_capacity=3, rate_limit_refill=1.0)
    ) as gateway:
        client = gateway.client
        admin = await admin_login(client)
        headers = bearer(admin)
        statuses = [r.status_code for r in await burst(client, "/api/market", headers, 4)]
        assert statuses == [200, 200, 200, 429]
        clock.advance(0.5)  # half a token
        response = await client.get("/api/market", headers=headers)
        assert response.status_code == 429
        wall = int(clock.wall)
        # Retry-After = int((1 - 0.5) / 1) + 1, reset = int(now) + int(2.5)
        assert_limit_headers(response, limit=3, remaining=0, reset=wall + 2, retry_after=1)

        clock.advance(0.5)  # one whole token
        response = await client.get("/api/market", headers=headers)
        assert response.status_code == 200
        assert response.headers["x-ratelimit-remaining"] == "0"
        assert (await client.get("/api/market", headers=headers)).status_code == 429

        clock.advance(3600)  # never more than the capacity
        wall = int(clock.wall)
        response = await client.get("/api/market", headers=headers)
        assert response.status_code == 200
        assert_limit_headers(response, limit=3, remaining=2, reset=wall + 1)


async def test_the_bucket_refills_in_real_time(auth_settings: SettingsFactory) -> None:
    async with running_gateway(
        auth_settings(rate_limit_capacity=2, rate_limit_refill=10.0)
    ) as gateway:
        client = gateway.client
        admin = await admin_login(client)
        statuses: list[int] = []
        for _ in range(12):
            response = await client.get("/api/market", headers=bearer(admin))
            statuses.append(response.status_code)
            if response.status_code == 429:
                break
        # The burst passes, and the bucket runs dry well before 12 requests.
        assert statuses[:2] == [200, 200]
        assert statuses[-1] == 429
        assert response.json() == LIMITED
        # int((1 - tokens) / 10) + 1 with 0 <= tokens < 1
        assert response.headers["retry-after"] == "1"
        await asyncio.sleep(0.3)  # three tokens' worth; the bucket holds two
        response = await client.get("/api/market", headers=bearer(admin))
        assert response.status_code == 200
        assert response.headers["x-ratelimit-remaining"] == "1"


# --- the login brute-force limit ---------------------------------------------------------------


async def test_five_failed_logins_block_that_user_at_that_address(
    auth_settings: SettingsFactory,
) -> None:
    async with running_gateway(auth_settings()) as gateway:
        client = gateway.client
        admin = await admin_login(client)
        await create_user(client, admin, "alice", ["viewer"])

        for _ in range(5):
            response = await client.post(
                "/api/auth/login", json={"user_id": "alice", "password": "wrong-password"}
            )
            assert response.status_code == 401
            assert response.json() == {"error": "invalid_credentials"}
        # The 6th attempt is refused before the password is looked at, even the right one.
        response = await client.post(
            "/api/auth/login", json={"user_id": "alice", "password": USER_PASSWORD}
        )
        assert response.status_code == 429
        body = response.json()
        assert body["error"] == "rate_limit_exceeded"
        assert set(body) <= {"error", "message"}
        assert 1 <= int(response.headers["retry-after"]) <= 300
        assert response.headers.get_list("retry-after") == [response.headers["retry-after"]]
        assert [h for h in RATE_LIMIT_HEADERS if h in response.headers] == []

        # Another user id from the same address is not affected ...
        assert (await login(client, "admin", ADMIN_PASSWORD)) != ""
        # ... nor the same user id from another address.
        async with client_at(gateway.app, "198.51.100.7") as elsewhere:
            assert (await login(elsewhere, "alice")) != ""
