"""Login, tokens, API keys, role assignments and users."""

from __future__ import annotations

import re
import time
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from app.api.context import audit, client_ip
from app.api.deps import body_doc, read_object_body, required_query
from app.api.security import (
    auth_service,
    authenticated,
    optional_principal,
    public,
    public_rate_limited,
    require,
)
from app.auth.permissions import ADMIN_KEYS, ADMIN_USERS, VALID_ROLES, Principal
from app.auth.records import ApiKey
from app.auth.service import MIN_PASSWORD_LENGTH
from app.core.errors import ApiError
from app.schemas.auth import (
    AccessToken,
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyInfo,
    ApiKeyList,
    ApiKeyRevoked,
    AuthStatusResponse,
    CallerResponse,
    DefaultUserRoles,
    LoginRequest,
    OkResponse,
    RefreshRequest,
    RoleChange,
    RoleChangeResponse,
    RoleEntry,
    RoleMetrics,
    RolesOverview,
    TokenPair,
    UserChanged,
    UserCreate,
    UserInfo,
    UserList,
    UserRoles,
)
from app.schemas.common import error_responses

router = APIRouter(tags=["auth"])
keys_router = APIRouter(tags=["api-keys"])
roles_router = APIRouter(tags=["roles"])
users_router = APIRouter(tags=["users"])

KeysAdmin = Annotated[Principal, Depends(require(ADMIN_KEYS))]
UsersAdmin = Annotated[Principal, Depends(require(ADMIN_USERS))]
_USER_ID = re.compile(r"[A-Za-z0-9._@-]{1,64}")


def _bad(message: str | None = None) -> ApiError:
    return ApiError(400, "bad_params", message)


