"""Route guards: authenticate (401) → permission (403) → rate limit (429), in that order.

Every route declares one of these, so no route can be reached without a decision. With auth
disabled every caller is `anonymous` with every permission and nothing is rate limited.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from app.api.context import audit, client_ip
from app.auth.permissions import ANONYMOUS, Principal
from app.auth.service import AuthService
from app.core.errors import ApiError

# Declared as FastAPI security schemes so OpenAPI documents them and Swagger can authorize.
BEARER_SCHEME = "bearerAuth"
API_KEY_SCHEME = "apiKeyAuth"
bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name=BEARER_SCHEME,
    bearerFormat="JWT",
    description="An access token from `POST /api/auth/login` (paste the token only).",
)
api_key_scheme = APIKeyHeader(
    name="X-API-Key",
    auto_error=False,
    scheme_name=API_KEY_SCHEME,
    description="An API key (`veloz_...`) from `POST /api/auth/keys`.",
)
BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)]
ApiKeyDep = Annotated[str | None, Depends(api_key_scheme)]


def auth_service(request: Request) -> AuthService:
    service: AuthService = request.app.state.runtime.auth
    return service


async def _limit(request: Request, auth: AuthService, identity: str, headers: bool = True) -> None:
    decision = await auth.rate_limit(identity)
    if headers or not decision.allowed:
        request.scope["state"]["rate_limit_headers"] = [
            (name.lower().encode(), value.encode()) for name, value in decision.headers()
        ]
    if not decision.allowed:
        request.app.state.runtime.metrics.rate_limited.inc()
        await audit(request, "access", "rate_limited", {"path": request.url.path,
                                                         "identity": identity})  # fmt: skip
        raise ApiError(429, "rate_limit_exceeded")


def _identity(principal: Principal, request: Request) -> str:
    if principal.key_id:
        return f"key:{principal.key_id}"
    if principal.auth_method == "jwt":
        return f"user:{principal.user_id}"
    return f"ip:{client_ip(request)}"


async def _authenticate(
    request: Request,
    auth: AuthService,
    bearer: HTTPAuthorizationCredentials | None,
    api_key: str | None,
) -> Principal:
    """The caller (`anonymous` with auth off), or 401 recorded as `auth_failed`."""
    if not auth.enabled:
        principal = ANONYMOUS
    else:
        try:
            principal = auth.authenticate(bearer.credentials if bearer else None, api_key)
            if auth.shared is not None:
                await auth.check_revoked(principal)
        except ApiError as exc:
            request.app.state.runtime.metrics.auth_failures.labels(reason=exc.code).inc()
            await audit(request, "auth", "auth_failed",
                        {"path": request.url.path, "error": exc.code})  # fmt: skip
            raise
    request.scope["state"]["principal"] = principal
    return principal


def require(permission: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency: the caller must hold `permission`."""

    async def guard(request: Request, bearer: BearerDep, api_key: ApiKeyDep) -> Principal:
        auth = auth_service(request)
        principal = await _authenticate(request, auth, bearer, api_key)
        if not auth.enabled:
            return principal
        if not principal.allows(permission):
            request.app.state.runtime.metrics.auth_failures.labels(reason="forbidden").inc()
            await audit(request, "access", "permission_denied",
                        {"path": request.url.path, "permission": permission})  # fmt: skip
            raise ApiError(403, "forbidden", f"Required permissions: {permission}")
        await _limit(request, auth, _identity(principal, request))
        return principal

    guard.__name__ = f"require_{permission.replace(':', '_')}"
    return guard


async def authenticated(request: Request, bearer: BearerDep, api_key: ApiKeyDep) -> Principal:
    """A dependency: any caller the gateway can identify, whatever its permissions."""
    auth = auth_service(request)
    principal = await _authenticate(request, auth, bearer, api_key)
    if auth.enabled:
        await _limit(request, auth, _identity(principal, request))
    return principal


async def public_rate_limited(request: Request) -> None:
    """Public, but rate limited per client address when auth is on (contract §2.6)."""
    auth = auth_service(request)
    if auth.enabled:
        await _limit(request, auth, f"ip:{client_ip(request)}")


async def stream_rate_limited(request: Request) -> None:
    """As `public_rate_limited`; a stream carries rate-limit headers only when refused (§3)."""
    auth = auth_service(request)
    if auth.enabled:
        await _limit(request, auth, f"ip:{client_ip(request)}", headers=False)


async def optional_principal(
    request: Request, bearer: BearerDep, api_key: ApiKeyDep
) -> Principal | None:
    """Who is calling, if anyone can be told; never refuses (used by logout)."""
    auth = auth_service(request)
    if bearer is None and not api_key:
        return None
    try:
        return auth.authenticate(bearer.credentials if bearer else None, api_key)
    except ApiError:
        return None


async def public() -> None:
    """Explicitly public: no auth, no rate limit (health, auth endpoints, docs)."""
