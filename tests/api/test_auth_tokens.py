"""Login, access and refresh tokens, logout and revocation over HTTP (contract §2.2-§2.4, F14).

Auth is on unless a test is about it being off. Tokens are forged with PyJWT (or by hand) under
the gateway's own secret, read from `<data_dir>/jwt_secret`, to prove that only well-formed HS256
tokens of the right type pass.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import stat
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import jwt
import pytest

import app.auth.service as auth_service
from app.auth.tokens import TokenCodec
from app.core.config import Settings
from tests.conftest import Gateway, running_gateway

pytestmark = pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")

ADMIN_PASSWORD = "correct-horse-1"
REFRESH_LIFETIME = 604800
TOKEN_PAIR_FIELDS = ["access_token", "refresh_token", "token_type", "expires_in"]
ACCESS_FIELDS = ["access_token", "token_type", "expires_in"]
INVALID_TOKEN = {"error": "invalid_token"}
INVALID_REFRESH = {"error": "invalid_refresh_token"}
REFRESH_REQUIRED = {"error": "bad_params", "message": "refresh_token is required"}
HEX32 = re.compile(r"[0-9a-f]{32}")


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


def claims_of(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims


def jwt_secret(settings: Settings) -> str:
    return (settings.data_dir / "jwt_secret").read_text(encoding="utf-8").strip()


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64_json(value: dict[str, Any]) -> str:
    return b64(json.dumps(value).encode())


def access_claims(sub: str = "admin", **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {"sub": sub, "iat": now, "exp": now + 600, "type": "access",
                              "jti": "ab" * 16}  # fmt: skip
    claims.update(changes)
    return claims


async def login(gw: Gateway, user_id: str = "admin", password: str = ADMIN_PASSWORD) -> Any:
    response = await gw.client.post(
        "/api/auth/login", json={"user_id": user_id, "password": password}
    )
    assert response.status_code == 200, response.text
    return response.json()


async def refresh(gw: Gateway, token: str) -> httpx.Response:
    return await gw.client.post("/api/auth/refresh", json={"refresh_token": token})


async def market(gw: Gateway, token: str) -> httpx.Response:
    """A route every role may read (read:market): the token alone decides the answer."""
    return await gw.client.get("/api/market", headers=bearer(token))


async def assert_token_works(gw: Gateway, token: str) -> None:
    response = await market(gw, token)
    assert response.status_code == 200, response.text


async def assert_token_refused(gw: Gateway, token: str) -> None:
    response = await market(gw, token)
    assert response.status_code == 401, response.text
    assert response.json() == INVALID_TOKEN


async def create_user(gw: Gateway, user_id: str, password: str) -> None:
    admin = gw.runtime.auth.tokens.issue_access("admin")
    response = await gw.client.post(
        "/api/auth/users",
        json={"user_id": user_id, "password": password, "roles": ["trader"]},
        headers=bearer(admin),
    )
    assert response.status_code == 201, response.text


async def disable_user(gw: Gateway, user_id: str) -> None:
    admin = gw.runtime.auth.tokens.issue_access("admin")
    response = await gw.client.delete(
        "/api/auth/users", params={"user_id": user_id}, headers=bearer(admin)
    )
    assert response.status_code == 200, response.text


# --- login (§2.2) ----------------------------------------------------------------------------


async def test_login_answers_a_token_pair(gw: Gateway, settings: Settings) -> None:
    before = int(time.time())
    response = await gw.client.post(
        "/api/auth/login", json={"user_id": "admin", "password": ADMIN_PASSWORD}
    )
    after = int(time.time())
    assert response.status_code == 200
    body = response.json()
    assert list(body) == TOKEN_PAIR_FIELDS
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600

    access = claims_of(body["access_token"])
    assert set(access) == {"sub", "iat", "exp", "type", "jti"}
    assert access["sub"] == "admin"
    assert before <= access["iat"] <= after
    assert access["exp"] == access["iat"] + 3600
    assert access["type"] == "access"
    assert isinstance(access["jti"], str)
    assert access["jti"]
    assert jwt.get_unverified_header(body["access_token"]) == {"alg": "HS256", "typ": "JWT"}

    refresh_claims = claims_of(body["refresh_token"])
    assert set(refresh_claims) == {"sub", "iat", "exp", "type", "jti"}  # no fam: rotation off
    assert refresh_claims["sub"] == "admin"
    assert refresh_claims["type"] == "refresh"
    assert HEX32.fullmatch(refresh_claims["jti"])
    assert refresh_claims["exp"] == refresh_claims["iat"] + REFRESH_LIFETIME
    assert refresh_claims["jti"] != access["jti"]

    # Access tokens are signed with the secret, refresh tokens with SHA-256(secret + "_refresh").
    secret = jwt_secret(settings)
    assert jwt.decode(body["access_token"], secret, algorithms=["HS256"])["type"] == "access"
    refresh_key = hashlib.sha256(secret.encode() + b"_refresh").digest()
    assert jwt.decode(body["refresh_token"], refresh_key, algorithms=["HS256"])["sub"] == "admin"
    await assert_token_works(gw, body["access_token"])

    # The body is JSON whatever the Content-Type (§1.3); the user id is stripped, the password
    # is not (see the failures below).
    content = json.dumps({"user_id": "  admin \t", "password": ADMIN_PASSWORD})
    for headers in ({"Content-Type": "text/plain"}, {}):
        response = await gw.client.post("/api/auth/login", content=content, headers=headers)
        assert response.status_code == 200, (headers, response.text)
        assert list(response.json()) == TOKEN_PAIR_FIELDS
        assert claims_of(response.json()["access_token"])["sub"] == "admin"


async def test_expires_in_follows_token_expiry(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(auth_enabled=True, admin_password=ADMIN_PASSWORD, token_expiry=120)
    async with running_gateway(settings) as gw:
        body = await login(gw)
        assert body["expires_in"] == 120
        claims = claims_of(body["access_token"])
        assert claims["exp"] - claims["iat"] == 120
        refreshed = await refresh(gw, body["refresh_token"])
        assert refreshed.json()["expires_in"] == 120
        renewed = claims_of(refreshed.json()["access_token"])
        assert renewed["exp"] - renewed["iat"] == 120
        # The refresh token's lifetime is fixed at 7 days whatever the access lifetime.
        refresh_claims = claims_of(body["refresh_token"])
        assert refresh_claims["exp"] - refresh_claims["iat"] == REFRESH_LIFETIME


async def test_login_bad_input(gw: Gateway) -> None:
    bodies: list[dict[str, Any]] = [
        {},
        {"user_id": "admin"},
        {"password": ADMIN_PASSWORD},
        {"user_id": "", "password": ADMIN_PASSWORD},
        {"user_id": "   ", "password": ADMIN_PASSWORD},
        {"user_id": "admin", "password": ""},
        {"user_id": None, "password": ADMIN_PASSWORD},
        {"user_id": "admin", "password": None},
        {"user_id": 5, "password": ADMIN_PASSWORD},
        {"user_id": ["admin"], "password": ADMIN_PASSWORD},
        {"user_id": "admin", "password": 12345678},
        {"user_id": "admin", "password": [ADMIN_PASSWORD]},
        {"user_id": "admin", "password": {"value": ADMIN_PASSWORD}},
        {"user_id": "admin", "password": True},
    ]
    for body in bodies:
        response = await gw.client.post("/api/auth/login", json=body)
        assert response.status_code == 400, body
        assert response.json() == {"error": "bad_params"}, body  # no message key (§2.2)
    empty = await gw.client.post("/api/auth/login")
    assert empty.status_code == 400
    assert empty.json() == {"error": "bad_params"}
    # Invalid JSON is bad_json whatever the type; a form body is not parsed as a form.
    cases = [
        ("{", "application/json"),
        ('{"user_id": "admin",}', "application/json"),
        ("user_id=admin&password=correct-horse-1", "application/x-www-form-urlencoded"),
        ("\xff\xfe", "text/plain"),
    ]
    for raw, content_type in cases:
        response = await gw.client.post(
            "/api/auth/login", content=raw.encode("latin-1"), headers={"Content-Type": content_type}
        )
        assert response.status_code == 400, raw
        assert response.json() == {
            "error": "bad_json",
            "message": "request body is not valid JSON",
        }, raw


async def test_login_non_object_json_is_bad_params_without_message(gw: Gateway) -> None:
    for raw in ["[]", '["admin", "correct-horse-1"]', '"admin"', "5", "null", "true"]:
        response = await gw.client.post(
            "/api/auth/login", content=raw, headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 400, raw
        assert response.json() == {"error": "bad_params"}, raw


async def test_login_failures_are_invalid_credentials(gw: Gateway) -> None:
    await create_user(gw, "carol", "carol-password-1")
    await disable_user(gw, "carol")
    attempts = [
        ("admin", "wrong-password"),
        ("admin", ADMIN_PASSWORD + " "),  # the password is not stripped
        ("Admin", ADMIN_PASSWORD),  # no such user: ids are case-sensitive
        ("carol", "carol-password-1"),  # disabled
    ]
    for user_id, password in attempts:
        response = await gw.client.post(
            "/api/auth/login", json={"user_id": user_id, "password": password}
        )
        assert response.status_code == 401, (user_id, password)
        assert response.json() == {"error": "invalid_credentials"}, (user_id, password)


async def test_login_works_with_auth_disabled(make_settings: Callable[..., Settings]) -> None:
    async with running_gateway(make_settings(admin_password=ADMIN_PASSWORD)) as gw:
        assert gw.runtime.auth.enabled is False
        body = await login(gw)
        assert list(body) == TOKEN_PAIR_FIELDS
        assert claims_of(body["access_token"])["sub"] == "admin"
        refreshed = await refresh(gw, body["refresh_token"])
        assert refreshed.status_code == 200
        assert list(refreshed.json()) == ACCESS_FIELDS
        wrong = await gw.client.post(
            "/api/auth/login", json={"user_id": "admin", "password": "wrong-password"}
        )
        assert wrong.status_code == 401
        assert wrong.json() == {"error": "invalid_credentials"}
        out = await gw.client.post(
            "/api/auth/logout", json={"refresh_token": body["refresh_token"]}
        )
        assert out.status_code == 200
        assert out.json() == {"ok": True}
        assert (await refresh(gw, body["refresh_token"])).json() == INVALID_REFRESH
        # Credentials are ignored with auth off: even a garbage token reads the market.
        assert (await market(gw, "garbage")).status_code == 200


# --- token attacks ---------------------------------------------------------------------------


async def test_tampered_payload_is_refused(gw: Gateway) -> None:
    await create_user(gw, "mallory", "mallory-password")
    token = (await login(gw, "mallory", "mallory-password"))["access_token"]
    await assert_token_works(gw, token)
    header, _, signature = token.split(".")
    claims = claims_of(token)
    claims["sub"] = "admin"
    forged = f"{header}.{b64_json(claims)}.{signature}"
    await assert_token_refused(gw, forged)
    keys = await gw.client.get("/api/auth/keys", headers=bearer(forged))
    assert keys.status_code == 401
    assert keys.json() == INVALID_TOKEN
    # A longer lifetime on one's own token is refused as well.
    longer = claims_of(token)
    longer["exp"] += 10**6
    await assert_token_refused(gw, f"{header}.{b64_json(longer)}.{signature}")


async def test_forged_signatures_and_algorithms_are_refused(
    gw: Gateway, settings: Settings
) -> None:
    secret = jwt_secret(settings)
    control = jwt.encode(access_claims(), secret, algorithm="HS256")
    await assert_token_works(gw, control)  # the constructions below, done right, pass

    token = gw.runtime.auth.tokens.issue_access("admin")
    header, payload, signature = token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)))
    raw[0] ^= 0x01
    forged = [
        f"{header}.{payload}.{b64(bytes(raw))}",  # one bit of the signature flipped
        f"{header}.{payload}.",
        f"{header}.{payload}",
        f"{header}.{payload}.{signature}.{signature}",
        f"{header}.{payload}.{signature[::-1]}",
        # alg "none"
        jwt.encode(access_claims(), None, algorithm="none"),
        f"{b64_json({'alg': 'none', 'typ': 'JWT'})}.{b64_json(access_claims())}.",
        f"{b64_json({'alg': 'NONE', 'typ': 'JWT'})}.{b64_json(access_claims())}.",
        # another secret
        TokenCodec("another-secret-" + "z" * 40, 3600).issue_access("admin"),
        jwt.encode(access_claims(), secret + "x", algorithm="HS256"),
        # garbage
        "garbage",
        "a.b.c",
        "Bearer x",
    ]
    for algorithm in ("HS384", "HS512"):  # right secret, other HMAC sizes
        other = jwt.encode(access_claims(), secret, algorithm=algorithm)
        assert jwt.decode(other, secret, algorithms=[algorithm])["sub"] == "admin"
        forged.append(other)
    for alg in ("RS256", "ES256", "PS256"):
        # HMAC-SHA256 under the secret, but the header claims a public-key algorithm.
        signing_input = f"{b64_json({'alg': alg, 'typ': 'JWT'})}.{b64_json(access_claims())}"
        mac = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256)
        forged.append(f"{signing_input}.{b64(mac.digest())}")
    for bad_token in forged:
        await assert_token_refused(gw, bad_token)
    await assert_token_works(gw, token)
    # A refresh token from another secret is refused at /refresh too.
    response = await refresh(gw, TokenCodec("another-secret-" + "z" * 40, 3600).issue_refresh("a"))
    assert response.status_code == 401
    assert response.json() == INVALID_REFRESH


async def test_wrong_type_expired_or_incomplete_tokens_are_refused(
    gw: Gateway, settings: Settings
) -> None:
    secret = jwt_secret(settings)
    codec = TokenCodec(secret, 3600)
    access, refresh_token = codec.issue_access("admin"), codec.issue_refresh("admin")
    await assert_token_refused(gw, refresh_token)  # a refresh token as an access token
    as_refresh = await refresh(gw, access)  # an access token at /refresh
    assert as_refresh.status_code == 401
    assert as_refresh.json() == INVALID_REFRESH
    # Signed with the access key but typed "refresh": neither route takes it.
    typed = jwt.encode(access_claims(type="refresh"), secret, algorithm="HS256")
    await assert_token_refused(gw, typed)
    response = await refresh(gw, typed)
    assert response.status_code == 401
    assert response.json() == INVALID_REFRESH

    # Expired, and (the control) nearly expired.
    await assert_token_refused(gw, codec.issue_access("admin", now=int(time.time()) - 3605))
    await assert_token_works(gw, codec.issue_access("admin", now=int(time.time()) - 3500))

    for missing in ("sub", "iat", "exp", "type", "jti"):
        claims = access_claims()
        del claims[missing]
        response = await market(gw, jwt.encode(claims, secret, algorithm="HS256"))
        assert response.status_code == 401, missing
        assert response.json() == INVALID_TOKEN, missing
    bad: list[dict[str, Any]] = [
        {"sub": ""},
        {"sub": "nobody"},
        {"jti": ""},
        {"type": "ACCESS"},
        {"type": "id"},
        {"exp": "tomorrow"},
    ]
    for changes in bad:
        response = await market(gw, jwt.encode(access_claims(**changes), secret, "HS256"))
        assert response.status_code == 401, changes
        assert response.json() == INVALID_TOKEN, changes


# --- refresh (§2.4) --------------------------------------------------------------------------


async def test_refresh_answers_a_new_access_token(gw: Gateway) -> None:
    pair = await login(gw)
    response = await refresh(gw, pair["refresh_token"])
    assert response.status_code == 200
    body = response.json()
    assert list(body) == ACCESS_FIELDS  # no refresh_token key without rotation
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    claims = claims_of(body["access_token"])
    assert (claims["sub"], claims["type"]) == ("admin", "access")
    assert claims["exp"] == claims["iat"] + 3600
    assert claims["jti"] != claims_of(pair["access_token"])["jti"]
    await assert_token_works(gw, body["access_token"])
    # Without rotation the same refresh token keeps working (§2.4: not rotated).
    again = await refresh(gw, pair["refresh_token"])
    assert again.status_code == 200
    assert list(again.json()) == ACCESS_FIELDS


async def test_refresh_and_logout_bad_input(gw: Gateway, settings: Settings) -> None:
    bodies: list[dict[str, Any]] = [
        {},
        {"refresh_token": ""},
        {"refresh_token": "   "},
        {"refresh_token": None},
        {"refresh_token": 5},
        {"refresh_token": ["x"]},
        {"token": "x"},
    ]
    for path in ("/api/auth/refresh", "/api/auth/logout"):
        for body in bodies:
            response = await gw.client.post(path, json=body)
            assert response.status_code == 400, (path, body)
            assert response.json() == REFRESH_REQUIRED, (path, body)
        response = await gw.client.post(path)
        assert response.status_code == 400, path
        assert response.json() == REFRESH_REQUIRED, path

    codec = TokenCodec(jwt_secret(settings), 3600)
    now = int(time.time())
    refused = [
        "garbage",
        "a.b.c",
        "eyJhbGciOiJIUzI1NiJ9.e30.",
        "x" * 4000,
        codec.issue_refresh("admin", now=now - REFRESH_LIFETIME - 5),  # expired
        codec.issue_refresh("ghost"),  # no such user
    ]
    for token in refused:
        response = await refresh(gw, token)
        assert response.status_code == 401, token[:40]
        assert response.json() == INVALID_REFRESH, token[:40]
        # Logout is ok whatever it is given, with any credentials or none.
        for headers in ({}, bearer("garbage"), {"X-API-Key": "veloz_nope"}):
            response = await gw.client.post(
                "/api/auth/logout", json={"refresh_token": token}, headers=headers
            )
            assert response.status_code == 200, (token[:40], headers)
            assert response.json() == {"ok": True}, (token[:40], headers)
    nearly_expired = codec.issue_refresh("admin", now=now - REFRESH_LIFETIME + 60)
    assert (await refresh(gw, nearly_expired)).status_code == 200


async def test_disabled_users_tokens_stop_working(gw: Gateway) -> None:
    await create_user(gw, "dave", "dave-password-1")
    pair = await login(gw, "dave", "dave-password-1")
    await assert_token_works(gw, pair["access_token"])
    assert (await refresh(gw, pair["refresh_token"])).status_code == 200
    await disable_user(gw, "dave")
    response = await refresh(gw, pair["refresh_token"])
    assert response.status_code == 401
    assert response.json() == INVALID_REFRESH
    await assert_token_refused(gw, pair["access_token"])


# --- logout (§2.4, F14) ----------------------------------------------------------------------


async def test_logout_revokes_refresh_and_presented_access_token(gw: Gateway) -> None:
    pair = await login(gw)
    other = (await refresh(gw, pair["refresh_token"])).json()["access_token"]
    response = await gw.client.post(
        "/api/auth/logout",
        json={"refresh_token": pair["refresh_token"]},
        headers=bearer(pair["access_token"]),
    )
    assert response.status_code == 200
    assert response.json() == {"ok": True}

    refused = await refresh(gw, pair["refresh_token"])
    assert refused.status_code == 401
    assert refused.json() == INVALID_REFRESH
    await assert_token_refused(gw, pair["access_token"])
    await assert_token_works(gw, other)  # another access token of the same user
    again = await gw.client.post("/api/auth/logout", json={"refresh_token": pair["refresh_token"]})
    assert again.status_code == 200
    assert again.json() == {"ok": True}


async def test_logout_revokes_only_what_is_presented(gw: Gateway) -> None:
    codec = gw.runtime.auth.tokens
    access, refresh_token = codec.issue_access("admin"), codec.issue_refresh("admin")
    # An access token in the body revokes nothing.
    response = await gw.client.post("/api/auth/logout", json={"refresh_token": access})
    assert response.json() == {"ok": True}
    assert (await refresh(gw, refresh_token)).status_code == 200
    await assert_token_works(gw, access)
    # Without an Authorization header the access token stays valid; the refresh token dies.
    response = await gw.client.post("/api/auth/logout", json={"refresh_token": refresh_token})
    assert response.json() == {"ok": True}
    assert (await refresh(gw, refresh_token)).json() == INVALID_REFRESH
    await assert_token_works(gw, access)


async def test_revocations_survive_a_restart(settings: Settings) -> None:
    async with running_gateway(settings) as gw:
        revoked = await login(gw)
        kept_access = gw.runtime.auth.tokens.issue_access("admin")
        kept_refresh = gw.runtime.auth.tokens.issue_refresh("admin")
        response = await gw.client.post(
            "/api/auth/logout",
            json={"refresh_token": revoked["refresh_token"]},
            headers=bearer(revoked["access_token"]),
        )
        assert response.json() == {"ok": True}

    async with running_gateway(settings) as gw:
        assert (await refresh(gw, revoked["refresh_token"])).json() == INVALID_REFRESH
        await assert_token_refused(gw, revoked["access_token"])
        # Tokens issued before the restart and never revoked still work after it.
        await assert_token_works(gw, kept_access)
        renewed = await refresh(gw, kept_refresh)
        assert renewed.status_code == 200
        await assert_token_works(gw, renewed.json()["access_token"])


async def test_jwt_secret_file_is_private_and_reused(settings: Settings) -> None:
    path = settings.data_dir / "jwt_secret"
    assert not path.exists()
    async with running_gateway(settings) as gw:
        pair = await login(gw)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    secret = jwt_secret(settings)
    assert re.fullmatch(r"[0-9a-f]{64}", secret)
    key_secret = settings.data_dir / "api_key_secret"
    assert stat.S_IMODE(key_secret.stat().st_mode) == 0o600
    assert key_secret.read_text(encoding="utf-8").strip() != secret

    async with running_gateway(settings) as gw:
        assert jwt_secret(settings) == secret
        await assert_token_works(gw, pair["access_token"])
        assert (await refresh(gw, pair["refresh_token"])).status_code == 200
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


async def test_configured_jwt_secret_is_used_and_not_written(
    make_settings: Callable[..., Settings],
) -> None:
    secret = "configured-secret-" + "k" * 32
    settings = make_settings(auth_enabled=True, admin_password=ADMIN_PASSWORD, jwt_secret=secret)
    async with running_gateway(settings) as gw:
        pair = await login(gw)
        assert jwt.decode(pair["access_token"], secret, algorithms=["HS256"])["sub"] == "admin"
    assert not (settings.data_dir / "jwt_secret").exists()


# --- refresh rotation ------------------------------------------------------------------------


@pytest.fixture
async def rotating(make_settings: Callable[..., Settings]) -> AsyncIterator[Gateway]:
    settings = make_settings(
        auth_enabled=True, admin_password=ADMIN_PASSWORD, refresh_rotation=True
    )
    async with running_gateway(settings) as running:
        yield running


async def test_rotation_answers_a_new_refresh_token(rotating: Gateway) -> None:
    pair = await login(rotating)
    assert HEX32.fullmatch(claims_of(pair["refresh_token"])["fam"])
    response = await refresh(rotating, pair["refresh_token"])
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "refresh_token"}
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    new_claims = claims_of(body["refresh_token"])
    old_claims = claims_of(pair["refresh_token"])
    assert new_claims["type"] == "refresh"
    assert new_claims["sub"] == "admin"
    assert new_claims["jti"] != old_claims["jti"]
    assert new_claims["fam"] == old_claims["fam"]
    await assert_token_works(rotating, body["access_token"])

    spent = await refresh(rotating, pair["refresh_token"])
    assert spent.status_code == 401
    assert spent.json() == INVALID_REFRESH


async def test_rotation_reuse_revokes_the_whole_family(rotating: Gateway) -> None:
    first = await login(rotating)
    bystander = await login(rotating)  # another session, another family
    second = (await refresh(rotating, first["refresh_token"])).json()["refresh_token"]
    third = (await refresh(rotating, second)).json()["refresh_token"]

    reused = await refresh(rotating, first["refresh_token"])  # a rotated token comes back
    assert reused.status_code == 401
    assert reused.json() == INVALID_REFRESH
    for token in (third, second, first["refresh_token"]):
        response = await refresh(rotating, token)
        assert response.status_code == 401
        assert response.json() == INVALID_REFRESH
    other = await refresh(rotating, bystander["refresh_token"])
    assert other.status_code == 200
    assert "refresh_token" in other.json()

    # Logging out with the newest token of a family ends the family too.
    latest = other.json()["refresh_token"]
    response = await rotating.client.post("/api/auth/logout", json={"refresh_token": latest})
    assert response.json() == {"ok": True}
    assert (await refresh(rotating, latest)).json() == INVALID_REFRESH


async def test_rotation_reuse_detection_survives_a_restart(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(
        auth_enabled=True, admin_password=ADMIN_PASSWORD, refresh_rotation=True
    )
    async with running_gateway(settings) as gw:
        first = (await login(gw))["refresh_token"]
        second = (await refresh(gw, first)).json()["refresh_token"]
    async with running_gateway(settings) as gw:
        assert (await refresh(gw, first)).json() == INVALID_REFRESH  # reuse: family revoked
        assert (await refresh(gw, second)).json() == INVALID_REFRESH


async def test_family_revocation_outlives_the_reused_token(
    make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The family stays revoked while any of its tokens could still be valid, not only until
    the reused (older) token expires."""
    settings = make_settings(
        auth_enabled=True, admin_password=ADMIN_PASSWORD, refresh_rotation=True
    )
    async with running_gateway(settings) as gw:
        codec = TokenCodec(jwt_secret(settings), 3600)
        # A family whose current token is about to expire: it was issued nearly 7 days ago.
        old = codec.issue_refresh("admin", "f" * 32, now=int(time.time()) - REFRESH_LIFETIME + 30)
        rotated = await refresh(gw, old)
        assert rotated.status_code == 200
        newest = rotated.json()["refresh_token"]
        assert claims_of(newest)["fam"] == "f" * 32
        assert claims_of(newest)["exp"] > claims_of(old)["exp"] + REFRESH_LIFETIME - 60
        reused = await refresh(gw, old)  # the rotated token comes back: the family is revoked
        assert reused.json() == INVALID_REFRESH
        assert (await refresh(gw, newest)).json() == INVALID_REFRESH

    # Two minutes later, as the gateway sees it: the old token has expired, the newest has not.
    later = int(time.time()) + 120
    monkeypatch.setattr(auth_service, "_now", lambda: later)
    async with running_gateway(settings) as gw:
        response = await refresh(gw, newest)
        assert response.status_code == 401
        assert response.json() == INVALID_REFRESH