def _text(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    return value.strip() if isinstance(value, str) else ""


def _checked_roles(roles: Any) -> list[str]:
    """A list of valid role names without repeats, or 400 with the original's messages."""
    if not isinstance(roles, list):
        raise _bad("roles must be a list")
    invalid = [r for r in roles if r not in VALID_ROLES]
    if invalid:
        raise _bad(_invalid_roles(invalid))
    return list(dict.fromkeys(roles))


def _invalid_roles(roles: list[str]) -> str:
    # The original's message, Python list formatting included.
    return f"Invalid roles: {roles}. Valid roles: {VALID_ROLES}"


# --- tokens ----------------------------------------------------------------------------------


@router.post(
    "/api/auth/login",
    summary="Log in",
    response_model=TokenPair,
    responses=error_responses(400, 401, 429),
    dependencies=[Depends(public)],
    openapi_extra=body_doc(LoginRequest),
)
async def login(request: Request) -> TokenPair:
    """Exchange a user id and password for an access token and a refresh token (7 days).

    After 5 failed attempts for one address and user id within 5 minutes, answers 429.
    """
    try:
        body = await read_object_body(request, form_allowed=False)
    except ApiError as exc:
        if exc.code == "bad_params":  # §2.2: a login's bad_params carries no message
            raise _bad() from exc
        raise
    user_id, password = _text(body, "user_id"), body.get("password")
    if not user_id or not isinstance(password, str) or not password:
        raise _bad()
    try:
        tokens = await auth_service(request).login(user_id, password, client_ip(request))
    except ApiError as exc:
        action = "login_locked" if exc.status == 429 else "login_failed"
        request.app.state.runtime.metrics.auth_failures.labels(reason=exc.code).inc()
        await audit(request, "auth", action, {"error": exc.code}, user_id=user_id)
        raise
    await audit(request, "auth", "login", user_id=user_id)
    return TokenPair.model_validate(tokens)


async def _refresh_token(request: Request) -> str:
    body = await read_object_body(request, form_allowed=False)
    token = _text(body, "refresh_token")
    if not token:
        raise _bad("refresh_token is required")
    return token


@router.post(
    "/api/auth/refresh",
    summary="New access token",
    response_model=AccessToken,
    response_model_exclude_none=True,
    responses=error_responses(400, 401),
    dependencies=[Depends(public)],
    openapi_extra=body_doc(RefreshRequest),
)
async def refresh_token(request: Request) -> AccessToken:
    """A new access token for a valid refresh token. With VELOZ_REFRESH_ROTATION the answer
    also carries the next refresh token, and the presented one stops working."""
    token = await _refresh_token(request)
    try:
        answer = await auth_service(request).refresh(token)
    except ApiError as exc:
        await audit(request, "auth", "token_refresh_failed", {"error": exc.code})
        raise
    user_id = str(answer.pop("user_id"))
    await audit(request, "auth", "token_refresh", user_id=user_id)
    return AccessToken.model_validate(answer)


@router.post(
    "/api/auth/logout",
    summary="Log out",
    response_model=OkResponse,
    responses=error_responses(400),
    dependencies=[Depends(public)],
    openapi_extra=body_doc(RefreshRequest),
)
async def logout(
    request: Request, caller: Annotated[Principal | None, Depends(optional_principal)]
) -> OkResponse:
    """Revokes the refresh token, and the access token sent with the request. Always ok."""
    token = await _refresh_token(request)
    user_id = await auth_service(request).logout(token, caller)
    await audit(request, "auth", "logout", user_id=user_id)
    return OkResponse()


@router.get(
    "/api/auth/status",
    summary="Authentication status",
    response_model=AuthStatusResponse,
    responses=error_responses(429),
    dependencies=[Depends(public_rate_limited)],
)
async def auth_status(request: Request) -> AuthStatusResponse:
    """Whether authentication is on and how a caller can authenticate. Needs no credentials,
    so a client can decide to show a sign-in form without a refused request."""
    return AuthStatusResponse.model_validate(asdict(auth_service(request).status()))


@router.get(
    "/api/auth/me",
    summary="The caller",
    response_model=CallerResponse,
    responses=error_responses(401, 429),
)
async def who_am_i(
    request: Request, caller: Annotated[Principal, Depends(authenticated)]
) -> CallerResponse:
    """Who the credentials belong to and every permission they carry, so a client can offer
    only what the caller may do. With auth off: `anonymous` with every permission."""
    return CallerResponse.model_validate(asdict(auth_service(request).profile(caller)))


# --- API keys --------------------------------------------------------------------------------


def _key_info(key: ApiKey) -> ApiKeyInfo:
    return ApiKeyInfo(
        key_id=key.key_id, user_id=key.user_id, name=key.name, created_at=key.created_at,
        last_used_at=key.last_used_at, revoked=key.revoked, permissions=key.permissions,
        expires_at=key.expires_at,
    )  # fmt: skip


def _require_literal_admin(principal: Principal) -> None:
    if not principal.is_literal_admin:
        raise ApiError(403, "forbidden", "admin permission required")


@keys_router.get(
    "/api/auth/keys",
    summary="List API keys",
    response_model=ApiKeyList,
    responses=error_responses(401, 403, 429),
)
async def list_api_keys(request: Request, principal: KeysAdmin) -> ApiKeyList:
    """All keys for an admin, otherwise the caller's own. Revoked keys are included."""
    keys = auth_service(request).list_keys(principal)
    return ApiKeyList(keys=[_key_info(key) for key in keys])


@keys_router.post(
    "/api/auth/keys",
    summary="Create an API key",
    status_code=201,
    response_model=ApiKeyCreated,
    responses=error_responses(400, 401, 403, 429),
    openapi_extra=body_doc(ApiKeyCreate),
)
async def create_api_key(request: Request, principal: KeysAdmin) -> ApiKeyCreated:
    """The raw key is in this answer only; the gateway keeps a keyed hash of it."""
    _require_literal_admin(principal)
    body = await read_object_body(request, form_allowed=False)
    name = _text(body, "name")
    if not name:
        raise _bad("name is required")
    permissions = body.get("permissions")
    if permissions is None or permissions == "":  # absent: the default permissions
        permissions = []
    if not isinstance(permissions, list):
        raise _bad("permissions must be a list")
    if not all(isinstance(p, str) and p for p in permissions):
        raise _bad("permissions must be a list of names")
    expires_at = body.get("expires_at")
    if expires_at is not None and (
        not isinstance(expires_at, int) or isinstance(expires_at, bool)
        or expires_at <= int(time.time())
    ):  # fmt: skip
        raise _bad("expires_at must be a future Unix time in seconds")
    key, raw = await auth_service(request).create_key(
        principal.user_id, name, permissions, expires_at
    )
    await audit(request, "api_key", "create_api_key",
                {"key_id": key.key_id, "name": name, "permissions": key.permissions})  # fmt: skip
    return ApiKeyCreated(key_id=key.key_id, api_key=raw)


@keys_router.delete(
    "/api/auth/keys",
    summary="Revoke an API key",
    response_model=ApiKeyRevoked,
    responses=error_responses(400, 401, 403, 404, 429),
)
async def revoke_api_key(
    request: Request,
    principal: KeysAdmin,
    key_id: Annotated[str | None, required_query("The key's id (`vk_...`).", minLength=1)] = None,
) -> ApiKeyRevoked:
    """The key stops working at once; it stays in the list as revoked. Revoking an already
    revoked key answers 200 again. Needs the literal `admin` permission."""
    _require_literal_admin(principal)
    key_id = (key_id or "").strip()
    if not key_id:
        raise _bad("key_id is required")
    if await auth_service(request).revoke_key(key_id) is None:
        raise ApiError(404, "not_found")
    await audit(request, "api_key", "revoke_api_key", {"key_id": key_id})
    return ApiKeyRevoked(key_id=key_id)


# --- roles -----------------------------------------------------------------------------------


@roles_router.get(
    "/api/auth/roles",
    summary="Role assignments",
    response_model=RolesOverview | UserRoles | DefaultUserRoles,
    responses=error_responses(401, 403, 429),
)
async def get_roles(
    request: Request,
    _: UsersAdmin,
    user_id: Annotated[str | None, Query(description="One user's roles instead.")] = None,
) -> RolesOverview | UserRoles | DefaultUserRoles:
    """Without `user_id`: every explicit assignment with counts. With it: that user's roles
    (`viewer` by default)."""
    auth = auth_service(request)
    if user_id:
        assignment = auth.roles.get(user_id)
        if assignment is None:
            return DefaultUserRoles(user_id=user_id, roles=auth.roles_of(user_id))
        return UserRoles(
            user_id=user_id, roles=assignment.roles, created_at=assignment.created_at,
            updated_at=assignment.updated_at, created_by=assignment.created_by,
        )  # fmt: skip
    counts: dict[str, int] = {}
    for assignment in auth.roles.values():
        for role in assignment.roles:
            counts[role] = counts.get(role, 0) + 1
    return RolesOverview(
        users=[
            RoleEntry(
                user_id=a.user_id, roles=a.roles, created_at=a.created_at, updated_at=a.updated_at
            )
            for a in auth.roles.values()
        ],
        metrics=RoleMetrics(total_users=len(auth.roles), role_counts=counts),
        available_roles=list(VALID_ROLES),
    )


@roles_router.post(
    "/api/auth/roles",
    summary="Assign roles",
    response_model=RoleChangeResponse,
    response_model_exclude_none=True,
    responses=error_responses(400, 401, 403, 429),
    openapi_extra=body_doc(RoleChange),
)
async def assign_roles(request: Request, principal: UsersAdmin) -> RoleChangeResponse:
    """`roles` replaces the user's list; `role` adds one (answers `ok: false` if present)."""
    body = await read_object_body(request, form_allowed=False)
    user_id = _text(body, "user_id")
    if not user_id:
        raise _bad("user_id is required")
    auth = auth_service(request)
    roles = body.get("roles")
    if roles is not None:
        assignment = await auth.set_roles(user_id, _checked_roles(roles), principal.user_id)
        await audit(request, "auth", "set_roles", {"user_id": user_id, "roles": assignment.roles})
        return RoleChangeResponse(ok=True, user_id=user_id, roles=assignment.roles)
    role = body.get("role")
    if not role:
        raise _bad("role or roles is required")
    if role not in VALID_ROLES:
        raise _bad(f"Invalid role: {role}. Valid roles: {VALID_ROLES}")
    current = auth.roles[user_id].roles if user_id in auth.roles else []
    if role in current:
        return RoleChangeResponse(
            ok=False, message="User already has this role", user_id=user_id, roles=current
        )
    assignment = await auth.set_roles(user_id, [*current, role], principal.user_id)
    await audit(request, "auth", "assign_role", {"user_id": user_id, "role": role})
    return RoleChangeResponse(ok=True, user_id=user_id, role=role, roles=assignment.roles)


@roles_router.delete(
    "/api/auth/roles",
    summary="Remove a role",
    response_model=RoleChangeResponse,
    response_model_exclude_none=True,
    responses=error_responses(400, 401, 403, 404, 429),
)
async def remove_role(
    request: Request,
    principal: UsersAdmin,
    user_id: Annotated[str | None, required_query("The user.", minLength=1)] = None,
    role: Annotated[
        str | None, required_query("The role to remove.", enum=list(VALID_ROLES))
    ] = None,
) -> RoleChangeResponse:
    """Removes one role from the user's list; removing the last one leaves an empty list (no
    permissions), not the `viewer` default. A role the user does not hold answers 404."""
    if not user_id:
        raise _bad("user_id is required")
    if not role:
        raise _bad("role is required")
    auth = auth_service(request)
    current = auth.roles_of(user_id)
    if role not in current:
        raise ApiError(404, "not_found", "User does not have this role")
    remaining = [r for r in current if r != role]
    await auth.set_roles(user_id, remaining, principal.user_id)
    await audit(request, "auth", "remove_role", {"user_id": user_id, "role": role})
    return RoleChangeResponse(ok=True, user_id=user_id, role=role, roles=remaining)


# --- users -----------------------------------------------------------------------------------


@users_router.get(
    "/api/auth/users",
    summary="List users",
    response_model=UserList,
    responses=error_responses(401, 403, 429),
)
async def list_users(request: Request, _: UsersAdmin) -> UserList:
    """Every user, with roles, whether disabled, and the last login time."""
    auth = auth_service(request)
    return UserList(
        users=[
            UserInfo(
                user_id=u.user_id,
                roles=auth.roles_of(u.user_id),
                disabled=u.disabled,
                created_at=u.created_at,
                updated_at=u.updated_at,
                last_login_at=u.last_login_at,
            )
            for u in auth.users.values()
        ]
    )


@users_router.post(
    "/api/auth/users",
    summary="Create a user",
    status_code=201,
    response_model=UserChanged,
    responses=error_responses(400, 401, 403, 409, 429),
    openapi_extra=body_doc(UserCreate),
)
async def create_user(request: Request, principal: UsersAdmin) -> UserChanged:
    """A user who can log in; its roles default to `viewer`."""
    body = await read_object_body(request, form_allowed=False)
    user_id = _text(body, "user_id")
    if not _USER_ID.fullmatch(user_id):
        raise _bad("user_id must be 1-64 letters, digits or . _ @ -")
    password = body.get("password")
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_LENGTH:
        raise _bad(f"password must be at least {MIN_PASSWORD_LENGTH} characters")
    roles = body.get("roles")
    roles = _checked_roles(["viewer"] if roles is None or roles == [] else roles)
    auth = auth_service(request)
    if user_id in auth.users:
        raise ApiError(409, "user_exists", f"user {user_id!r} already exists")
    user = await auth.create_user(user_id, password, roles, principal.user_id)
    await audit(request, "auth", "create_user", {"user_id": user_id, "roles": roles})
    return UserChanged(user_id=user.user_id, roles=auth.roles_of(user_id), disabled=False)


@users_router.delete(
    "/api/auth/users",
    summary="Disable a user",
    response_model=UserChanged,
    responses=error_responses(400, 401, 403, 404, 409, 429),
)
async def disable_user(
    request: Request,
    principal: UsersAdmin,
    user_id: Annotated[str | None, required_query("The user to disable.", minLength=1)] = None,
) -> UserChanged:
    """The user's logins, access tokens and refresh tokens stop working at once. Nobody can
    disable themselves or the last enabled admin, so the gateway always has an administrator."""
    if not user_id:
        raise _bad("user_id is required")
    auth = auth_service(request)
    user = auth.users.get(user_id)
    if user is None:
        raise ApiError(404, "not_found", f"no user {user_id!r}")
    if user_id == principal.user_id:
        raise ApiError(409, "cannot_disable_self", "you cannot disable your own account")
    admins = [
        u for u in auth.users.values() if not u.disabled and "admin" in auth.roles_of(u.user_id)
    ]
    if not user.disabled and admins == [user]:
        raise ApiError(409, "last_admin", "the last enabled admin cannot be disabled")
    await auth.set_disabled(user, True)
    await audit(request, "auth", "disable_user", {"user_id": user_id})
    return UserChanged(user_id=user_id, roles=auth.roles_of(user_id), disabled=True)
