"""§1 transport, §2 authentication and §3 rate limiting, as a client meets them."""

from __future__ import annotations

import pytest

from tests.contract.conftest import (
    ADMIN_PASSWORD,
    RATE_LIMIT_HEADERS,
    SECURITY_HEADERS,
    Api,
    assert_error,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_s1_3_a_missing_body_reads_as_empty(api: Api) -> None:
    """§1.3: no body is `{}`: login then lacks its fields (400 bad_params, no message)."""
    response = await api.client.post("/api/auth/login")
    assert response.status_code == 400
    assert response.json() == {"error": "bad_params"}


async def test_s1_3_non_object_json_is_400_not_a_dropped_connection(api: Api) -> None:
    """§1.3 left this undefined; F18 answers 400 bad_params."""
    for raw in (b"[1]", b'"x"', b"5"):
        response = await api.call(
            "POST", "/api/auth/keys", content=raw, headers={"Content-Type": "application/json"}
        )
        assert_error(response, 400, "bad_params")


async def test_s1_4_security_headers_hsts_and_cors(api: Api) -> None:
    """§1.4: security headers on errors too; HSTS only behind https; CORS only with Origin."""
    missing = await api.call("GET", "/api/nothing-here")
    assert_error(missing, 404, "not_found")  # F5: JSON, not stdlib HTML
    for name, value in SECURITY_HEADERS.items():
        assert missing.headers[name] == value
    assert "strict-transport-security" not in missing.headers
    assert "access-control-allow-origin" not in missing.headers
    https = await api.call(
        "GET", "/health", headers={"X-Forwarded-Proto": "https", "Origin": "https://ui.example"}
    )
    assert https.headers["strict-transport-security"] == "max-age=31536000; includeSubDomains"
    assert https.headers["access-control-allow-origin"] == "*"
    assert https.headers["access-control-allow-methods"] == "GET, POST, DELETE, OPTIONS"
    assert https.headers["access-control-allow-headers"] == "Content-Type, Authorization, X-API-Key"
    assert "access-control-max-age" not in https.headers
    preflight = await api.client.options("/api/order", headers={"Origin": "https://ui.example"})
    assert preflight.status_code == 204
    assert preflight.headers["access-control-max-age"] == "86400"


async def test_s1_6_wrong_method_is_json_405(api: Api) -> None:
    """§1.1 answered PUT with a 501 HTML page; F5 answers JSON 405."""
    assert_error(await api.call("PUT", "/api/order", json={}), 405, "method_not_allowed")


async def test_s2_2_login_and_s2_4_refresh_and_logout(api: Api) -> None:
    """§2.2/§2.4 work with auth off too (§2.1): the bodies, answers and error codes."""
    client = api.client
    assert (
        await client.post("/api/auth/login", json={"user_id": " ", "password": "x"})
    ).json() == {"error": "bad_params"}
    wrong = await client.post("/api/auth/login", json={"user_id": "admin", "password": "nope"})
    assert_error(wrong, 401, "invalid_credentials")
    login = await client.post(
        "/api/auth/login", json={"user_id": " admin ", "password": ADMIN_PASSWORD}
    )
    assert login.status_code == 200
    pair = login.json()
    assert list(pair) == ["access_token", "refresh_token", "token_type", "expires_in"]
    assert (pair["token_type"], pair["expires_in"]) == ("Bearer", 3600)
    assert not any(name in login.headers for name in RATE_LIMIT_HEADERS)

    assert_error(
        await client.post("/api/auth/refresh", json={}), 400, "bad_params",
        "refresh_token is required",
    )  # fmt: skip
    assert_error(
        await client.post("/api/auth/refresh", json={"refresh_token": "garbage"}),
        401, "invalid_refresh_token",
    )  # fmt: skip
    refreshed = await client.post(
        "/api/auth/refresh", json={"refresh_token": pair["refresh_token"]}
    )
    assert list(refreshed.json()) == ["access_token", "token_type", "expires_in"]

    garbage = await client.post("/api/auth/logout", json={"refresh_token": "garbage"})
    assert garbage.json() == {"ok": True}
    assert_error(
        await client.post("/api/auth/logout", json={}), 400, "bad_params",
        "refresh_token is required",
    )  # fmt: skip
    out = await client.post(
        "/api/auth/logout",
        json={"refresh_token": pair["refresh_token"]},
        headers={"Authorization": f"Bearer {pair['access_token']}"},
    )
    assert out.json() == {"ok": True}
    assert_error(
        await client.post("/api/auth/refresh", json={"refresh_token": pair["refresh_token"]}),
        401, "invalid_refresh_token",
    )  # fmt: skip
    if api.auth_on:  # F14: the access token sent with the logout is revoked as well
        assert_error(
            await client.get("/api/account",
                             headers={"Authorization": f"Bearer {pair['access_token']}"}),
            401, "invalid_token",
        )  # fmt: skip


async def test_s2_6_refusals_in_pipeline_order(api: Api) -> None:
    """§2.6: 401 codes, then 403 with the permission named; with auth off nothing is refused
    and credentials are ignored (§2.1)."""
    cases = [
        ({}, "authentication_required"),
        ({"Authorization": "Bearer not.a.jwt"}, "invalid_token"),
        ({"X-API-Key": "veloz_" + "0" * 64}, "invalid_api_key"),
        ({"x-api-key": "veloz_" + "0" * 64}, "invalid_api_key"),  # F3: any header case
        ({"Authorization": "Bearer not.a.jwt", "X-API-Key": "anything"}, "invalid_token"),
    ]
    for headers, code in cases:
        response = await api.client.get("/api/orders", headers=headers)
        if api.auth_on:
            assert_error(response, 401, code)
            assert not any(name in response.headers for name in RATE_LIMIT_HEADERS)
        else:
            assert response.status_code == 200
    if not api.auth_on:
        return
    created = await api.call(
        "POST", "/api/auth/keys", json={"name": "v", "permissions": ["viewer"]}
    )
    viewer = {"x-api-key": created.json()["api_key"]}
    refused = await api.client.get("/api/orders", headers=viewer)
    assert_error(refused, 403, "forbidden", "Required permissions: read:orders")
    allowed = await api.client.get("/api/market", headers=viewer)
    assert allowed.status_code == 200
    # F7: POST /api/config needs admin:config, no longer read:config.
    assert_error(
        await api.client.post("/api/config", json={}, headers=viewer), 403, "forbidden",
        "Required permissions: admin:config",
    )  # fmt: skip


async def test_s3_rate_limit_headers_and_429(api: Api) -> None:
    """§3: headers only with auth on; a 429 carries Retry-After and each header once (F4)."""
    if not api.auth_on:
        response = await api.call("GET", "/api/market")
        assert not any(name in response.headers for name in (*RATE_LIMIT_HEADERS, "retry-after"))
        return
    created = await api.call("POST", "/api/auth/keys", json={"name": "burst"})
    key = {"X-API-Key": created.json()["api_key"]}
    change = await api.call("POST", "/api/config", json={"rate_limit_capacity": 2})
    assert change.status_code == 200
    try:
        first = await api.client.get("/api/market", headers=key)
        assert first.headers["x-ratelimit-limit"] == "2"
        assert first.headers["x-ratelimit-remaining"] == "1"
        assert int(first.headers["x-ratelimit-reset"]) > 1_700_000_000
        await api.client.get("/api/market", headers=key)
        refused = await api.client.get("/api/market", headers=key)
        assert refused.json() == {"error": "rate_limit_exceeded"}
        assert refused.status_code == 429
        for name in (*RATE_LIMIT_HEADERS, "retry-after"):
            assert len(refused.headers.get_list(name)) == 1, name
        assert int(refused.headers["retry-after"]) >= 1
    finally:
        restored = await api.call("POST", "/api/config", json={"rate_limit_capacity": 10_000})
        assert restored.status_code == 200
