"""Every route, every kind of caller: who is let through, and the exact refusal otherwise.

The route table below is the contract's path → permission map (§2.7, F6, F7). The app's routes
are enumerated, so a route added without an entry here fails `test_every_route_is_in_the_table`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import fastapi.routing
import httpx
import uvicorn
from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

from app.main import create_app
from tests.api.conftest import (
    SettingsFactory,
    admin_login,
    api_key,
    asgi_call,
    bearer,
    create_key,
    create_user,
    disable_user,
    login,
    revoke_key,
    token_codec,
)
from tests.conftest import Gateway, running_gateway

READ_MARKET = "read:market"
READ_ORDERS = "read:orders"
READ_ACCOUNT = "read:account"
READ_CONFIG = "read:config"
WRITE_ORDERS = "write:orders"
WRITE_CANCEL = "write:cancel"
ADMIN_KEYS = "admin:keys"
ADMIN_USERS = "admin:users"
ADMIN_CONFIG = "admin:config"

# The contract's sets, written out here (not taken from app.auth.permissions).
VIEWER = frozenset({READ_MARKET, READ_CONFIG})
TRADER = frozenset(
    {READ_MARKET, READ_ORDERS, READ_ACCOUNT, READ_CONFIG, WRITE_ORDERS, WRITE_CANCEL}
)
ALL_NINE = TRADER | {ADMIN_KEYS, ADMIN_USERS, ADMIN_CONFIG}
LEGACY_READ = frozenset({READ_MARKET, READ_ORDERS, READ_ACCOUNT, READ_CONFIG})
LEGACY_WRITE = frozenset({WRITE_ORDERS, WRITE_CANCEL})

PUBLIC = "public"  # no authentication, no rate limit
PUBLIC_LIMITED = "public_rate_limited"  # no authentication, rate limited per client address
STREAM_LIMITED = "stream_rate_limited"  # the same; rate-limit headers only on a refusal
AUTHENTICATED = "authenticated"  # any valid credentials, no permission needed; rate limited
DOCS = "docs"  # the API documentation: no guard at all (the web UI is in tests/api/test_web_ui.py)


@dataclass(frozen=True)
class Route:
    """One method and path: what guards it, and a request that passes once let through."""

    guard: str  # a permission, or AUTHENTICATED / PUBLIC / PUBLIC_LIMITED / STREAM_LIMITED / DOCS
    allowed_status: int  # the exact answer to the request below for a caller let through
    params: dict[str, str] = field(default_factory=dict)
    json: dict[str, Any] | None = None
    streaming: bool = False  # never ends: called through `asgi_call`, not httpx

    @property
    def permission(self) -> str | None:
        unguarded = (AUTHENTICATED, PUBLIC, PUBLIC_LIMITED, STREAM_LIMITED, DOCS)
        return None if self.guard in unguarded else self.guard

    @property
    def needs_credentials(self) -> bool:
        return self.guard == AUTHENTICATED or self.permission is not None


UNKNOWN_ORDER = {"client_order_id": "matrix-unknown"}
# Sent again and again: the first creates the order, the rest are idempotent replays (200).
ORDER = {"side": "BUY", "qty": 0.001, "price": 1000, "client_order_id": "matrix-order"}

ROUTES: dict[tuple[str, str], Route] = {
    ("GET", "/api/market"): Route(READ_MARKET, 200),
    ("GET", "/api/account"): Route(READ_ACCOUNT, 200),
    ("GET", "/api/orders"): Route(READ_ORDERS, 200),
    ("GET", "/api/orders_state"): Route(READ_ORDERS, 200),
    ("GET", "/api/order_state"): Route(READ_ORDERS, 404, params=UNKNOWN_ORDER),
    ("POST", "/api/order"): Route(WRITE_ORDERS, 200, json=ORDER),
    ("POST", "/api/cancel"): Route(WRITE_CANCEL, 404, json=UNKNOWN_ORDER),
    ("GET", "/api/config"): Route(READ_CONFIG, 200),
    ("GET", "/api/execution/ping"): Route(READ_CONFIG, 200),
    # Admin routes get requests that fail validation (400), so nothing is changed by them.
    ("GET", "/api/auth/keys"): Route(ADMIN_KEYS, 200),
    ("POST", "/api/auth/keys"): Route(ADMIN_KEYS, 400, json={}),
    ("DELETE", "/api/auth/keys"): Route(ADMIN_KEYS, 400),
    ("GET", "/api/auth/roles"): Route(ADMIN_USERS, 200),
    ("POST", "/api/auth/roles"): Route(ADMIN_USERS, 400, json={}),
    ("DELETE", "/api/auth/roles"): Route(ADMIN_USERS, 400),
    ("GET", "/api/auth/users"): Route(ADMIN_USERS, 200),
    ("POST", "/api/auth/users"): Route(ADMIN_USERS, 400, json={}),
    ("DELETE", "/api/auth/users"): Route(ADMIN_USERS, 400),
    ("POST", "/api/config"): Route(ADMIN_CONFIG, 200, json={}),
    ("GET", "/api/settings"): Route(READ_CONFIG, 200),
    ("POST", "/api/settings"): Route(WRITE_ORDERS, 400, json={}),
    ("GET", "/api/settings/export"): Route(READ_CONFIG, 200),
    ("POST", "/api/settings/import"): Route(ADMIN_CONFIG, 400, json={}),
    ("GET", "/api/exchange-keys"): Route(READ_CONFIG, 200),
    ("POST", "/api/exchange-keys"): Route(WRITE_ORDERS, 400, json={}),
    ("DELETE", "/api/exchange-keys"): Route(WRITE_ORDERS, 400),
    ("POST", "/api/exchange-keys/test"): Route(WRITE_ORDERS, 400, json={}),
    ("GET", "/api/audit/logs"): Route(ADMIN_CONFIG, 200),
    ("GET", "/api/audit/stats"): Route(ADMIN_CONFIG, 200),
    ("POST", "/api/audit/archive"): Route(ADMIN_CONFIG, 200),
    ("GET", "/metrics"): Route(PUBLIC, 200),
    ("GET", "/health"): Route(PUBLIC, 200),
    ("GET", "/api/health"): Route(PUBLIC_LIMITED, 200),
    ("GET", "/api/stream"): Route(STREAM_LIMITED, 200, streaming=True),
    ("POST", "/api/auth/login"): Route(PUBLIC, 400, json={}),
    ("POST", "/api/auth/refresh"): Route(PUBLIC, 400, json={}),
    ("POST", "/api/auth/logout"): Route(PUBLIC, 400, json={}),
    ("GET", "/api/auth/status"): Route(PUBLIC_LIMITED, 200),
    ("GET", "/api/auth/me"): Route(AUTHENTICATED, 200),
    ("GET", "/docs"): Route(DOCS, 200),
    ("GET", "/docs/oauth2-redirect"): Route(DOCS, 200),
    ("GET", "/redoc"): Route(DOCS, 200),
}


@dataclass(frozen=True)
class Caller:
    name: str
    headers: dict[str, str]
    granted: frozenset[str] = frozenset()  # the permissions it holds once authenticated
    refused_with: str | None = None  # the 401 error code, when authentication fails


def _route_list(app: FastAPI) -> Iterator[tuple[str, BaseRoute]]:
    """(full path, route) for every route, looking into included routers."""
    iterate = getattr(fastapi.routing, "iter_route_contexts", None)
    if iterate is None:  # FastAPI versions that copy included routes into app.routes
        for route in app.routes:
            yield getattr(route, "path", ""), route
        return
    for context in iterate(app.routes):
        yield context.path or "", context.original_route


def api_routes(app: FastAPI) -> dict[tuple[str, str], APIRoute]:
    found: dict[tuple[str, str], APIRoute] = {}
    for path, route in _route_list(app):
        if isinstance(route, APIRoute):
            for method in route.methods or ():
                assert (method, path) not in found, f"{method} {path} declared twice"
                found[(method, path)] = route
    return found


def _guard_name(route: Route) -> str | None:
    if route.guard == DOCS:
        return None
    if route.permission is None:
        return route.guard
    return "require_" + route.permission.replace(":", "_")


def _declared_guards(route: APIRoute) -> list[str]:
    guards = ("require_", AUTHENTICATED, PUBLIC, PUBLIC_LIMITED, STREAM_LIMITED)
    names = [getattr(dep.call, "__name__", "") for dep in route.dependant.dependencies]
    return [name for name in names if name.startswith(guards)]


async def call(gateway: Gateway, method: str, path: str, headers: dict[str, str]) -> Any:
    """Send the table's request for (method, path); a RawResponse for streaming routes."""
    route = ROUTES[(method, path)]
    if route.streaming:
        return await asgi_call(gateway.app, path, method=method, headers=headers)
    return await gateway.client.request(
        method, path, params=route.params or None, json=route.json, headers=headers
    )


