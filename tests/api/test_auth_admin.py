"""Administration over HTTP: the admin bootstrap (F6), API keys (§4.11), roles (§4.12), users
(additive), their persistence (F13), and secrets kept out of logs, answers and storage.

Admin calls use an access token issued by the gateway's own codec (what a login answers), so that
only the tests about logging in pay for argon2.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from app.core.config import Settings
from app.main import create_app
from tests.conftest import Gateway, running_gateway

ADMIN_PASSWORD = "correct-horse-1"
VALID_ROLES = "['viewer', 'trader', 'admin']"
KEY_FIELDS = [
    "key_id",
    "user_id",
    "name",
    "created_at",
    "last_used_at",
    "revoked",
    "permissions",
    "expires_at",
]
USER_FIELDS = ["user_id", "roles", "disabled", "created_at", "updated_at", "last_login_at"]
STORE_MESSAGE = "Store this key securely. It will not be shown again."
KEY_ID = re.compile(r"vk_[0-9a-f]{16}")
RAW_KEY = re.compile(r"veloz_[0-9a-f]{64}")
ADMIN_ONLY = {"error": "forbidden", "message": "admin permission required"}
INVALID_API_KEY = {"error": "invalid_api_key"}


# --- helpers ---------------------------------------------------------------------------------


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(auth_enabled=True, admin_password=ADMIN_PASSWORD)


@pytest.fixture
async def gw(settings: Settings) -> AsyncIterator[Gateway]:
    async with running_gateway(settings) as running:
        yield running


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def as_user(gw: Gateway, user_id: str = "admin") -> dict[str, str]:
    """An Authorization header with a fresh access token of `user_id`, as a login would give."""
    return bearer(gw.runtime.auth.tokens.issue_access(user_id))


def as_key(raw: str) -> dict[str, str]:
    return {"X-API-Key": raw}


def bad(message: str) -> dict[str, str]:
    return {"error": "bad_params", "message": message}


def required(permission: str) -> dict[str, str]:
    return {"error": "forbidden", "message": f"Required permissions: {permission}"}


async def login(gw: Gateway, user_id: str, password: str) -> httpx.Response:
    return await gw.client.post("/api/auth/login", json={"user_id": user_id, "password": password})


async def create_key(gw: Gateway, headers: dict[str, str] | None = None, **body: Any) -> Any:
    response = await gw.client.post("/api/auth/keys", json=body, headers=headers or as_user(gw))
    assert response.status_code == 201, response.text
    return response.json()


async def list_keys(gw: Gateway, headers: dict[str, str] | None = None) -> list[dict[str, Any]]:
    response = await gw.client.get("/api/auth/keys", headers=headers or as_user(gw))
    assert response.status_code == 200, response.text
    body = response.json()
    assert list(body) == ["keys"]
    keys: list[dict[str, Any]] = body["keys"]
    return keys


async def key_info(gw: Gateway, key_id: str) -> dict[str, Any]:
    return next(item for item in await list_keys(gw) if item["key_id"] == key_id)


async def create_user(
    gw: Gateway, user_id: str, password: str, roles: list[str] | None = None
) -> httpx.Response:
    body: dict[str, Any] = {"user_id": user_id, "password": password}
    if roles is not None:
        body["roles"] = roles
    return await gw.client.post("/api/auth/users", json=body, headers=as_user(gw))


async def set_roles(gw: Gateway, body: dict[str, Any], caller: str = "admin") -> httpx.Response:
    return await gw.client.post("/api/auth/roles", json=body, headers=as_user(gw, caller))


async def get_roles(gw: Gateway, user_id: str | None = None) -> Any:
    params = {"user_id": user_id} if user_id is not None else {}
    response = await gw.client.get("/api/auth/roles", params=params, headers=as_user(gw))
    assert response.status_code == 200, response.text
    return response.json()


def database_bytes(settings: Settings) -> bytes:
    """The SQLite database as stored: the main file and its write-ahead log."""
    data = b""
    for suffix in ("", "-wal"):
        path = Path(f"{settings.data_dir / 'veloz.db'}{suffix}")
        if path.exists():
            data += path.read_bytes()
    assert data, "no database file"
    return data


def secret_file(settings: Settings, name: str) -> str:
    return (settings.data_dir / name).read_text(encoding="utf-8").strip()


@asynccontextmanager
async def capturing_gateway(settings: Settings, handler: logging.Handler) -> AsyncIterator[Gateway]:
    """running_gateway, with `handler` on the loggers create_app configures (they do not
    propagate to the root logger, where caplog listens)."""
    app = create_app(settings)
    loggers = [logging.getLogger(name) for name in ("veloz", "uvicorn")]
    for logger in loggers:
        logger.addHandler(handler)
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
                yield Gateway(app, client)
    finally:
        for logger in loggers:
            logger.removeHandler(handler)


# --- admin bootstrap (F6) --------------------------------------------------------------------


async def test_admin_logs_in_and_reaches_admin_endpoints(gw: Gateway) -> None:
    response = await login(gw, "admin", ADMIN_PASSWORD)
    assert response.status_code == 200
    headers = bearer(response.json()["access_token"])
    keys = await gw.client.get("/api/auth/keys", headers=headers)
    assert keys.status_code == 200
    assert list(keys.json()) == ["keys"]
    for path in ("/api/auth/users", "/api/auth/roles"):
        assert (await gw.client.get(path, headers=headers)).status_code == 200, path
    admin = await get_roles(gw, "admin")
    assert list(admin) == ["user_id", "roles", "created_at", "updated_at", "created_by"]
    assert admin["user_id"] == "admin"
    assert admin["roles"] == ["admin"]
    assert admin["created_by"] == "system"
    # Users without an assignment default to viewer.
    assert await get_roles(gw, "nobody") == {
        "user_id": "nobody",
        "roles": ["viewer"],
        "is_default": True,
    }


async def test_restart_with_another_admin_password_updates_it(
    make_settings: Callable[..., Settings], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    first = make_settings(auth_enabled=True, admin_password=ADMIN_PASSWORD)
    async with capturing_gateway(first, caplog.handler) as gw:
        assert (await login(gw, "admin", ADMIN_PASSWORD)).status_code == 200
    created = [r.getMessage() for r in caplog.records if r.name == "veloz.auth"]
    assert created == ["admin user created from VELOZ_ADMIN_PASSWORD"]

    caplog.clear()
    async with capturing_gateway(first, caplog.handler):
        pass  # the same password: nothing to change
    assert [r.getMessage() for r in caplog.records if r.name == "veloz.auth"] == []

    caplog.clear()
    second = make_settings(auth_enabled=True, admin_password="battery-staple-2")
    async with capturing_gateway(second, caplog.handler) as gw:
        old = await login(gw, "admin", ADMIN_PASSWORD)
        assert old.status_code == 401
        assert old.json() == {"error": "invalid_credentials"}
        new = await login(gw, "admin", "battery-staple-2")
        assert new.status_code == 200
        keys = await gw.client.get("/api/auth/keys", headers=bearer(new.json()["access_token"]))
        assert keys.status_code == 200
    updated = [r.getMessage() for r in caplog.records if r.name == "veloz.auth"]
    assert updated == ["admin user updated from VELOZ_ADMIN_PASSWORD"]


# --- API keys (§4.11) ------------------------------------------------------------------------


async def test_create_and_list_api_keys(gw: Gateway, settings: Settings) -> None:
    before = int(time.time())
    response = await gw.client.post(
        "/api/auth/keys", json={"name": "  bot  ", "permissions": ["trader"]}, headers=as_user(gw)
    )
    assert response.status_code == 201
    created = response.json()
    assert list(created) == ["key_id", "api_key", "message"]
    assert KEY_ID.fullmatch(created["key_id"])
    assert RAW_KEY.fullmatch(created["api_key"])
    assert created["message"] == STORE_MESSAGE

    keys = await list_keys(gw)
    assert [item["key_id"] for item in keys] == [created["key_id"]]
    item = keys[0]
    assert list(item) == KEY_FIELDS
    assert before <= item["created_at"] <= int(time.time())
    assert item == {
        "key_id": created["key_id"],
        "user_id": "admin",
        "name": "bot",
        "created_at": item["created_at"],
        "last_used_at": None,
        "revoked": False,
        "permissions": ["trader"],
        "expires_at": None,
    }
    second = await create_key(gw, name="second")
    assert second["key_id"] != created["key_id"]
    assert second["api_key"] != created["api_key"]
    assert [k["key_id"] for k in await list_keys(gw)] == [created["key_id"], second["key_id"]]
    listing = await gw.client.get("/api/auth/keys", headers=as_user(gw))
    assert created["api_key"] not in listing.text
    assert second["api_key"] not in listing.text
    assert created["api_key"].removeprefix("veloz_") not in listing.text

    # Nor is it in the database: only its HMAC-SHA256 under the api_key_secret.
    raw = created["api_key"]
    assert (await gw.client.get("/api/orders", headers=as_key(raw))).status_code == 200
    keyed = hmac.new(
        secret_file(settings, "api_key_secret").encode(), raw.encode(), hashlib.sha256
    ).hexdigest()
    stored = database_bytes(settings)
    assert raw.encode() not in stored
    assert raw.removeprefix("veloz_").encode() not in stored
    assert hashlib.sha256(raw.encode()).hexdigest().encode() not in stored  # not a plain hash
    assert keyed.encode() in stored
    assert created["key_id"].encode() in stored


async def test_create_api_key_errors_and_default_permissions(gw: Gateway) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({}, "name is required"),
        ({"name": ""}, "name is required"),
        ({"name": "   "}, "name is required"),
        ({"name": None}, "name is required"),
        ({"name": 5}, "name is required"),
        ({"name": "k", "permissions": "read"}, "permissions must be a list"),
        ({"name": "k", "permissions": {"read": True}}, "permissions must be a list"),
        ({"name": "k", "permissions": 5}, "permissions must be a list"),
        ({"name": "k", "permissions": [5]}, "permissions must be a list of names"),
        ({"name": "k", "permissions": [""]}, "permissions must be a list of names"),
        (
            {"name": "k", "expires_at": int(time.time()) - 1},
            "expires_at must be a future Unix time in seconds",
        ),
        ({"name": "k", "expires_at": "soon"}, "expires_at must be a future Unix time in seconds"),
        ({"name": "k", "expires_at": True}, "expires_at must be a future Unix time in seconds"),
    ]
    for body, message in cases:
        response = await gw.client.post("/api/auth/keys", json=body, headers=as_user(gw))
        assert response.status_code == 400, body
        assert response.json() == bad(message), body
    invalid = await gw.client.post("/api/auth/keys", content="{", headers=as_user(gw))
    assert invalid.status_code == 400
    assert invalid.json() == {"error": "bad_json", "message": "request body is not valid JSON"}
    assert await list_keys(gw) == []  # nothing was created

    # Falsy permissions mean ["read", "write"].
    bodies: list[dict[str, Any]] = [
        {"name": "missing"},
        {"name": "null", "permissions": None},
        {"name": "empty", "permissions": []},
        {"name": "blank", "permissions": ""},
    ]
    for body in bodies:
        created = await create_key(gw, **body)
        assert (await key_info(gw, created["key_id"]))["permissions"] == ["read", "write"], body
        # read + write: orders can be read, admin endpoints cannot be reached.
        assert (await gw.client.get("/api/orders", headers=as_key(created["api_key"]))).is_success
        keys = await gw.client.get("/api/auth/keys", headers=as_key(created["api_key"]))
        assert keys.status_code == 403
        assert keys.json() == required("admin:keys")


async def test_key_management_needs_the_literal_admin(gw: Gateway) -> None:
    keys_admin = await create_key(gw, name="granular", permissions=["admin:keys"])
    headers = as_key(keys_admin["api_key"])
    # admin:keys reaches the listing (its owner's keys) ...
    assert [k["key_id"] for k in await list_keys(gw, headers)] == [keys_admin["key_id"]]
    # ... but creating and revoking need the word "admin" itself.
    response = await gw.client.post("/api/auth/keys", json={"name": "x"}, headers=headers)
    assert response.status_code == 403
    assert response.json() == ADMIN_ONLY
    response = await gw.client.delete(
        "/api/auth/keys", params={"key_id": keys_admin["key_id"]}, headers=headers
    )
    assert response.status_code == 403
    assert response.json() == ADMIN_ONLY
    assert (await key_info(gw, keys_admin["key_id"]))["revoked"] is False

    # A key with the legacy "admin" permission may create keys, owned by its own user.
    legacy = await create_key(gw, name="legacy-admin", permissions=["admin"])
    made = await create_key(gw, headers=as_key(legacy["api_key"]), name="made-by-key")
    assert (await key_info(gw, made["key_id"]))["user_id"] == "admin"

    # Another user with the admin role is a literal admin too; the key is theirs.
    assert (await create_user(gw, "root2", "root2-password", ["admin"])).status_code == 201
    theirs = await create_key(gw, headers=as_user(gw, "root2"), name="root2-key")
    assert (await key_info(gw, theirs["key_id"]))["user_id"] == "root2"

    # Without admin:keys at all: 403 with the permission; without credentials: 401.
    viewer = await create_key(gw, name="viewer", permissions=["viewer"])
    for method in ("GET", "POST", "DELETE"):
        response = await gw.client.request(
            method, "/api/auth/keys", headers=as_key(viewer["api_key"])
        )
        assert response.status_code == 403, method
        assert response.json() == required("admin:keys"), method
        response = await gw.client.request(method, "/api/auth/keys")
        assert response.status_code == 401, method
        assert response.json() == {"error": "authentication_required"}, method


async def test_api_key_authenticates_with_its_permissions(gw: Gateway) -> None:
    trader = await create_key(gw, name="trader", permissions=["trader"])
    viewer = await create_key(gw, name="viewer", permissions=["viewer"])
    assert (await key_info(gw, trader["key_id"]))["last_used_at"] is None

    before = int(time.time())
    orders = await gw.client.get("/api/orders_state", headers=as_key(trader["api_key"]))
    assert orders.status_code == 200
    used = await key_info(gw, trader["key_id"])
    assert used["last_used_at"] is not None
    assert before <= used["last_used_at"] <= int(time.time())
    assert (await key_info(gw, viewer["key_id"]))["last_used_at"] is None

    assert (await gw.client.get("/api/market", headers=as_key(viewer["api_key"]))).is_success
    response = await gw.client.get("/api/orders_state", headers=as_key(viewer["api_key"]))
    assert response.status_code == 403
    assert response.json() == required("read:orders")

    for raw in ("veloz_" + "0" * 64, trader["api_key"] + "0", trader["api_key"].upper(), "x"):
        response = await gw.client.get("/api/market", headers=as_key(raw))
        assert response.status_code == 401, raw
        assert response.json() == INVALID_API_KEY, raw


async def test_revoked_and_expired_keys_are_refused(gw: Gateway) -> None:
    created = await create_key(gw, name="doomed")
    raw = created["api_key"]
    assert (await gw.client.get("/api/market", headers=as_key(raw))).status_code == 200

    for _ in range(2):  # revoking an already-revoked key is still 200
        response = await gw.client.delete(
            "/api/auth/keys", params={"key_id": created["key_id"]}, headers=as_user(gw)
        )
        assert response.status_code == 200
        assert response.json() == {"ok": True, "key_id": created["key_id"]}

    response = await gw.client.get("/api/market", headers=as_key(raw))
    assert response.status_code == 401
    assert response.json() == INVALID_API_KEY
    info = await key_info(gw, created["key_id"])
    assert info["revoked"] is True
    assert info["name"] == "doomed"

    unknown = await gw.client.delete(
        "/api/auth/keys", params={"key_id": "vk_0000000000000000"}, headers=as_user(gw)
    )
    assert unknown.status_code == 404
    assert unknown.json() == {"error": "not_found"}
    for params in ({}, {"key_id": ""}, {"key_id": "  "}):
        missing = await gw.client.delete("/api/auth/keys", params=params, headers=as_user(gw))
        assert missing.status_code == 400, params
        assert missing.json() == bad("key_id is required"), params

    # Expired keys are refused too (expires_at cannot be set in the past over HTTP).
    expires_at = int(time.time()) + 3600
    created = await create_key(gw, name="short-lived", expires_at=expires_at)
    assert (await key_info(gw, created["key_id"]))["expires_at"] == expires_at
    assert (await gw.client.get("/api/market", headers=as_key(created["api_key"]))).is_success

    gw.runtime.auth.keys[created["key_id"]].expires_at = int(time.time()) - 1
    response = await gw.client.get("/api/market", headers=as_key(created["api_key"]))
    assert response.status_code == 401
    assert response.json() == INVALID_API_KEY
    assert (await key_info(gw, created["key_id"]))["revoked"] is False


async def test_api_keys_survive_a_restart(settings: Settings) -> None:
    async with running_gateway(settings) as gw:
        kept = await create_key(gw, name="kept", permissions=["trader"])
        revoked = await create_key(gw, name="revoked", permissions=["read", "admin:keys"])
        assert (await gw.client.get("/api/orders", headers=as_key(kept["api_key"]))).is_success
        response = await gw.client.delete(
            "/api/auth/keys", params={"key_id": revoked["key_id"]}, headers=as_user(gw)
        )
        assert response.status_code == 200
        before = await list_keys(gw)
        used = {k["key_id"]: k["last_used_at"] for k in before}
        assert used[kept["key_id"]] is not None
        assert used[revoked["key_id"]] is None

    async with running_gateway(settings) as gw:
        after = await list_keys(gw)
        assert len(after) == 2
        assert {k["key_id"]: k for k in after} == {k["key_id"]: k for k in before}
        assert (await gw.client.get("/api/orders", headers=as_key(kept["api_key"]))).is_success
        response = await gw.client.get("/api/auth/keys", headers=as_key(kept["api_key"]))
        assert response.status_code == 403
        assert response.json() == required("admin:keys")
        response = await gw.client.get("/api/market", headers=as_key(revoked["api_key"]))
        assert response.status_code == 401
        assert response.json() == INVALID_API_KEY


# --- roles (§4.12) ---------------------------------------------------------------------------


async def test_roles_overview_and_one_user(gw: Gateway) -> None:
    assert (await set_roles(gw, {"user_id": "alice", "roles": ["trader"]})).status_code == 200
    assert (await set_roles(gw, {"user_id": "bob", "roles": ["viewer", "trader"]})).is_success
    body = await get_roles(gw)
    assert list(body) == ["users", "metrics", "available_roles"]
    assert body["available_roles"] == ["viewer", "trader", "admin"]
    users = {entry["user_id"]: entry for entry in body["users"]}
    assert set(users) == {"admin", "alice", "bob"}
    for entry in body["users"]:
        assert list(entry) == ["user_id", "roles", "created_at", "updated_at"]
    assert users["alice"]["roles"] == ["trader"]
    assert users["bob"]["roles"] == ["viewer", "trader"]
    assert list(body["metrics"]) == ["total_users", "role_counts"]
    assert body["metrics"]["total_users"] == 3
    counts: dict[str, int] = {}
    for entry in body["users"]:
        for role in entry["roles"]:
            counts[role] = counts.get(role, 0) + 1
    assert body["metrics"]["role_counts"] == counts
    assert counts == {"admin": 1, "trader": 2, "viewer": 1}

    assert await get_roles(gw, "ghost") == {
        "user_id": "ghost",
        "roles": ["viewer"],
        "is_default": True,
    }
    assert (await create_user(gw, "root2", "root2-password", ["admin"])).status_code == 201
    before = int(time.time())
    response = await set_roles(gw, {"user_id": "erin", "roles": ["trader"]}, caller="root2")
    assert response.status_code == 200
    body = await get_roles(gw, "erin")
    assert list(body) == ["user_id", "roles", "created_at", "updated_at", "created_by"]
    assert body["user_id"] == "erin"
    assert body["roles"] == ["trader"]
    assert body["created_by"] == "root2"  # the caller
    assert before <= body["created_at"] == body["updated_at"] <= int(time.time())


async def test_assign_roles_errors(gw: Gateway) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({}, "user_id is required"),
        ({"user_id": "", "roles": ["viewer"]}, "user_id is required"),
        ({"user_id": "  ", "role": "viewer"}, "user_id is required"),
        ({"user_id": 5, "roles": ["viewer"]}, "user_id is required"),
        ({"user_id": "u", "roles": "viewer"}, "roles must be a list"),
        ({"user_id": "u", "roles": {"viewer": 1}}, "roles must be a list"),
        ({"user_id": "u", "roles": ["x"]}, f"Invalid roles: ['x']. Valid roles: {VALID_ROLES}"),
        (
            {"user_id": "u", "roles": ["viewer", "x", "god"]},
            f"Invalid roles: ['x', 'god']. Valid roles: {VALID_ROLES}",
        ),
        ({"user_id": "u", "role": "god"}, f"Invalid role: god. Valid roles: {VALID_ROLES}"),
        ({"user_id": "u"}, "role or roles is required"),
        ({"user_id": "u", "role": ""}, "role or roles is required"),
        ({"user_id": "u", "role": None, "roles": None}, "role or roles is required"),
    ]
    for body, message in cases:
        response = await set_roles(gw, body)
        assert response.status_code == 400, body
        assert response.json() == bad(message), body
    assert (await get_roles(gw, "u"))["is_default"] is True  # nothing was stored

    # Without admin:users, every roles and users route answers 403.
    assert (await create_user(gw, "hank", "hank-password", ["trader"])).status_code == 201
    headers = as_user(gw, "hank")
    for method, path in (
        ("GET", "/api/auth/roles"),
        ("POST", "/api/auth/roles"),
        ("DELETE", "/api/auth/roles"),
        ("GET", "/api/auth/users"),
        ("POST", "/api/auth/users"),
        ("DELETE", "/api/auth/users"),
    ):
        response = await gw.client.request(method, path, headers=headers)
        assert response.status_code == 403, (method, path)
        assert response.json() == required("admin:users"), (method, path)


async def test_assign_roles_replace_and_append(gw: Gateway) -> None:
    response = await set_roles(gw, {"user_id": "frank", "roles": ["viewer"]})
    assert response.status_code == 200
    assert list(response.json()) == ["ok", "user_id", "roles"]
    assert response.json() == {"ok": True, "user_id": "frank", "roles": ["viewer"]}

    appended = await set_roles(gw, {"user_id": "frank", "role": "trader"})
    assert appended.status_code == 200
    assert list(appended.json()) == ["ok", "user_id", "role", "roles"]
    assert appended.json() == {
        "ok": True,
        "user_id": "frank",
        "role": "trader",
        "roles": ["viewer", "trader"],
    }

    again = await set_roles(gw, {"user_id": "frank", "role": "trader"})
    assert again.status_code == 200
    assert list(again.json()) == ["ok", "message", "user_id", "roles"]
    assert again.json() == {
        "ok": False,
        "message": "User already has this role",
        "user_id": "frank",
        "roles": ["viewer", "trader"],
    }

    # `roles` replaces, and wins over `role`.
    replaced = await set_roles(gw, {"user_id": "frank", "roles": ["admin"], "role": "viewer"})
    assert replaced.json() == {"ok": True, "user_id": "frank", "roles": ["admin"]}
    assert (await get_roles(gw, "frank"))["roles"] == ["admin"]


async def test_remove_role(gw: Gateway) -> None:
    await set_roles(gw, {"user_id": "gina", "roles": ["viewer", "trader"]})
    cases: list[tuple[dict[str, str], int, dict[str, str]]] = [
        ({"role": "viewer"}, 400, bad("user_id is required")),
        ({"user_id": "", "role": "viewer"}, 400, bad("user_id is required")),
        ({"user_id": "gina"}, 400, bad("role is required")),
        ({"user_id": "gina", "role": ""}, 400, bad("role is required")),
        (
            {"user_id": "gina", "role": "admin"},
            404,
            {"error": "not_found", "message": "User does not have this role"},
        ),
    ]
    for params, status, error in cases:
        response = await gw.client.delete("/api/auth/roles", params=params, headers=as_user(gw))
        assert response.status_code == status, params
        assert response.json() == error, params

    for role, remaining in (("viewer", ["trader"]), ("trader", [])):
        response = await gw.client.delete(
            "/api/auth/roles", params={"user_id": "gina", "role": role}, headers=as_user(gw)
        )
        assert response.status_code == 200
        assert list(response.json()) == ["ok", "user_id", "role", "roles"]
        assert response.json() == {"ok": True, "user_id": "gina", "role": role, "roles": remaining}
    # The last role removed leaves an explicit empty list, not the default.
    body = await get_roles(gw, "gina")
    assert body["roles"] == []
    assert "is_default" not in body
    gone = await gw.client.delete(
        "/api/auth/roles", params={"user_id": "gina", "role": "trader"}, headers=as_user(gw)
    )
    assert gone.status_code == 404
    assert gone.json() == {"error": "not_found", "message": "User does not have this role"}


async def test_role_assignments_survive_a_restart(settings: Settings) -> None:
    async with running_gateway(settings) as gw:
        await set_roles(gw, {"user_id": "ivy", "roles": ["viewer"]})
        await set_roles(gw, {"user_id": "ivy", "role": "trader"})
        await set_roles(gw, {"user_id": "jack", "roles": ["trader"]})
        await gw.client.delete(
            "/api/auth/roles", params={"user_id": "jack", "role": "trader"}, headers=as_user(gw)
        )
        before = await get_roles(gw)
        ivy = await get_roles(gw, "ivy")
    async with running_gateway(settings) as gw:
        assert await get_roles(gw) == before
        assert await get_roles(gw, "ivy") == ivy
        assert ivy["roles"] == ["viewer", "trader"]
        assert ivy["created_by"] == "admin"
        assert (await get_roles(gw, "jack"))["roles"] == []


# --- users (additive) ------------------------------------------------------------------------


async def test_create_list_and_log_in_users(gw: Gateway) -> None:
    before = int(time.time())
    response = await create_user(gw, "trader1", "trader-pass-1", ["trader"])
    assert response.status_code == 201
    assert list(response.json()) == ["ok", "user_id", "roles", "disabled"]
    assert response.json() == {
        "ok": True,
        "user_id": "trader1",
        "roles": ["trader"],
        "disabled": False,
    }
    response = await create_user(gw, "viewer1", "viewer-pass-1")
    assert response.json() == {
        "ok": True,
        "user_id": "viewer1",
        "roles": ["viewer"],
        "disabled": False,
    }
    assert (await get_roles(gw, "viewer1"))["created_by"] == "admin"

    response = await gw.client.get("/api/auth/users", headers=as_user(gw))
    assert response.status_code == 200
    assert list(response.json()) == ["users"]
    users = {u["user_id"]: u for u in response.json()["users"]}
    assert set(users) == {"admin", "trader1", "viewer1"}
    for user in users.values():
        assert list(user) == USER_FIELDS
    listed = users["trader1"]
    assert listed["roles"] == ["trader"]
    assert listed["disabled"] is False
    assert before <= listed["created_at"] == listed["updated_at"] <= int(time.time())
    assert listed["last_login_at"] is None
    assert "pass-1" not in response.text
    assert "$argon2" not in response.text

    trader = await login(gw, "trader1", "trader-pass-1")
    assert trader.status_code == 200
    response = await gw.client.get("/api/auth/users", headers=as_user(gw))
    listed = next(u for u in response.json()["users"] if u["user_id"] == "trader1")
    assert before <= listed["last_login_at"] <= int(time.time())
    trader_headers = bearer(trader.json()["access_token"])
    assert (await gw.client.get("/api/orders", headers=trader_headers)).status_code == 200
    response = await gw.client.get("/api/auth/keys", headers=trader_headers)
    assert response.status_code == 403
    assert response.json() == required("admin:keys")

    viewer = await login(gw, "viewer1", "viewer-pass-1")
    assert viewer.status_code == 200
    viewer_headers = bearer(viewer.json()["access_token"])
    assert (await gw.client.get("/api/market", headers=viewer_headers)).status_code == 200
    response = await gw.client.get("/api/orders", headers=viewer_headers)
    assert response.status_code == 403
    assert response.json() == required("read:orders")
    response = await gw.client.post(
        "/api/order", json={"side": "BUY", "qty": 0.01, "price": 1000}, headers=viewer_headers
    )
    assert response.status_code == 403
    assert response.json() == required("write:orders")

    # Roles are read at request time: the same token gains the new role's permissions.
    await set_roles(gw, {"user_id": "viewer1", "role": "trader"})
    assert (await gw.client.get("/api/orders", headers=viewer_headers)).status_code == 200


async def test_create_user_errors(gw: Gateway) -> None:
    assert (await create_user(gw, "kate", "kate-password")).status_code == 201
    user_id_message = "user_id must be 1-64 letters, digits or . _ @ -"
    password_message = "password must be at least 8 characters"
    cases: list[tuple[dict[str, Any], str]] = [
        ({"password": "long-enough"}, user_id_message),
        ({"user_id": "", "password": "long-enough"}, user_id_message),
        ({"user_id": "has space", "password": "long-enough"}, user_id_message),
        ({"user_id": "a/b", "password": "long-enough"}, user_id_message),
        ({"user_id": "x" * 65, "password": "long-enough"}, user_id_message),
        ({"user_id": 5, "password": "long-enough"}, user_id_message),
        ({"user_id": "lena"}, password_message),
        ({"user_id": "lena", "password": "short"}, password_message),
        ({"user_id": "lena", "password": "1234567"}, password_message),
        ({"user_id": "lena", "password": 123456789}, password_message),
        ({"user_id": "lena", "password": "long-enough", "roles": "trader"}, "roles must be a list"),
        ({"user_id": "lena", "password": "long-enough", "roles": {}}, "roles must be a list"),
        (
            {"user_id": "lena", "password": "long-enough", "roles": ["god"]},
            f"Invalid roles: ['god']. Valid roles: {VALID_ROLES}",
        ),
    ]
    for body, message in cases:
        response = await gw.client.post("/api/auth/users", json=body, headers=as_user(gw))
        assert response.status_code == 400, body
        assert response.json() == bad(message), body
    for user_id in ("kate", "admin"):
        response = await create_user(gw, user_id, "another-password")
        assert response.status_code == 409, user_id
        assert response.json() == {
            "error": "user_exists",
            "message": f"user {user_id!r} already exists",
        }
    # Nothing above created a user, and kate keeps her password.
    users = (await gw.client.get("/api/auth/users", headers=as_user(gw))).json()["users"]
    assert sorted(u["user_id"] for u in users) == ["admin", "kate"]
    assert (await login(gw, "kate", "kate-password")).status_code == 200


async def test_disable_user(gw: Gateway) -> None:
    await create_user(gw, "ned", "ned-password", ["trader"])
    pair = (await login(gw, "ned", "ned-password")).json()
    headers = bearer(pair["access_token"])
    assert (await gw.client.get("/api/orders", headers=headers)).status_code == 200

    response = await gw.client.delete(
        "/api/auth/users", params={"user_id": "ned"}, headers=as_user(gw)
    )
    assert response.status_code == 200
    assert response.json() == {"ok": True, "user_id": "ned", "roles": ["trader"], "disabled": True}

    refused = await login(gw, "ned", "ned-password")
    assert refused.status_code == 401
    assert refused.json() == {"error": "invalid_credentials"}
    response = await gw.client.get("/api/orders", headers=headers)
    assert response.status_code == 401
    assert response.json() == {"error": "invalid_token"}
    response = await gw.client.post(
        "/api/auth/refresh", json={"refresh_token": pair["refresh_token"]}
    )
    assert response.status_code == 401
    assert response.json() == {"error": "invalid_refresh_token"}
    users = (await gw.client.get("/api/auth/users", headers=as_user(gw))).json()["users"]
    assert next(u for u in users if u["user_id"] == "ned")["disabled"] is True

    unknown = await gw.client.delete(
        "/api/auth/users", params={"user_id": "ghost"}, headers=as_user(gw)
    )
    assert unknown.status_code == 404
    assert unknown.json() == {"error": "not_found", "message": "no user 'ghost'"}
    missing = await gw.client.delete("/api/auth/users", headers=as_user(gw))
    assert missing.status_code == 400
    assert missing.json() == bad("user_id is required")


async def test_users_survive_a_restart_with_hashed_passwords(settings: Settings) -> None:
    async with running_gateway(settings) as gw:
        assert (await create_user(gw, "olga", "olga-password", ["trader"])).status_code == 201
        assert (await create_user(gw, "pete", "pete-password")).status_code == 201
        assert (await create_user(gw, "quinn", "quinn-pass", ["trader"])).status_code == 201
        await gw.client.delete("/api/auth/users", params={"user_id": "pete"}, headers=as_user(gw))
        before = (await gw.client.get("/api/auth/users", headers=as_user(gw))).json()

    with sqlite3.connect(settings.data_dir / "veloz.db") as db:
        hashes = dict(db.execute("SELECT user_id, password_hash FROM users").fetchall())
        # quinn loses the explicit assignment: a user without one is a viewer.
        db.execute("DELETE FROM role_assignments WHERE user_id = 'quinn'")
    db.close()
    assert set(hashes) == {"admin", "olga", "pete", "quinn"}
    assert all(value.startswith("$argon2") for value in hashes.values())
    stored = database_bytes(settings)
    for password in (ADMIN_PASSWORD, "olga-password", "pete-password", "quinn-pass"):
        assert password.encode() not in stored

    async with running_gateway(settings) as gw:
        after = (await gw.client.get("/api/auth/users", headers=as_user(gw))).json()
        quinn = next(u for u in after["users"] if u["user_id"] == "quinn")
        assert quinn["roles"] == ["viewer"]
        assert await get_roles(gw, "quinn") == {
            "user_id": "quinn",
            "roles": ["viewer"],
            "is_default": True,
        }
        quinn["roles"] = ["trader"]  # as before the assignment was deleted
        assert after == before  # pete is still disabled
        assert next(u for u in after["users"] if u["user_id"] == "pete")["disabled"] is True
        olga = await login(gw, "olga", "olga-password")
        assert olga.status_code == 200
        olga_headers = bearer(olga.json()["access_token"])
        assert (await gw.client.get("/api/orders", headers=olga_headers)).status_code == 200
        quinn_headers = as_user(gw, "quinn")
        assert (await gw.client.get("/api/market", headers=quinn_headers)).status_code == 200
        response = await gw.client.get("/api/orders", headers=quinn_headers)
        assert response.status_code == 403
        assert response.json() == required("read:orders")


# --- secrets stay secret ---------------------------------------------------------------------


def test_settings_repr_hides_secrets() -> None:
    settings = Settings(
        auth_enabled=True,
        admin_password=SecretStr(ADMIN_PASSWORD),
        jwt_secret=SecretStr("j" * 40),
        api_key_secret=SecretStr("k" * 40),
        binance_api_secret=SecretStr("b" * 40),
    )
    for text in (repr(settings), str(settings), settings.model_dump_json()):
        for secret in (ADMIN_PASSWORD, "j" * 40, "k" * 40, "b" * 40):
            assert secret not in text
    assert settings.admin_password.get_secret_value() == ADMIN_PASSWORD


async def test_secrets_never_appear_in_logs_or_other_answers(
    make_settings: Callable[..., Settings], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    settings = make_settings(
        auth_enabled=True,
        admin_password=ADMIN_PASSWORD,
        refresh_rotation=True,
        log_level="debug",
    )
    assert ADMIN_PASSWORD not in repr(settings)
    assert ADMIN_PASSWORD not in str(settings)
    user_password = "bobs-secret-passphrase"
    wrong_password = "wrong-but-close-1"
    secrets: list[str] = [ADMIN_PASSWORD, user_password, wrong_password]
    with_secrets: list[httpx.Response] = []  # answers that carry tokens or a raw key by design
    others: list[httpx.Response] = []

    async with capturing_gateway(settings, caplog.handler) as gw:
        jwt_secret = secret_file(settings, "jwt_secret")
        key_secret = secret_file(settings, "api_key_secret")
        secrets += [jwt_secret, key_secret]

        async def call(method: str, path: str, carries: bool = False, **kw: Any) -> Any:
            response = await gw.client.request(method, path, **kw)
            (with_secrets if carries and response.is_success else others).append(response)
            return response

        credentials = {"user_id": "admin", "password": ADMIN_PASSWORD}
        admin = (await call("POST", "/api/auth/login", True, json=credentials)).json()
        secrets += [admin["access_token"], admin["refresh_token"]]
        auth = bearer(admin["access_token"])
        new_user = {"user_id": "bob", "password": user_password, "roles": ["trader"]}
        await call("POST", "/api/auth/users", headers=auth, json=new_user)
        bob_login = {"user_id": "bob", "password": user_password}
        bob = (await call("POST", "/api/auth/login", True, json=bob_login)).json()
        secrets += [bob["access_token"], bob["refresh_token"]]
        new_key = {"name": "bot", "permissions": ["trader"]}
        key = (await call("POST", "/api/auth/keys", True, headers=auth, json=new_key)).json()
        secrets.append(key["api_key"])
        await call("GET", "/api/orders_state", headers=as_key(key["api_key"]))
        await call("GET", "/api/auth/keys", headers=as_key(key["api_key"]))  # 403
        old_refresh = {"refresh_token": admin["refresh_token"]}
        renewed = (await call("POST", "/api/auth/refresh", True, json=old_refresh)).json()
        secrets += [renewed["access_token"], renewed["refresh_token"]]
        reuse = await call("POST", "/api/auth/refresh", json=old_refresh)
        assert reuse.status_code == 401  # reuse detected: a warning is logged
        bob_refresh = {"refresh_token": bob["refresh_token"]}
        bob_auth = bearer(bob["access_token"])
        await call("POST", "/api/auth/logout", headers=bob_auth, json=bob_refresh)
        await call("GET", "/api/market", headers=bob_auth)  # 401: revoked
        wrong = {"user_id": "admin", "password": wrong_password}
        assert (await call("POST", "/api/auth/login", json=wrong)).status_code == 401
        broken = f'{{"user_id": "admin", "password": "{ADMIN_PASSWORD}"'
        await call("POST", "/api/auth/login", content=broken)  # 400 bad_json
        bad_user = {"user_id": "bad user", "password": user_password}
        await call("POST", "/api/auth/users", headers=auth, json=bad_user)  # 400
        await call("GET", "/api/market", headers=as_key(key["api_key"] + "x"))  # 401
        for path in ("/api/auth/keys", "/api/auth/users", "/api/auth/roles", "/api/config"):
            await call("GET", path, headers=auth)
        await call("GET", "/api/health")
        await call("DELETE", "/api/auth/keys", headers=auth, params={"key_id": key["key_id"]})
        await call("GET", "/api/market", headers=as_key(key["api_key"]))  # 401: revoked

    assert len(with_secrets) == 4
    assert [r.status_code for r in others].count(401) == 5
    records = caplog.records
    assert any(r.name == "veloz.auth" and "reuse" in r.getMessage() for r in records)
    assert any(r.name == "veloz.runtime" for r in records)  # the "veloz" loggers are captured
    logged = caplog.text + "\n".join(
        f"{r.getMessage()} {r.msg!r} {r.args!r} {r.exc_text or ''}" for r in records
    )
    for secret in secrets:
        assert secret not in logged, secret[:12]
    for response in others:
        text = response.text + str(response.headers)
        for secret in secrets:
            assert secret not in text, (response.request.url, secret[:12])
    for response in with_secrets:  # tokens and keys only where they belong
        for secret in (ADMIN_PASSWORD, user_password, wrong_password, jwt_secret, key_secret):
            assert secret not in response.text


async def test_a_disabled_users_api_keys_stop_working(gw: Gateway) -> None:
    await create_user(gw, "carol", "carol-passphrase", roles=["admin"])
    created = await create_key(gw, as_user(gw, "carol"), name="carol-bot", permissions=["read"])
    raw = created["api_key"]
    assert (await gw.client.get("/api/market", headers=as_key(raw))).status_code == 200
    response = await gw.client.delete(
        "/api/auth/users", params={"user_id": "carol"}, headers=as_user(gw)
    )
    assert response.status_code == 200
    refused = await gw.client.get("/api/market", headers=as_key(raw))
    assert refused.status_code == 401
    assert refused.json() == {"error": "invalid_api_key"}


async def test_nobody_disables_themselves_or_the_last_admin(gw: Gateway) -> None:
    own = await gw.client.delete(
        "/api/auth/users", params={"user_id": "admin"}, headers=as_user(gw)
    )
    assert own.status_code == 409
    assert own.json()["error"] == "cannot_disable_self"
    await create_user(gw, "dora", "dora-passphrase", roles=["admin"])
    # dora may disable admin (another admin remains), but then not herself.
    first = await gw.client.delete(
        "/api/auth/users", params={"user_id": "admin"}, headers=as_user(gw, "dora")
    )
    assert first.status_code == 200
    await create_user_as(gw, "dora", "erin", "erin-passphrase", roles=["admin:users"])
    last = await gw.client.delete(
        "/api/auth/users", params={"user_id": "dora"}, headers=as_user(gw, "erin")
    )
    assert last.status_code == 409
    assert last.json()["error"] == "last_admin"


async def create_user_as(
    gw: Gateway, caller: str, user_id: str, password: str, roles: list[str]
) -> None:
    await gw.runtime.auth.create_user(user_id, password, roles, caller)


async def test_api_key_permissions_must_be_a_list(gw: Gateway) -> None:
    for bad in ({}, 0, False, "read"):
        response = await gw.client.post(
            "/api/auth/keys", json={"name": "k", "permissions": bad}, headers=as_user(gw)
        )
        assert response.status_code == 400, bad
        assert response.json() == {"error": "bad_params", "message": "permissions must be a list"}
