"""GET /api/auth/status (public) and GET /api/auth/me (any valid credentials): what a client
learns before and after signing in, and that asking leaves no refusal in the audit log."""

from __future__ import annotations

from typing import Any

import httpx

from tests.api.conftest import (
    RATE_LIMIT_HEADERS,
    SettingsFactory,
    admin_login,
    api_key,
    bearer,
    create_key,
    create_user,
    login,
)
from tests.conftest import running_gateway

VIEWER = ["read:market", "read:config"]
TRADER = ["read:market", "read:orders", "read:account", "read:config", "write:orders",
          "write:cancel"]  # fmt: skip
ALL_NINE = [*TRADER, "admin:keys", "admin:users", "admin:config"]
ME_FIELDS = ["user_id", "auth_method", "roles", "grants", "permissions", "key_id"]
REFUSALS = ("auth_failed", "permission_denied")


async def me(client: httpx.AsyncClient, headers: dict[str, str]) -> dict[str, Any]:
    response = await client.get("/api/auth/me", headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert list(body) == ME_FIELDS
    return body


async def refusals(client: httpx.AsyncClient, admin: str) -> list[tuple[str, Any]]:
    response = await client.get("/api/audit/logs", params={"limit": 1000}, headers=bearer(admin))
    assert response.status_code == 200, response.text
    return [
        (entry["action"], entry["details"])
        for entry in response.json()["logs"]
        if entry["action"] in REFUSALS
    ]


async def test_with_auth_off_everyone_is_anonymous_with_every_permission(
    make_settings: SettingsFactory,
) -> None:
    async with running_gateway(make_settings()) as gateway:
        client = gateway.client
        response = await client.get("/api/auth/status")
        assert response.status_code == 200
        assert response.json() == {"auth_enabled": False, "methods": []}
        assert not [name for name in RATE_LIMIT_HEADERS if name in response.headers]

        anonymous = {
            "user_id": "anonymous",
            "auth_method": "anonymous",
            "roles": ["admin"],
            "grants": ["read", "write", "admin", "admin:keys", "admin:users", "admin:config"],
            "permissions": ALL_NINE,
            "key_id": None,
        }
        for headers in ({}, bearer("garbage"), api_key("garbage")):
            assert await me(client, headers) == anonymous


async def test_status_needs_no_credentials_and_ignores_bad_ones(
    auth_settings: SettingsFactory,
) -> None:
    async with running_gateway(auth_settings()) as gateway:
        client = gateway.client
        for headers in ({}, bearer("garbage"), api_key("veloz_" + "0" * 64)):
            response = await client.get("/api/auth/status", headers=headers)
            assert response.status_code == 200
            assert response.json() == {"auth_enabled": True, "methods": ["password", "api_key"]}
            assert response.headers["x-ratelimit-limit"] == "10000"
        assert await refusals(client, await admin_login(client)) == []


async def test_me_with_a_token_tells_the_user_its_roles_and_permissions(
    auth_settings: SettingsFactory,
) -> None:
    async with running_gateway(auth_settings()) as gateway:
        client = gateway.client
        admin = await admin_login(client)
        await create_user(client, admin, "vera", ["viewer"])
        await create_user(client, admin, "tess", ["viewer", "trader"])
        viewer, trader = await login(client, "vera"), await login(client, "tess")

        assert await me(client, bearer(viewer)) == {
            "user_id": "vera", "auth_method": "jwt", "roles": ["viewer"], "grants": ["viewer"],
            "permissions": VIEWER, "key_id": None,
        }  # fmt: skip
        assert await me(client, bearer(trader)) == {
            "user_id": "tess", "auth_method": "jwt", "roles": ["viewer", "trader"],
            "grants": ["viewer", "trader"], "permissions": TRADER, "key_id": None,
        }  # fmt: skip
        assert await me(client, bearer(admin)) == {
            "user_id": "admin", "auth_method": "jwt", "roles": ["admin"], "grants": ["admin"],
            "permissions": ALL_NINE, "key_id": None,
        }  # fmt: skip

        # Asking is allowed to every role: a viewer's call is no permission_denied.
        assert await refusals(client, admin) == []

        # Roles are read at request time, so a change shows on the same token.
        response = await client.post(
            "/api/auth/roles", json={"user_id": "vera", "roles": ["trader"]}, headers=bearer(admin)
        )
        assert response.status_code == 200, response.text
        assert (await me(client, bearer(viewer)))["permissions"] == TRADER


async def test_me_with_an_api_key_tells_the_key_and_its_grants(
    auth_settings: SettingsFactory,
) -> None:
    async with running_gateway(auth_settings()) as gateway:
        client = gateway.client
        admin = await admin_login(client)
        read_id, read_key = await create_key(client, admin, ["read"], name="reader")
        mixed_id, mixed_key = await create_key(
            client, admin, ["viewer", "write:cancel"], name="mixed"
        )
        default_id, default_key = await create_key(client, admin, [], name="default")

        assert await me(client, api_key(read_key)) == {
            "user_id": "admin", "auth_method": "api_key", "roles": [], "grants": ["read"],
            "permissions": ["read:market", "read:orders", "read:account", "read:config"],
            "key_id": read_id,
        }  # fmt: skip
        assert await me(client, api_key(mixed_key)) == {
            "user_id": "admin", "auth_method": "api_key", "roles": ["viewer"],
            "grants": ["viewer", "write:cancel"],
            "permissions": ["read:market", "read:config", "write:cancel"], "key_id": mixed_id,
        }  # fmt: skip
        default = await me(client, api_key(default_key))
        assert (default["grants"], default["key_id"]) == (["read", "write"], default_id)
        assert default["permissions"] == TRADER


async def test_me_without_or_with_invalid_credentials_answers_401(
    auth_settings: SettingsFactory,
) -> None:
    async with running_gateway(auth_settings()) as gateway:
        client = gateway.client
        admin = await admin_login(client)
        cases = [
            ({}, "authentication_required"),
            (bearer("not.a.jwt"), "invalid_token"),
            ({**bearer("not.a.jwt"), **api_key("veloz_" + "0" * 64)}, "invalid_token"),
            (api_key("veloz_" + "0" * 64), "invalid_api_key"),
        ]
        for headers, code in cases:
            response = await client.get("/api/auth/me", headers=headers)
            assert response.status_code == 401, headers
            assert response.json() == {"error": code}
        # Unlike the status, `me` is a protected route: its refusals are recorded.
        recorded = await refusals(client, admin)
        assert sorted(recorded, key=str) == sorted(
            [("auth_failed", {"path": "/api/auth/me", "error": code}) for _, code in cases],
            key=str,
        )


async def test_status_is_limited_per_address_and_me_per_caller(
    auth_settings: SettingsFactory,
) -> None:
    limited = {"error": "rate_limit_exceeded"}
    async with running_gateway(
        auth_settings(rate_limit_capacity=2, rate_limit_refill=0.001)
    ) as gateway:
        client = gateway.client
        statuses = [(await client.get("/api/auth/status")).status_code for _ in range(3)]
        assert statuses == [200, 200, 429]
        response = await client.get("/api/auth/status")
        assert (response.status_code, response.json()) == (429, limited)

        admin = await admin_login(client)  # login is not limited; the user has its own bucket
        codes = [
            (await client.get("/api/auth/me", headers=bearer(admin))).status_code for _ in range(3)
        ]
        assert codes == [200, 200, 429]
