"""What the gateway tells any client about authentication, and a caller about itself."""

from __future__ import annotations

from dataclasses import dataclass

from app.auth.permissions import ALL_PERMISSIONS, ROLES, Principal

# How a caller can prove who it is: a password login (then `Authorization: Bearer`), or an
# API key in `X-API-Key`.
AUTH_METHODS = ("password", "api_key")

# The principal's method, as clients know it; "disabled" is the caller with auth off.
_CALLER_METHODS = {"jwt": "jwt", "api_key": "api_key", "disabled": "anonymous"}


@dataclass(frozen=True, slots=True)
class AuthStatus:
    auth_enabled: bool
    methods: list[str]


@dataclass(frozen=True, slots=True)
class CallerProfile:
    user_id: str
    auth_method: str
    roles: list[str]
    grants: list[str]
    permissions: list[str]
    key_id: str | None


def auth_status(enabled: bool) -> AuthStatus:
    return AuthStatus(auth_enabled=enabled, methods=list(AUTH_METHODS) if enabled else [])


def caller_profile(principal: Principal) -> CallerProfile:
    """`grants` is the list as assigned (roles, legacy or granular names); `roles` the role
    names among them; `permissions` what they expand to, in the contract's order."""
    grants = list(principal.permissions)
    return CallerProfile(
        user_id=principal.user_id,
        auth_method=_CALLER_METHODS[principal.auth_method],
        roles=[name for name in dict.fromkeys(grants) if name in ROLES],
        grants=grants,
        permissions=[name for name in ALL_PERMISSIONS if principal.allows(name)],
        key_id=principal.key_id,
    )
