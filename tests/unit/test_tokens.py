"""TokenCodec: HS256 access and refresh tokens, their claims, keys and what verification refuses."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import jwt
import pytest

from app.auth.tokens import REFRESH_LIFETIME, InvalidToken, TokenClaims, TokenCodec

pytestmark = pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")

SECRET = "unit-test-secret-" + "x" * 32
REFRESH_KEY = hashlib.sha256(SECRET.encode() + b"_refresh").digest()
NOW = 1_900_000_000  # in the future, so tokens issued "now" are not expired


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hand_made(header: dict[str, Any], claims: dict[str, Any], key: bytes) -> str:
    """A JWT built without PyJWT, signed with HMAC-SHA256 whatever the header says."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


def unverified(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims


def good_claims(kind: str = "access", **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": "alice",
        "iat": now,
        "exp": now + 600,
        "type": kind,
        "jti": "a" * 32,
    }
    claims.update(changes)
    return claims


@pytest.fixture
def codec() -> TokenCodec:
    return TokenCodec(SECRET, 3600)


# --- issuing ---------------------------------------------------------------------------------


def test_access_token_claims_and_header(codec: TokenCodec) -> None:
    token = codec.issue_access("alice", now=NOW)
    assert jwt.get_unverified_header(token) == {"alg": "HS256", "typ": "JWT"}
    claims = unverified(token)
    assert set(claims) == {"sub", "iat", "exp", "type", "jti"}
    assert claims["sub"] == "alice"
    assert claims["iat"] == NOW
    assert claims["exp"] == NOW + 3600
    assert claims["type"] == "access"
    assert len(claims["jti"]) == 32
    int(claims["jti"], 16)


def test_access_lifetime_follows_the_codec(codec: TokenCodec) -> None:
    short = TokenCodec(SECRET, 90)
    assert short.access_lifetime == 90
    claims = unverified(short.issue_access("bob", now=NOW))
    assert claims["exp"] - claims["iat"] == 90


def test_refresh_token_claims_without_family(codec: TokenCodec) -> None:
    claims = unverified(codec.issue_refresh("alice", now=NOW))
    assert set(claims) == {"sub", "iat", "exp", "type", "jti"}
    assert claims["type"] == "refresh"
    assert claims["exp"] == NOW + 604800 == NOW + REFRESH_LIFETIME
    assert len(claims["jti"]) == 32
    int(claims["jti"], 16)


def test_refresh_token_carries_its_family(codec: TokenCodec) -> None:
    token = codec.issue_refresh("alice", family="f" * 32)
    assert unverified(token)["fam"] == "f" * 32
    assert codec.verify_refresh(token).fam == "f" * 32


def test_every_token_gets_a_fresh_jti(codec: TokenCodec) -> None:
    jtis = {unverified(codec.issue_access("alice", now=NOW))["jti"] for _ in range(20)}
    jtis |= {unverified(codec.issue_refresh("alice", now=NOW))["jti"] for _ in range(20)}
    assert len(jtis) == 40


def test_access_tokens_are_signed_with_the_secret(codec: TokenCodec) -> None:
    token = codec.issue_access("alice")
    claims = jwt.decode(token, SECRET, algorithms=["HS256"])
    assert claims["sub"] == "alice"
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, REFRESH_KEY, algorithms=["HS256"])


def test_refresh_tokens_are_signed_with_the_derived_key(codec: TokenCodec) -> None:
    token = codec.issue_refresh("alice")
    claims = jwt.decode(token, REFRESH_KEY, algorithms=["HS256"])
    assert claims["type"] == "refresh"
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, SECRET, algorithms=["HS256"])


# --- verifying -------------------------------------------------------------------------------


def test_round_trip(codec: TokenCodec) -> None:
    access = codec.issue_access("alice")
    claims = codec.verify_access(access)
    raw = unverified(access)
    assert claims == TokenClaims("alice", raw["iat"], raw["exp"], "access", raw["jti"], None)
    refresh = codec.verify_refresh(codec.issue_refresh("bob"))
    assert (refresh.sub, refresh.type, refresh.fam) == ("bob", "refresh", None)


def test_hand_made_hs256_token_is_accepted(codec: TokenCodec) -> None:
    token = hand_made({"alg": "HS256", "typ": "JWT"}, good_claims(), SECRET.encode())
    assert codec.verify_access(token).sub == "alice"


def test_access_and_refresh_tokens_are_not_interchangeable(codec: TokenCodec) -> None:
    with pytest.raises(InvalidToken):
        codec.verify_access(codec.issue_refresh("alice"))
    with pytest.raises(InvalidToken):
        codec.verify_refresh(codec.issue_access("alice"))


@pytest.mark.parametrize(
    ("kind", "key"),
    [("refresh", SECRET.encode()), ("access", REFRESH_KEY)],
    ids=["refresh-typed-under-access-key", "access-typed-under-refresh-key"],
)
def test_type_claim_must_match_even_with_the_right_key(
    codec: TokenCodec, kind: str, key: bytes
) -> None:
    """A token signed with the access key but typed refresh (and vice versa) is refused."""
    token = jwt.encode(good_claims(kind), key, algorithm="HS256")
    verify = codec.verify_access if key == SECRET.encode() else codec.verify_refresh
    with pytest.raises(InvalidToken):
        verify(token)


