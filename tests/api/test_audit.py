"""The audit log over HTTP (contract §8.2, K13, F10): what each audited action records, the
query filters and paging of GET /api/audit/logs, GET /api/audit/stats, POST /api/audit/archive
with the retention policies, VELOZ_AUDIT_RETENTION, durability across a restart, and
VELOZ_AUDIT_LOG_ENABLED=false.

Admin calls use an access token from the gateway's own codec; only the login tests pay for
argon2. Old entries are put straight into the table, since the log never backdates.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.audit.entries import AuditEntry
from app.audit.retention import RetentionManager, read_archive
from app.core.config import Settings
from app.db.audit import AuditQuery
from tests.api.conftest import client_at
from tests.conftest import Gateway, running_gateway

ADMIN_PASSWORD = "audit-admin-pass-1"
USER_PASSWORD = "audit-user-pass-1"
PEER = "192.0.2.10"
DAY = 86_400.0
ENTRY_FIELDS = [
    "timestamp",
    "datetime",
    "log_type",
    "action",
    "user_id",
    "ip_address",
    "details",
    "request_id",
]
LOGS_FIELDS = ["logs", "total", "limit", "offset", "has_more"]
STATS_FIELDS = [
    "status",
    "policies",
    "entries",
    "total_entries",
    "archive_files",
    "archive_size_bytes",
    "queue_depth",
]
ARCHIVE_STATS_FIELDS = [
    "archived_files",
    "deleted_files",
    "bytes_freed",
    "errors",
    "archived_entries",
    "deleted_entries",
]
POLICIES: dict[str, dict[str, Any]] = {
    "auth": {"retention_days": 90, "archive_before_delete": True, "max_file_size_mb": 100},
    "order": {"retention_days": 365, "archive_before_delete": True, "max_file_size_mb": 100},
    "api_key": {"retention_days": 365, "archive_before_delete": True, "max_file_size_mb": 100},
    "error": {"retention_days": 30, "archive_before_delete": True, "max_file_size_mb": 100},
    "access": {"retention_days": 14, "archive_before_delete": False, "max_file_size_mb": 100},
    "default": {"retention_days": 30, "archive_before_delete": True, "max_file_size_mb": 100},
}
NOTHING_ARCHIVED = {
    "archived_files": 0,
    "deleted_files": 0,
    "bytes_freed": 0,
    "errors": [],
    "archived_entries": 0,
    "deleted_entries": 0,
}
FORBIDDEN = {"error": "forbidden", "message": "Required permissions: admin:config"}
AUDIT_ENDPOINTS = [
    ("GET", "/api/audit/logs"),
    ("GET", "/api/audit/stats"),
    ("POST", "/api/audit/archive"),
]
# 2026-01-01T00:00:00Z: the seeded entries of the filter tests start here, one per hour.
SEED_BASE = 1_767_225_600.0

Expected = tuple[str, str, str | None, dict[str, Any]]  # log_type, action, user_id, details


# --- fixtures and helpers --------------------------------------------------------------------


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(
        auth_enabled=True, admin_password=ADMIN_PASSWORD, rate_limit_capacity=10_000
    )


@pytest.fixture
def retention_ran(monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """Set whenever a retention run has finished, so a test can wait out the run the gateway
    starts on its own at start-up before it plants expired entries."""
    done = threading.Event()
    original = RetentionManager.run

    def run(self: RetentionManager, now: float | None = None) -> Any:
        try:
            return original(self, now)
        finally:
            done.set()

    monkeypatch.setattr(RetentionManager, "run", run)
    return done


@asynccontextmanager
async def started(settings: Settings, retention_ran: threading.Event) -> AsyncIterator[Gateway]:
    async with running_gateway(settings) as running:
        assert await asyncio.to_thread(retention_ran.wait, 10), "no retention run at start"
        yield running


@pytest.fixture
async def gw(settings: Settings, retention_ran: threading.Event) -> AsyncIterator[Gateway]:
    async with started(settings, retention_ran) as running:
        yield running


@pytest.fixture
async def open_gw(
    make_settings: Callable[..., Settings], retention_ran: threading.Event
) -> AsyncIterator[Gateway]:
    """Auth off (no argon2 at start): for the query tests, which do not depend on the caller."""
    async with started(make_settings(), retention_ran) as running:
        yield running


def as_user(gw: Gateway, user_id: str = "admin") -> dict[str, str]:
    return {"Authorization": f"Bearer {gw.runtime.auth.tokens.issue_access(user_id)}"}


async def query(gw: Gateway, **params: str | int) -> dict[str, Any]:
    """GET /api/audit/logs as admin; checks the answer's and every entry's field order."""
    response = await gw.client.get("/api/audit/logs", params=params, headers=as_user(gw))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert list(body) == LOGS_FIELDS
    for entry in body["logs"]:
        assert list(entry) == ENTRY_FIELDS
    return body


async def all_logs(gw: Gateway) -> list[dict[str, Any]]:
    body = await query(gw, limit=1000)
    assert body["has_more"] is False
    logs: list[dict[str, Any]] = body["logs"]
    return logs


async def stats(gw: Gateway) -> dict[str, Any]:
    response = await gw.client.get("/api/audit/stats", headers=as_user(gw))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert list(body) == STATS_FIELDS
    return body


async def archive(gw: Gateway, request_id: str | None = None) -> dict[str, Any]:
    headers = as_user(gw)
    if request_id is not None:
        headers["X-Request-ID"] = request_id
    response = await gw.client.post("/api/audit/archive", headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert list(body) == ["ok", "stats"]
    assert body["ok"] is True
    assert list(body["stats"]) == ARCHIVE_STATS_FIELDS
    return body


def make_entry(
    timestamp: float,
    log_type: str,
    action: str,
    user_id: str | None = "alice",
    details: dict[str, Any] | None = None,
    request_id: str | None = None,
) -> AuditEntry:
    return AuditEntry(timestamp, log_type, action, user_id, "10.0.0.1", details or {}, request_id)


async def insert(gw: Gateway, entries: list[AuditEntry]) -> None:
    await asyncio.to_thread(gw.runtime.retention.repository.insert, entries)


def iso(timestamp: float, offset: timedelta = timedelta(0)) -> str:
    """ISO 8601 with `Z` for UTC, as a client would send it."""
    moment = datetime.fromtimestamp(timestamp, timezone(offset))
    return moment.isoformat().replace("+00:00", "Z")


def archive_dir(settings: Settings) -> Path:
    return Path(settings.data_dir) / "audit" / "archive"


def day_of(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")


# --- every audited action ---------------------------------------------------------------------


async def test_every_audited_action_is_recorded_once_with_who_where_and_request_id(
    gw: Gateway,
) -> None:
    admin = as_user(gw)
    expected: dict[str, Expected] = {}
    sent: list[str] = []
    began = time.time()

    async with client_at(gw.app, PEER) as peer:

        async def call(
            request_id: str,
            method: str,
            path: str,
            status: int,
            headers: dict[str, str] | None = None,
            **kwargs: Any,
        ) -> httpx.Response:
            response = await peer.request(
                method, path, headers={"X-Request-ID": request_id, **(headers or {})}, **kwargs
            )
            assert response.status_code == status, (request_id, response.text)
            assert response.headers["x-request-id"] == request_id
            sent.append(request_id)
            return response

        # Logins: success, failures, and the lock after five failures (per address and user).
        login = {"user_id": "admin", "password": ADMIN_PASSWORD}
        pair = (await call("rq-login", "POST", "/api/auth/login", 200, json=login)).json()
        expected["rq-login"] = ("auth", "login", "admin", {})
        wrong = {"user_id": "admin", "password": "not-the-password"}
        for n in range(5):
            response = await call(
                f"rq-login-failed-{n}", "POST", "/api/auth/login", 401, json=wrong
            )
            assert response.json() == {"error": "invalid_credentials"}
            expected[f"rq-login-failed-{n}"] = (
                "auth", "login_failed", "admin", {"error": "invalid_credentials"}
            )  # fmt: skip
        locked = await call("rq-login-locked", "POST", "/api/auth/login", 429, json=wrong)
        assert locked.json()["error"] == "rate_limit_exceeded"
        expected["rq-login-locked"] = (
            "auth", "login_locked", "admin", {"error": "rate_limit_exceeded"}
        )  # fmt: skip

        # Tokens.
        refresh = {"refresh_token": pair["refresh_token"]}
        await call("rq-refresh", "POST", "/api/auth/refresh", 200, json=refresh)
        # Whose token was refreshed is the one thing such an entry is for.
        expected["rq-refresh"] = ("auth", "token_refresh", "admin", {})
        garbage = {"refresh_token": "not-a-token"}
        failed = await call("rq-refresh-failed", "POST", "/api/auth/refresh", 401, json=garbage)
        assert failed.json() == {"error": "invalid_refresh_token"}
        expected["rq-refresh-failed"] = (
            "auth", "token_refresh_failed", None, {"error": "invalid_refresh_token"}
        )  # fmt: skip

        # Users and roles.
        bob = {"user_id": "bob", "password": USER_PASSWORD, "roles": ["viewer"]}
        await call("rq-create-user", "POST", "/api/auth/users", 201, admin, json=bob)
        expected["rq-create-user"] = (
            "auth", "create_user", "admin", {"user_id": "bob", "roles": ["viewer"]}
        )  # fmt: skip
        roles = {"user_id": "bob", "roles": ["viewer"]}
        await call("rq-set-roles", "POST", "/api/auth/roles", 200, admin, json=roles)
        expected["rq-set-roles"] = (
            "auth", "set_roles", "admin", {"user_id": "bob", "roles": ["viewer"]}
        )  # fmt: skip
        role = {"user_id": "bob", "role": "trader"}
        await call("rq-assign-role", "POST", "/api/auth/roles", 200, admin, json=role)
        expected["rq-assign-role"] = ("auth", "assign_role", "admin", role)
        await call(
            "rq-remove-role", "DELETE", "/api/auth/roles", 200, admin,
            params={"user_id": "bob", "role": "trader"},
        )  # fmt: skip
        expected["rq-remove-role"] = ("auth", "remove_role", "admin", role)
        # bob is a viewer again: reading orders is denied.
        denied = await call("rq-denied", "GET", "/api/orders_state", 403, as_user(gw, "bob"))
        assert denied.json() == {
            "error": "forbidden",
            "message": "Required permissions: read:orders",
        }
        expected["rq-denied"] = (
            "access", "permission_denied", "bob",
            {"path": "/api/orders_state", "permission": "read:orders"},
        )  # fmt: skip
        params = {"user_id": "bob"}
        await call("rq-disable-user", "DELETE", "/api/auth/users", 200, admin, params=params)
        expected["rq-disable-user"] = ("auth", "disable_user", "admin", {"user_id": "bob"})

        # API keys, and orders placed and cancelled with one (its owner is the user).
        new_key = {"name": "bot", "permissions": ["trader"]}
        created = await call("rq-create-key", "POST", "/api/auth/keys", 201, admin, json=new_key)
        key_id, raw_key = created.json()["key_id"], created.json()["api_key"]
        expected["rq-create-key"] = (
            "api_key", "create_api_key", "admin",
            {"key_id": key_id, "name": "bot", "permissions": ["trader"]},
        )  # fmt: skip
        key = {"X-API-Key": raw_key}
        order = {"side": "BUY", "qty": 0.01, "price": 1000, "client_order_id": "aud-1"}
        placed = await call("rq-place", "POST", "/api/order", 200, key, json=order)
        assert placed.json()["status"] == "ACCEPTED"
        expected["rq-place"] = (
            "order", "place_order", "admin",
            {"client_order_id": "aud-1", "symbol": "BTCUSDT", "side": "BUY", "qty": "0.01",
             "price": "1000", "order_type": "limit", "time_in_force": "GTC", "ok": True,
             "status": "ACCEPTED", "error": None},
        )  # fmt: skip
        cancel = {"client_order_id": "aud-1", "symbol": "BTCUSDT"}
        await call("rq-cancel", "POST", "/api/cancel", 200, key, json=cancel)
        expected["rq-cancel"] = ("order", "cancel_order", "admin", {**cancel, "ok": True})
        params = {"key_id": key_id}
        await call("rq-revoke-key", "DELETE", "/api/auth/keys", 200, admin, params=params)
        expected["rq-revoke-key"] = ("api_key", "revoke_api_key", "admin", {"key_id": key_id})
        refused = await call("rq-auth-failed", "GET", "/api/orders_state", 401, key)
        assert refused.json() == {"error": "invalid_api_key"}
        expected["rq-auth-failed"] = (
            "auth", "auth_failed", None, {"path": "/api/orders_state", "error": "invalid_api_key"}
        )  # fmt: skip

        # Logout with the access token: the caller is known.
        bearer = {"Authorization": f"Bearer {pair['access_token']}"}
        out = await call("rq-logout", "POST", "/api/auth/logout", 200, bearer, json=refresh)
        assert out.json() == {"ok": True}
        expected["rq-logout"] = ("auth", "logout", "admin", {})

        # Archive on demand records its statistics.
        done = await call("rq-archive", "POST", "/api/audit/archive", 200, admin)
        assert done.json() == {"ok": True, "stats": NOTHING_ARCHIVED}
        expected["rq-archive"] = ("audit", "trigger_archive", "admin", {"stats": NOTHING_ARCHIVED})

    ended = time.time()
    logs = await all_logs(gw)
    # Exactly one entry per audited request, and nothing else (reads are not audited).
    assert [entry["request_id"] for entry in logs] == sent[::-1]  # newest first
    assert len(logs) == len(expected)
    for entry in logs:
        assert entry["ip_address"] == PEER, entry
        assert began <= entry["timestamp"] <= ended, entry
    recorded = {
        entry["request_id"]: (
            entry["log_type"],
            entry["action"],
            entry["user_id"],
            entry["details"],
        )
        for entry in logs
    }
    assert recorded == expected


async def test_rate_limited_request_is_recorded_as_access(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(
        auth_enabled=True,
        admin_password=ADMIN_PASSWORD,
        rate_limit_capacity=1,
        rate_limit_refill=0.001,
    )
    async with running_gateway(settings) as gw:
        key, raw = await gw.runtime.auth.create_key("admin", "limited", ["trader"], None)
        headers = {"X-API-Key": raw}
        first = await gw.client.get("/api/orders_state", headers=headers)
        assert first.status_code == 200
        limited = await gw.client.get(
            "/api/orders_state", headers={**headers, "X-Request-ID": "rq-limited"}
        )
        assert limited.status_code == 429
        assert limited.json() == {"error": "rate_limit_exceeded"}
        logs = (await query(gw))["logs"]  # the admin's own bucket still has its one token
    assert len(logs) == 1
    entry = logs[0]
    assert entry["log_type"] == "access"
    assert entry["action"] == "rate_limited"
    assert entry["user_id"] == "admin"
    assert entry["ip_address"] == "127.0.0.1"
    assert entry["details"] == {"path": "/api/orders_state", "identity": f"key:{key.key_id}"}
    assert entry["request_id"] == "rq-limited"


async def test_entry_datetime_is_local_time_iso_8601_without_zone(gw: Gateway) -> None:
    """§8.2: `datetime` is the local-time ISO 8601 form of `timestamp`, with no zone."""
    stamp = SEED_BASE + 1234.5
    await insert(gw, [make_entry(stamp, "auth", "login")])
    [entry] = (await query(gw))["logs"]
    assert entry["timestamp"] == stamp
    assert entry["datetime"] == datetime.fromtimestamp(stamp).isoformat()


# --- query: filters, paging, clamping ---------------------------------------------------------

SEED_TYPES = [("auth", "login"), ("order", "place_order"), ("access", "rate_limited")]


def seed_entries() -> list[AuditEntry]:
    """12 entries one hour apart: types auth/order/access in turn, users alice/bob in turn."""
    return [
        make_entry(
            SEED_BASE + n * 3600 + 0.25,
            SEED_TYPES[n % 3][0],
            SEED_TYPES[n % 3][1],
            "alice" if n % 2 == 0 else "bob",
            {"n": n},
            f"seed-{n}",
        )
        for n in range(12)
    ]


@pytest.fixture
async def seeded(open_gw: Gateway) -> list[AuditEntry]:
    entries = seed_entries()
    await insert(open_gw, entries)
    return entries


def ns(body: dict[str, Any]) -> list[int]:
    return [entry["details"]["n"] for entry in body["logs"]]


ALL_NEWEST_FIRST = list(range(11, -1, -1))


async def test_query_returns_entries_newest_first_with_their_fields(
    open_gw: Gateway, seeded: list[AuditEntry]
) -> None:
    body = await query(open_gw)
    assert body["total"] == 12
    assert body["limit"] == 100
    assert body["offset"] == 0
    assert body["has_more"] is False
    assert body["logs"] == [entry.to_public() for entry in reversed(seeded)]
    newest = body["logs"][0]
    assert newest["timestamp"] == SEED_BASE + 11 * 3600 + 0.25
    assert newest["log_type"] == "access"
    assert newest["action"] == "rate_limited"
    assert newest["user_id"] == "bob"
    assert newest["ip_address"] == "10.0.0.1"
    assert newest["details"] == {"n": 11}
    assert newest["request_id"] == "seed-11"


async def test_query_filters_by_type_user_and_action(
    open_gw: Gateway, seeded: list[AuditEntry]
) -> None:
    order = await query(open_gw, type="order")
    assert ns(order) == [10, 7, 4, 1]
    assert order["total"] == 4
    assert {entry["log_type"] for entry in order["logs"]} == {"order"}

    alice = await query(open_gw, user_id="alice")
    assert ns(alice) == [10, 8, 6, 4, 2, 0]
    assert alice["total"] == 6

    login = await query(open_gw, action="login")
    assert ns(login) == [9, 6, 3, 0]

    both = await query(open_gw, type="auth", user_id="alice")
    assert ns(both) == [6, 0]
    assert both["total"] == 2

    assert ns(await query(open_gw, type="access", action="rate_limited", user_id="bob")) == [11, 5]
    nothing = await query(open_gw, type="auth", action="place_order")
    assert nothing == {"logs": [], "total": 0, "limit": 100, "offset": 0, "has_more": False}
    assert (await query(open_gw, type="nosuchtype"))["total"] == 0
    assert (await query(open_gw, user_id="carol"))["total"] == 0


async def test_query_filters_by_iso_8601_time_range(
    open_gw: Gateway, seeded: list[AuditEntry]
) -> None:
    start = iso(SEED_BASE + 2.5 * 3600)  # between entries 2 and 3
    end = iso(SEED_BASE + 7.5 * 3600)  # between entries 7 and 8
    assert (start, end) == ("2026-01-01T02:30:00Z", "2026-01-01T07:30:00Z")
    window = await query(open_gw, start_time=start, end_time=end)
    assert ns(window) == [7, 6, 5, 4, 3]
    assert window["total"] == 5
    assert ns(await query(open_gw, start_time=start)) == [11, 10, 9, 8, 7, 6, 5, 4, 3]
    assert ns(await query(open_gw, end_time=end)) == [7, 6, 5, 4, 3, 2, 1, 0]
    # The same kind of instant written with another offset.
    plus_one = iso(SEED_BASE + 8.5 * 3600, timedelta(hours=1))
    assert plus_one == "2026-01-01T09:30:00+01:00"
    assert ns(await query(open_gw, start_time=plus_one)) == [11, 10, 9]
    # Combined with the other filters.
    assert ns(await query(open_gw, type="order", start_time=start, end_time=end)) == [7, 4]
    assert ns(await query(open_gw, start_time=end, end_time=start)) == []


async def test_unparseable_times_are_ignored(open_gw: Gateway, seeded: list[AuditEntry]) -> None:
    start = iso(SEED_BASE + 2.5 * 3600)
    cases: list[tuple[dict[str, str], list[int]]] = [
        ({"start_time": "yesterday"}, ALL_NEWEST_FIRST),
        ({"end_time": "2026-13-45T00:00:00Z"}, ALL_NEWEST_FIRST),
        ({"start_time": "not a time", "end_time": "also not"}, ALL_NEWEST_FIRST),
        ({"start_time": ""}, ALL_NEWEST_FIRST),
        # One bad bound does not drop the good one.
        ({"start_time": start, "end_time": "soon"}, [11, 10, 9, 8, 7, 6, 5, 4, 3]),
    ]
    for params, expected in cases:
        body = await query(open_gw, **params)
        assert ns(body) == expected, params
        assert body["total"] == len(expected), params


async def test_paging_with_limit_offset_and_has_more(
    open_gw: Gateway, seeded: list[AuditEntry]
) -> None:
    first = await query(open_gw, limit=5)
    assert ns(first) == [11, 10, 9, 8, 7]
    assert (first["total"], first["limit"], first["offset"], first["has_more"]) == (12, 5, 0, True)
    second = await query(open_gw, limit=5, offset=5)
    assert ns(second) == [6, 5, 4, 3, 2]
    assert (second["total"], second["offset"], second["has_more"]) == (12, 5, True)
    last = await query(open_gw, limit=5, offset=10)
    assert ns(last) == [1, 0]
    assert (last["total"], last["offset"], last["has_more"]) == (12, 10, False)
    exact = await query(open_gw, limit=4, offset=8)
    assert ns(exact) == [3, 2, 1, 0]
    assert exact["has_more"] is False
    beyond = await query(open_gw, limit=5, offset=12)
    assert beyond == {"logs": [], "total": 12, "limit": 5, "offset": 12, "has_more": False}
    filtered = await query(open_gw, type="auth", limit=3)
    assert ns(filtered) == [9, 6, 3]
    assert (filtered["total"], filtered["has_more"]) == (4, True)
    rest = await query(open_gw, type="auth", limit=3, offset=3)
    assert ns(rest) == [0]
    assert (rest["total"], rest["has_more"]) == (4, False)


async def test_limit_and_offset_are_clamped(open_gw: Gateway) -> None:
    total = 1005
    entries = [
        make_entry(SEED_BASE + n, "order", "place_order", details={"n": n}) for n in range(total)
    ]
    await insert(open_gw, entries)
    # params -> (limit, offset, number of entries answered)
    cases: list[tuple[dict[str, str | int], tuple[int, int, int]]] = [
        ({"limit": 0}, (1, 0, 1)),
        ({"limit": -5}, (1, 0, 1)),
        ({"limit": 1}, (1, 0, 1)),
        ({"limit": 5000}, (1000, 0, 1000)),
        ({"limit": 1000}, (1000, 0, 1000)),
        ({"limit": 1001}, (1000, 0, 1000)),
        ({"limit": "abc"}, (100, 0, 100)),
        ({"limit": "2.5"}, (100, 0, 100)),
        ({"limit": ""}, (100, 0, 100)),
        ({}, (100, 0, 100)),
        ({"offset": -3}, (100, 0, 100)),
        ({"offset": "xyz"}, (100, 0, 100)),
        ({"offset": 1000, "limit": 10}, (10, 1000, 5)),
        ({"offset": 2000, "limit": "x"}, (100, 2000, 0)),
    ]
    for params, (limit, offset, count) in cases:
        body = await query(open_gw, **params)
        answered = (body["limit"], body["offset"], body["total"], len(body["logs"]))
        assert answered == (limit, offset, total, count), params
        assert body["has_more"] is (offset + count < total), params
        newest = total - 1 - offset
        assert ns(body) == list(range(newest, newest - count, -1)), params


# --- access -----------------------------------------------------------------------------------


async def test_audit_endpoints_need_admin_config(gw: Gateway) -> None:
    auth = gw.runtime.auth
    await auth.create_user("vera", USER_PASSWORD, ["viewer"], "admin")
    await auth.create_user("tom", USER_PASSWORD, ["trader"], "admin")
    _, viewer_key = await auth.create_key("admin", "viewer", ["viewer"], None)
    _, keys_admin = await auth.create_key("admin", "k", ["admin:keys", "admin:users"], None)
    _, auditor = await auth.create_key("admin", "auditor", ["admin:config"], None)
    refused_callers = {
        "viewer user": as_user(gw, "vera"),
        "trader user": as_user(gw, "tom"),
        "viewer key": {"X-API-Key": viewer_key},
        "key and user admin key": {"X-API-Key": keys_admin},
    }
    for method, path in AUDIT_ENDPOINTS:
        anonymous = await gw.client.request(method, path)
        assert anonymous.status_code == 401, path
        assert anonymous.json() == {"error": "authentication_required"}, path
        bad_token = await gw.client.request(method, path, headers={"Authorization": "Bearer x.y.z"})
        assert bad_token.status_code == 401, path
        assert bad_token.json() == {"error": "invalid_token"}, path
        for who, headers in refused_callers.items():
            refused = await gw.client.request(method, path, headers=headers)
            assert refused.status_code == 403, (path, who)
            assert refused.json() == FORBIDDEN, (path, who)
        allowed = await gw.client.request(method, path, headers={"X-API-Key": auditor})
        assert allowed.status_code == 200, (path, allowed.text)
        by_admin = await gw.client.request(method, path, headers=as_user(gw))
        assert by_admin.status_code == 200, (path, by_admin.text)
    # Refusals are themselves audited.
    denied = (await query(gw, action="permission_denied", user_id="vera"))["logs"]
    assert [(entry["log_type"], entry["details"]) for entry in denied] == [
        ("access", {"path": path, "permission": "admin:config"})
        for _, path in reversed(AUDIT_ENDPOINTS)
    ]


# --- stats ------------------------------------------------------------------------------------


async def test_stats_shape_policies_and_counts(gw: Gateway) -> None:
    empty = await stats(gw)
    assert empty == {
        "status": "active",
        "policies": POLICIES,
        "entries": {},
        "total_entries": 0,
        "archive_files": {},
        "archive_size_bytes": 0,
        "queue_depth": 0,
    }
    assert list(empty["policies"]) == list(POLICIES)
    for policy in empty["policies"].values():
        assert list(policy) == ["retention_days", "archive_before_delete", "max_file_size_mb"]
    now = time.time()
    await insert(
        gw,
        [make_entry(now - n, "auth", "login") for n in range(3)]
        + [make_entry(now - n, "order", "place_order") for n in range(2)]
        + [make_entry(now, "access", "rate_limited"), make_entry(now, "custom", "thing")],
    )
    counted = await stats(gw)
    assert counted["entries"] == {"auth": 3, "order": 2, "access": 1, "custom": 1}
    assert counted["total_entries"] == 7
    assert counted["queue_depth"] == 0
    assert counted["policies"] == POLICIES


# --- archive ----------------------------------------------------------------------------------


async def test_archive_moves_expired_entries_to_gzipped_ndjson(
    gw: Gateway, settings: Settings
) -> None:
    now = time.time()
    old_auth = [
        make_entry(now - 100 * DAY + n, "auth", "login", "alice", {"n": n, "nested": {"a": [1]}},
                   f"old-auth-{n}")
        for n in range(3)
    ]  # fmt: skip
    old_access = [
        make_entry(now - 20 * DAY + n, "access", "rate_limited", None, {"n": n}) for n in range(2)
    ]
    old_order = make_entry(now - 100 * DAY, "order", "place_order", "bob", {}, "old-order")
    fresh_auth = make_entry(now - DAY, "auth", "login", "carol", {}, "fresh-auth")
    await insert(gw, [*old_auth, *old_access, old_order, fresh_auth])

    body = await archive(gw, "rq-archive")
    auth_days = sorted({day_of(entry.timestamp) for entry in old_auth})
    expected_stats = {
        "archived_files": len(auth_days),
        "deleted_files": 0,
        "bytes_freed": 0,
        "errors": [],
        "archived_entries": 3,
        "deleted_entries": 5,
    }
    assert body["stats"] == expected_stats

    # The archive holds exactly the auth entries; access entries are not archived.
    folder = archive_dir(settings)
    names = sorted(path.name for path in folder.iterdir())
    assert names == [f"auth_{day}.ndjson.gz" for day in auth_days]
    archived = [
        item for day in auth_days for item in read_archive(folder / f"auth_{day}.ndjson.gz")
    ]
    assert archived == [entry.to_public() for entry in old_auth]

    # What is left: the fresh auth entry, the order (365 days) and the archive's own entry.
    logs = await all_logs(gw)
    assert [entry["request_id"] for entry in logs] == ["rq-archive", "fresh-auth", "old-order"]
    trigger = logs[0]
    assert trigger["log_type"] == "audit"
    assert trigger["action"] == "trigger_archive"
    assert trigger["user_id"] == "admin"
    assert trigger["details"] == {"stats": expected_stats}

    size = sum(path.stat().st_size for path in folder.iterdir())
    after = await stats(gw)
    assert after["entries"] == {"audit": 1, "auth": 1, "order": 1}
    assert after["total_entries"] == 3
    assert after["archive_files"] == {"auth": {"count": len(auth_days), "size_bytes": size}}
    assert after["archive_size_bytes"] == size

    # Nothing more to do the second time.
    assert (await archive(gw))["stats"] == NOTHING_ARCHIVED


async def test_audit_retention_setting_shortens_a_policy(
    make_settings: Callable[..., Settings],
    retention_ran: threading.Event,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("VELOZ_AUDIT_RETENTION", "auth:7")
    settings = make_settings(auth_enabled=True, admin_password=ADMIN_PASSWORD)
    assert settings.audit_retention == {"auth": 7}
    async with started(settings, retention_ran) as gw:
        policies = (await stats(gw))["policies"]
        assert policies == {
            **POLICIES,
            "auth": {"retention_days": 7, "archive_before_delete": True, "max_file_size_mb": 100},
        }
        now = time.time()
        expired = make_entry(now - 10 * DAY, "auth", "login", request_id="ten-days")
        kept = make_entry(now - 5 * DAY, "auth", "login", request_id="five-days")
        order = make_entry(now - 10 * DAY, "order", "place_order", request_id="order")
        await insert(gw, [expired, kept, order])
        result = (await archive(gw, "rq-archive"))["stats"]
        assert result["archived_entries"] == 1
        assert result["deleted_entries"] == 1
        assert result["archived_files"] == 1
        path = archive_dir(settings) / f"auth_{day_of(expired.timestamp)}.ndjson.gz"
        assert read_archive(path) == [expired.to_public()]
        remaining = {entry["request_id"] for entry in await all_logs(gw)}
        assert remaining == {"five-days", "order", "rq-archive"}


# --- durability and switching off -------------------------------------------------------------


async def test_entries_survive_a_restart_and_a_stop_writes_the_queue(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings()  # auth off: the caller is `anonymous`
    async with running_gateway(settings) as gw:
        order = {"side": "BUY", "qty": 0.01, "price": 1000, "client_order_id": "keep-1"}
        placed = await gw.client.post("/api/order", json=order, headers={"X-Request-ID": "rq-1"})
        assert placed.status_code == 200
        audit = gw.runtime.audit
        for n in range(300):
            await audit.record("order", "bulk", user_id="u", details={"n": n})
        assert audit.depth > 0  # still queued when the gateway stops
    async with running_gateway(settings) as gw:
        logs = await all_logs(gw)
    assert len(logs) == 301
    bulk = [entry for entry in logs if entry["action"] == "bulk"]
    assert [entry["details"]["n"] for entry in bulk] == list(range(299, -1, -1))
    [place] = [entry for entry in logs if entry["action"] == "place_order"]
    assert place["request_id"] == "rq-1"
    assert place["user_id"] == "anonymous"
    assert place["details"]["client_order_id"] == "keep-1"


async def test_nothing_is_recorded_when_the_audit_log_is_disabled(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(
        auth_enabled=True, admin_password=ADMIN_PASSWORD, audit_log_enabled=False
    )
    async with running_gateway(settings) as gw:
        admin = as_user(gw)
        order = {"side": "BUY", "qty": 0.01, "price": 1000, "client_order_id": "off-1"}
        assert (await gw.client.post("/api/order", json=order, headers=admin)).status_code == 200
        bad_key = {"X-API-Key": "veloz_" + "0" * 64}
        assert (await gw.client.get("/api/orders_state", headers=bad_key)).status_code == 401
        wrong = {"user_id": "admin", "password": "wrong-password-1"}
        assert (await gw.client.post("/api/auth/login", json=wrong)).status_code == 401
        await archive(gw)
        body = await query(gw)
        assert body == {"logs": [], "total": 0, "limit": 100, "offset": 0, "has_more": False}
        summary = await stats(gw)
        assert summary["entries"] == {}
        assert summary["total_entries"] == 0
        await gw.runtime.audit.flush()
        counted = gw.runtime.retention.repository.search(AuditQuery(), 10, 0)
    assert counted == ([], 0)