def _status_and_body(response: Any) -> tuple[int, Any]:
    if isinstance(response, httpx.Response):
        try:
            body = response.json()
        except ValueError:
            body = response.text
        return response.status_code, body
    return response.status, response.body


def expected(route: Route, caller: Caller) -> tuple[int, Any]:
    """(status, body) per the contract; body None means "any body" (the allowed case)."""
    if not route.needs_credentials:
        return route.allowed_status, None
    if caller.refused_with is not None:
        return 401, {"error": caller.refused_with}
    if route.permission is not None and route.permission not in caller.granted:
        return 403, {"error": "forbidden", "message": f"Required permissions: {route.permission}"}
    return route.allowed_status, None


async def check_matrix(gateway: Gateway, callers: list[Caller]) -> None:
    mismatches: list[str] = []
    for (method, path), caller in itertools.product(ROUTES, callers):
        route = ROUTES[(method, path)]
        status, body = _status_and_body(await call(gateway, method, path, caller.headers))
        want_status, want_body = expected(route, caller)
        if status != want_status or (want_body is not None and body != want_body):
            mismatches.append(
                f"{method} {path} as {caller.name}: got {status} {body!r}, "
                f"want {want_status} {want_body if want_body is not None else '(any body)'}"
            )
    assert not mismatches, "\n".join(mismatches)


