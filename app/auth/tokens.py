"""HS256 access and refresh tokens (contract §2.3) with PyJWT.

Access tokens are signed with the secret itself, refresh tokens with SHA-256(secret + "_refresh"),
so one can never pass for the other. Both carry a `jti`, so either can be revoked (F14).
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import jwt

ALGORITHM = "HS256"
REFRESH_LIFETIME = 7 * 24 * 3600
VERIFIED_CACHE_SIZE = 10_000
_REQUIRED = ["sub", "iat", "exp", "type", "jti"]


class InvalidToken(Exception):
    pass


@dataclass(frozen=True, slots=True)
class TokenClaims:
    sub: str
    iat: int
    exp: int
    type: str
    jti: str
    fam: str | None = None  # refresh-token family, for reuse detection with rotation


class TokenCodec:
    def __init__(self, secret: str, access_lifetime: int) -> None:
        self._access_key = secret.encode()
        self._refresh_key = hashlib.sha256(self._access_key + b"_refresh").digest()
        self.access_lifetime = access_lifetime
        # A token string once verified stays valid until its exp: remembering it spares the
        # ~60 µs of PyJWT on every request. Revocation and the user are still checked by callers.
        self._verified: OrderedDict[str, TokenClaims] = OrderedDict()

    def issue_access(self, user_id: str, now: int | None = None) -> str:
        iat = int(time.time()) if now is None else now
        claims = {"sub": user_id, "iat": iat, "exp": iat + self.access_lifetime,
                  "type": "access", "jti": secrets.token_hex(16)}  # fmt: skip
        return jwt.encode(claims, self._access_key, algorithm=ALGORITHM)

    def issue_refresh(self, user_id: str, family: str | None = None, now: int | None = None) -> str:
        iat = int(time.time()) if now is None else now
        claims: dict[str, Any] = {"sub": user_id, "iat": iat, "exp": iat + REFRESH_LIFETIME,
                                  "type": "refresh", "jti": secrets.token_hex(16)}  # fmt: skip
        if family is not None:
            claims["fam"] = family
        return jwt.encode(claims, self._refresh_key, algorithm=ALGORITHM)

    def verify_access(self, token: str) -> TokenClaims:
        claims = self._verified.get(token)
        if claims is not None and claims.exp > time.time():
            return claims
        claims = self._verify(token, self._access_key, "access")
        self._verified[token] = claims
        if len(self._verified) > VERIFIED_CACHE_SIZE:
            self._verified.popitem(last=False)
        return claims

    def verify_refresh(self, token: str) -> TokenClaims:
        return self._verify(token, self._refresh_key, "refresh")

    @staticmethod
    def _verify(token: str, key: bytes, kind: str) -> TokenClaims:
        try:
            # Only HS256: `none`, other HMAC sizes and public-key algorithms are refused.
            claims = jwt.decode(token, key, algorithms=[ALGORITHM], options={"require": _REQUIRED})
        except jwt.PyJWTError as exc:
            raise InvalidToken(str(exc)) from exc
        if claims.get("type") != kind:
            raise InvalidToken(f"not an {kind} token")
        sub, jti = claims.get("sub"), claims.get("jti")
        if not isinstance(sub, str) or not sub or not isinstance(jti, str) or not jti:
            raise InvalidToken("bad subject or id")
        fam = claims.get("fam")
        return TokenClaims(sub, int(claims["iat"]), int(claims["exp"]), kind, jti,
                           fam if isinstance(fam, str) else None)  # fmt: skip
