"""The outer edge of every request, as one pure-ASGI layer.

It gives every request an id, answers CORS preflights, adds the security and CORS headers of
the contract (§1.4) to every response, and turns an unexpected exception into a JSON 500 so the
connection is never dropped.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
from collections.abc import Callable, Sequence

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.jsonutil import dumps_bytes
from app.core.logging import request_id_var

log = logging.getLogger("veloz.http")

SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"x-xss-protection", b"1; mode=block"),
    (
        b"content-security-policy",
        b"default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'",
    ),
    (b"referrer-policy", b"strict-origin-when-cross-origin"),
    (b"permissions-policy", b"geolocation=(), microphone=(), camera=()"),
)
CACHE_CONTROL = (b"cache-control", b"no-store, no-cache, must-revalidate, private")
HSTS = (b"strict-transport-security", b"max-age=31536000; includeSubDomains")
ALLOW_METHODS = (b"access-control-allow-methods", b"GET, POST, DELETE, OPTIONS")
ALLOW_HEADERS = (b"access-control-allow-headers", b"Content-Type, Authorization, X-API-Key")
EXPOSE_HEADERS = (
    b"access-control-expose-headers",
    b"X-Request-ID, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset, Retry-After",
)
MAX_AGE = (b"access-control-max-age", b"86400")
REQUEST_ID_HEADER = b"x-request-id"
_VALID_REQUEST_ID = re.compile(rb"[A-Za-z0-9._:\-]{1,128}")
# Generated ids: a random per-process prefix and a counter; unique, and cheaper than uuid4.
_ID_PREFIX = os.urandom(8).hex()
_id_counter = itertools.count(1)


class CorsPolicy:
    """The original's allow-list: empty allows every origin; `*` and `*.domain` entries match."""

    def __init__(self, origins: Sequence[str], credentials: bool) -> None:
        self.origins: list[str] = []
        self.credentials = False
        self.update(origins, credentials)

    def update(self, origins: Sequence[str], credentials: bool) -> None:
        """Takes effect for the next request (runtime configuration)."""
        self.origins = [origin.strip() for origin in origins if origin.strip()]
        self.credentials = credentials

    def allows(self, origin: str) -> bool:
        if not self.origins:
            return True
        for entry in self.origins:
            if entry in ("*", origin):
                return True
            if entry.startswith("*."):
                domain = entry[2:]
                if origin.endswith("." + domain) or origin in (
                    f"http://{domain}",
                    f"https://{domain}",
                ):
                    return True
        return False

    def headers(self, origin: str) -> list[tuple[bytes, bytes]]:
        if not self.allows(origin):
            return []
        if self.credentials:
            headers = [
                (b"access-control-allow-origin", origin.encode("latin-1")),
                (b"access-control-allow-credentials", b"true"),
                (b"vary", b"Origin"),
            ]
        elif not self.origins:
            headers = [(b"access-control-allow-origin", b"*")]
        else:
            headers = [
                (b"access-control-allow-origin", origin.encode("latin-1")),
                (b"vary", b"Origin"),
            ]
        headers += [ALLOW_METHODS, ALLOW_HEADERS, EXPOSE_HEADERS]
        return headers


class EdgeMiddleware:
    def __init__(
        self, app: ASGIApp, cors: CorsPolicy, on_error: Callable[[], None] = lambda: None
    ) -> None:
        self.app = app
        self.cors = cors
        self.on_error = on_error  # counts unexpected errors (metrics)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        origin = b""
        request_id = b""
        https = False
        for name, value in scope["headers"]:
            if name == b"origin":
                origin = value
            elif name == REQUEST_ID_HEADER:
                request_id = value
            elif name == b"x-forwarded-proto":
                https = value.lower() == b"https"
        if not _VALID_REQUEST_ID.fullmatch(request_id):
            request_id = f"{_ID_PREFIX}{next(_id_counter):016x}".encode()
        scope.setdefault("state", {})["request_id"] = request_id.decode()

        extra: list[tuple[bytes, bytes]] = [(REQUEST_ID_HEADER, request_id), *SECURITY_HEADERS]
        if https:
            extra.append(HSTS)
        if origin:
            extra += self.cors.headers(origin.decode("latin-1"))

        if scope["method"] == "OPTIONS":
            headers = [*extra, CACHE_CONTROL]
            if origin:
                headers.append(MAX_AGE)
            await send({"type": "http.response.start", "status": 204, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return

        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = list(message.get("headers", ()))
                if not any(name.lower() == b"cache-control" for name, _ in headers):
                    headers.append(CACHE_CONTROL)
                headers += extra
                # Set by the rate-limit check, so they also reach that request's error answers.
                headers += scope["state"].get("rate_limit_headers", ())
                message = {**message, "headers": headers}
            await send(message)

        token = request_id_var.set(scope["state"]["request_id"])
        try:
            await self.app(scope, receive, send_with_headers)
        except Exception:
            log.exception("unhandled error on %s %s", scope["method"], scope["path"])
            self.on_error()
            if started:
                raise
            body = dumps_bytes({"error": "internal_error", "message": "internal server error"})
            await send_with_headers(
                {
                    "type": "http.response.start",
                    "status": 500,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
        finally:
            request_id_var.reset(token)