# --- the route table -------------------------------------------------------------------------


def test_every_route_is_in_the_table(make_settings: SettingsFactory) -> None:
    app = create_app(make_settings())
    routes = api_routes(app)
    assert routes, "no APIRoute found: the enumeration is broken"
    missing = sorted(set(routes) - set(ROUTES))
    stale = sorted(set(ROUTES) - set(routes))
    assert not missing, f"routes without a matrix entry: {missing}"
    assert not stale, f"matrix entries without a route: {stale}"


def test_every_route_declares_the_guard_of_the_table(make_settings: SettingsFactory) -> None:
    app = create_app(make_settings())
    wrong = []
    for key, route in sorted(api_routes(app).items()):
        want = _guard_name(ROUTES[key])
        declared = _declared_guards(route)
        if declared != ([want] if want else []):
            wrong.append(f"{key}: declares {declared}, table says {want}")
    assert not wrong, "\n".join(wrong)


# --- the matrix ------------------------------------------------------------------------------


async def test_matrix_with_auth_enabled(auth_settings: SettingsFactory) -> None:
    settings = auth_settings()
    async with running_gateway(settings) as gateway:
        client = gateway.client
        admin = await admin_login(client)
        for user_id, roles in (("vera", ["viewer"]), ("tom", ["trader"]), ("dora", ["trader"])):
            await create_user(client, admin, user_id, roles)
        viewer, trader, disabled = [
            await login(client, user_id) for user_id in ("vera", "tom", "dora")
        ]
        await disable_user(client, admin, "dora")
        keys = {
            name: (await create_key(client, admin, [name], name=f"key-{name}"))[1]
            for name in ("read", "write", "admin", "trader")
        }
        revoked_id, revoked = await create_key(client, admin, ["read"], name="revoked")
        await revoke_key(client, admin, revoked_id)
        codec = token_codec(settings)
        expired = codec.issue_access("admin", now=int(time.time()) - 2 * settings.token_expiry)
        ghost = codec.issue_access("no-such-user")

        callers = [
            Caller("no credentials", {}, refused_with="authentication_required"),
            Caller("viewer JWT", bearer(viewer), VIEWER),
            Caller("trader JWT", bearer(trader), TRADER),
            Caller("admin JWT", bearer(admin), ALL_NINE),
            Caller("key [read]", api_key(keys["read"]), LEGACY_READ),
            Caller("key [write]", api_key(keys["write"]), LEGACY_WRITE),
            Caller("key [admin]", api_key(keys["admin"]), ALL_NINE),
            Caller("key [trader]", api_key(keys["trader"]), TRADER),
            Caller("revoked key", api_key(revoked), refused_with="invalid_api_key"),
            Caller("unknown key", api_key("veloz_" + "0" * 64), refused_with="invalid_api_key"),
            Caller("expired token", bearer(expired), refused_with="invalid_token"),
            Caller("disabled user's token", bearer(disabled), refused_with="invalid_token"),
            Caller("token of no user", bearer(ghost), refused_with="invalid_token"),
            Caller("garbage token", bearer("not.a.jwt"), refused_with="invalid_token"),
        ]
        await check_matrix(gateway, callers)