def test_expired_token_is_refused(codec: TokenCodec) -> None:
    token = codec.issue_access("alice", now=int(time.time()) - 7200)
    with pytest.raises(InvalidToken):
        codec.verify_access(token)
    old_refresh = codec.issue_refresh("alice", now=int(time.time()) - REFRESH_LIFETIME - 10)
    with pytest.raises(InvalidToken):
        codec.verify_refresh(old_refresh)


def test_token_from_another_secret_is_refused(codec: TokenCodec) -> None:
    other = TokenCodec("another-secret-" + "y" * 32, 3600)
    with pytest.raises(InvalidToken):
        codec.verify_access(other.issue_access("alice"))
    with pytest.raises(InvalidToken):
        codec.verify_refresh(other.issue_refresh("alice"))


def test_tampered_payload_is_refused(codec: TokenCodec) -> None:
    token = codec.issue_access("alice")
    header, _, signature = token.split(".")
    claims = unverified(token)
    claims["sub"] = "admin"
    forged = f"{header}.{b64(json.dumps(claims).encode())}.{signature}"
    with pytest.raises(InvalidToken):
        codec.verify_access(forged)


def test_tampered_signature_is_refused(codec: TokenCodec) -> None:
    token = codec.issue_access("alice")
    head, payload, signature = token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)))
    raw[0] ^= 0x01
    with pytest.raises(InvalidToken):
        codec.verify_access(f"{head}.{payload}.{b64(bytes(raw))}")
    with pytest.raises(InvalidToken):
        codec.verify_access(f"{head}.{payload}.")


def test_alg_none_is_refused(codec: TokenCodec) -> None:
    by_pyjwt = jwt.encode(good_claims(), None, algorithm="none")
    header = b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    by_hand = f"{header}.{b64(json.dumps(good_claims()).encode())}."
    for token in (by_pyjwt, by_hand):
        with pytest.raises(InvalidToken):
            codec.verify_access(token)


@pytest.mark.parametrize("algorithm", ["HS384", "HS512"])
def test_other_hmac_algorithms_are_refused(codec: TokenCodec, algorithm: str) -> None:
    token = jwt.encode(good_claims(), SECRET, algorithm=algorithm)
    assert jwt.decode(token, SECRET, algorithms=[algorithm])["sub"] == "alice"  # a valid token
    with pytest.raises(InvalidToken):
        codec.verify_access(token)
    refresh = jwt.encode(good_claims("refresh"), REFRESH_KEY, algorithm=algorithm)
    with pytest.raises(InvalidToken):
        codec.verify_refresh(refresh)


@pytest.mark.parametrize("alg", ["RS256", "ES256", "PS256", "EdDSA"])
def test_public_key_algorithm_headers_are_refused(codec: TokenCodec, alg: str) -> None:
    """Signed with the HMAC secret but claiming a public-key algorithm (key confusion)."""
    token = hand_made({"alg": alg, "typ": "JWT"}, good_claims(), SECRET.encode())
    with pytest.raises(InvalidToken):
        codec.verify_access(token)


@pytest.mark.parametrize("missing", ["sub", "iat", "exp", "type", "jti"])
def test_every_claim_is_required(codec: TokenCodec, missing: str) -> None:
    for kind, key, verify in (
        ("access", SECRET.encode(), codec.verify_access),
        ("refresh", REFRESH_KEY, codec.verify_refresh),
    ):
        claims = good_claims(kind)
        del claims[missing]
        with pytest.raises(InvalidToken):
            verify(jwt.encode(claims, key, algorithm="HS256"))


@pytest.mark.parametrize(
    "changes",
    [{"sub": ""}, {"jti": ""}, {"jti": 5}, {"type": "ACCESS"}, {"type": None}, {"exp": "never"}],
)
def test_malformed_claims_are_refused(codec: TokenCodec, changes: dict[str, Any]) -> None:
    token = hand_made({"alg": "HS256", "typ": "JWT"}, good_claims(**changes), SECRET.encode())
    with pytest.raises(InvalidToken):
        codec.verify_access(token)


@pytest.mark.parametrize(
    "garbage", ["", "abc", "a.b", "a.b.c", "a.b.c.d", "....", "eyJhbGciOiJIUzI1NiJ9..", "\x00"]
)
def test_garbage_is_refused_with_invalid_token(codec: TokenCodec, garbage: str) -> None:
    with pytest.raises(InvalidToken):
        codec.verify_access(garbage)
    with pytest.raises(InvalidToken):
        codec.verify_refresh(garbage)


def test_non_string_family_is_ignored(codec: TokenCodec) -> None:
    token = jwt.encode(good_claims("refresh", fam=123), REFRESH_KEY, algorithm="HS256")
    assert codec.verify_refresh(token).fam is None