async def test_matrix_with_auth_disabled(make_settings: SettingsFactory) -> None:
    async with running_gateway(make_settings()) as gateway:
        garbage = {"Authorization": "Bearer garbage", "X-API-Key": "garbage"}
        callers = [
            Caller("no credentials", {}, ALL_NINE),
            Caller("garbage credentials", garbage, ALL_NINE),
            Caller("garbage key", {"X-API-Key": "garbage"}, ALL_NINE),
        ]
        await check_matrix(gateway, callers)


# --- header names and schemes (F3) ------------------------------------------------------------


async def test_auth_header_names_and_bearer_scheme_in_any_case(
    auth_settings: SettingsFactory,
) -> None:
    async with running_gateway(auth_settings()) as gateway:
        client = gateway.client
        admin = await admin_login(client)
        _, key = await create_key(client, admin, ["read"])
        variants = [
            {name: f"{scheme} {admin}"}
            for name in ("Authorization", "authorization", "AUTHORIZATION")
            for scheme in ("Bearer", "bearer", "BEARER", "bEaReR")
        ] + [{name: key} for name in ("X-API-Key", "x-api-key", "X-Api-Key", "X-API-KEY")]
        for headers in variants:
            response = await client.get("/api/account", headers=headers)
            assert response.status_code == 200, (headers, response.text)


@contextlib.asynccontextmanager
async def served(app: FastAPI) -> AsyncIterator[int]:
    """The app behind a real uvicorn on a free loopback port (lifespan included)."""
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, log_config=None, log_level="warning", lifespan="on"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(500):
            if server.started or task.done():
                break
            await asyncio.sleep(0.01)
        assert server.started, "uvicorn did not start"
        port: int = server.servers[0].sockets[0].getsockname()[1]
        yield port
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


async def raw_get(port: int, path: str, header_lines: list[str]) -> int:
    """A GET written byte for byte, so the header names reach the server in our spelling."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        lines = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1", *header_lines, "Connection: close"]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), 5)
        return int(status_line.split()[1])
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def test_auth_header_names_in_any_case_on_the_wire(auth_settings: SettingsFactory) -> None:
    # httpx lowercases header names in-process; here they travel as written (F3).
    async with served(create_app(auth_settings())) as port:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            admin = await admin_login(client)
            _, key = await create_key(client, admin, ["read"])
        for line in (
            f"AUTHORIZATION: BEARER {admin}",
            f"authorization: bearer {admin}",
            f"Authorization: Bearer {admin}",
            f"X-API-KEY: {key}",
            f"x-api-key: {key}",
            f"X-Api-Key: {key}",
        ):
            assert await raw_get(port, "/api/account", [line]) == 200, line
        assert await raw_get(port, "/api/account", []) == 401


# --- which credential counts ------------------------------------------------------------------


async def test_a_bearer_token_wins_over_an_api_key(auth_settings: SettingsFactory) -> None:
    async with running_gateway(auth_settings()) as gateway:
        client = gateway.client
        admin = await admin_login(client)
        await create_user(client, admin, "vera", ["viewer"])
        viewer = await login(client, "vera")
        _, key = await create_key(client, admin, ["read"])

        response = await client.get("/api/account", headers=api_key(key))
        assert response.status_code == 200

        # An invalid bearer token is not rescued by a valid key.
        for token in ("garbage", "a.b.c", viewer + "x"):
            response = await client.get("/api/account", headers={**bearer(token), **api_key(key)})
            assert response.status_code == 401
            assert response.json() == {"error": "invalid_token"}

        # A valid bearer token decides, even when the key would have been allowed.
        response = await client.get("/api/account", headers={**bearer(viewer), **api_key(key)})
        assert response.status_code == 403
        assert response.json() == {
            "error": "forbidden",
            "message": "Required permissions: read:account",
        }

        # Another scheme is not a bearer token: the key is used.
        response = await client.get(
            "/api/account", headers={"Authorization": "Basic YWRtaW46eA==", **api_key(key)}
        )
        assert response.status_code == 200


# --- the literal "admin" check of the key endpoints ---------------------------------------------


async def test_admin_keys_permission_without_literal_admin(auth_settings: SettingsFactory) -> None:
    async with running_gateway(auth_settings()) as gateway:
        client = gateway.client
        admin = await admin_login(client)
        await create_user(client, admin, "ops", ["admin"])
        ops = await login(client, "ops")
        admin_key_id, _ = await create_key(client, admin, ["read"], name="admin-owned")
        ops_key_id, ops_key = await create_key(client, ops, ["admin:keys"], name="ops-granular")
        other_ops_id, _ = await create_key(client, ops, ["read"], name="ops-other")

        for method, params, body in (
            ("POST", None, {"name": "more"}),
            ("DELETE", {"key_id": admin_key_id}, None),
        ):
            response = await client.request(
                method, "/api/auth/keys", params=params, json=body, headers=api_key(ops_key)
            )
            assert response.status_code == 403, (method, response.text)
            assert response.json() == {"error": "forbidden", "message": "admin permission required"}

        # The admin key was not revoked by the refused DELETE, and nothing was created.
        response = await client.get("/api/auth/keys", headers=bearer(admin))
        assert response.status_code == 200
        everything = {key["key_id"]: key for key in response.json()["keys"]}
        assert set(everything) == {admin_key_id, ops_key_id, other_ops_id}
        assert everything[admin_key_id]["revoked"] is False

        # Listing with admin:keys alone shows only the keys of the key's own user.
        response = await client.get("/api/auth/keys", headers=api_key(ops_key))
        assert response.status_code == 200
        listed = response.json()["keys"]
        assert {key["key_id"] for key in listed} == {ops_key_id, other_ops_id}
        assert {key["user_id"] for key in listed} == {"ops"}


# --- permissions follow the user's roles at request time (F6) ----------------------------------


async def test_a_role_change_applies_to_an_existing_token(auth_settings: SettingsFactory) -> None:
    async with running_gateway(auth_settings()) as gateway:
        client = gateway.client
        admin = await admin_login(client)
        await create_user(client, admin, "vic", ["viewer"])
        token = await login(client, "vic")
        forbidden_users = {"error": "forbidden", "message": "Required permissions: admin:users"}

        response = await client.get("/api/auth/users", headers=bearer(token))
        assert (response.status_code, response.json()) == (403, forbidden_users)
        assert (await client.get("/api/market", headers=bearer(token))).status_code == 200

        response = await client.post(
            "/api/auth/roles", json={"user_id": "vic", "roles": ["admin"]}, headers=bearer(admin)
        )
        assert response.status_code == 200, response.text
        response = await client.get("/api/auth/users", headers=bearer(token))
        assert response.status_code == 200, response.text
        assert (await client.get("/api/account", headers=bearer(token))).status_code == 200
        # The `admin` role is also the literal `admin` the key endpoints ask for.
        response = await client.post("/api/auth/keys", json={"name": "k"}, headers=bearer(token))
        assert response.status_code == 201, response.text

        # Removing the last role leaves no permission at all, with the same token.
        response = await client.delete(
            "/api/auth/roles", params={"user_id": "vic", "role": "admin"}, headers=bearer(admin)
        )
        assert response.status_code == 200, response.text
        response = await client.get("/api/market", headers=bearer(token))
        assert response.status_code == 403
        assert response.json() == {
            "error": "forbidden",
            "message": "Required permissions: read:market",
        }


async def test_a_disabled_user_is_locked_out_at_once(auth_settings: SettingsFactory) -> None:
    async with running_gateway(auth_settings()) as gateway:
        client = gateway.client
        admin = await admin_login(client)
        await create_user(client, admin, "dan", ["trader"])
        token = await login(client, "dan")
        assert (await client.get("/api/account", headers=bearer(token))).status_code == 200

        await disable_user(client, admin, "dan")
        for method, path in ROUTES:
            route = ROUTES[(method, path)]
            if not route.needs_credentials:
                continue
            response = await call(gateway, method, path, bearer(token))
            assert response.status_code == 401, (method, path, response.text)
            assert response.json() == {"error": "invalid_token"}
        response = await client.post(
            "/api/auth/login", json={"user_id": "dan", "password": "user-password-1"}
        )
        assert response.status_code == 401
        assert response.json() == {"error": "invalid_credentials"}
