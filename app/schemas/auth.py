"""Login, tokens, API keys, roles and users (contract §2.2 to §2.4, §4.11, §4.12)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.config import JsonDict

# The handlers strip names before checking them, so a name must hold a non-blank character.
NOT_BLANK = r"\S"
ROLES = ("viewer", "trader", "admin")
Role = Literal["viewer", "trader", "admin"]


class LoginRequest(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"user_id": "admin", "password": "change-me-please"}]}
    )

    user_id: str = Field(min_length=1, pattern=NOT_BLANK)
    password: str = Field(min_length=1)


class RefreshRequest(BaseModel):
    """Also the logout body."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"refresh_token": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9..."}]
        }
    )

    refresh_token: str = Field(min_length=1, pattern=NOT_BLANK)


class TokenPair(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"access_token": "eyJ...", "refresh_token": "eyJ...", "token_type": "Bearer",
                 "expires_in": 3600}
            ]
        }
    )  # fmt: skip

    access_token: str
    refresh_token: str
    token_type: str = "Bearer"  # noqa: S105 (the scheme name, not a secret)
    expires_in: int = Field(description="Access-token lifetime in seconds.")


class AccessToken(BaseModel):
    """A new access token; with refresh rotation on, also the next refresh token."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"access_token": "eyJ...", "token_type": "Bearer", "expires_in": 3600}]
        }
    )

    access_token: str
    token_type: str = "Bearer"  # noqa: S105 (the scheme name, not a secret)
    expires_in: int
    refresh_token: str | None = None


class OkResponse(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"ok": True}]})

    ok: bool = True


API_KEY_EXAMPLE: JsonDict = {
    "key_id": "vk_83aaa142929ef7cb", "user_id": "admin", "name": "bot", "created_at": 1795490821,
    "last_used_at": None, "revoked": False, "permissions": ["read", "write"], "expires_at": None,
}  # fmt: skip


class ApiKeyInfo(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [API_KEY_EXAMPLE]})

    key_id: str
    user_id: str
    name: str
    created_at: int
    last_used_at: int | None
    revoked: bool
    permissions: list[str]
    expires_at: int | None = None


class ApiKeyList(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"keys": [API_KEY_EXAMPLE]}]})

    keys: list[ApiKeyInfo]


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"name": "trading-bot", "permissions": ["trader"]}]}
    )

    name: str = Field(min_length=1, pattern=NOT_BLANK)
    permissions: list[Annotated[str, Field(min_length=1)]] | None = Field(
        None, description="Roles, legacy or granular names; empty means read and write."
    )
    expires_at: int | None = Field(
        None, description="Unix seconds after which the key fails; must lie in the future."
    )


class ApiKeyCreated(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "key_id": "vk_83aaa142929ef7cb",
                    "api_key": "veloz_" + "0" * 64,
                    "message": "Store this key securely. It will not be shown again.",
                }
            ]
        }
    )

    key_id: str
    api_key: str = Field(description="Shown once; only a keyed hash of it is stored.")
    message: str = "Store this key securely. It will not be shown again."


class ApiKeyRevoked(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"ok": True, "key_id": "vk_83aaa142929ef7cb"}]}
    )

    ok: bool = True
    key_id: str


class RoleEntry(BaseModel):
    user_id: str
    roles: list[str]
    created_at: int
    updated_at: int


class RoleMetrics(BaseModel):
    total_users: int
    role_counts: dict[str, int]


class RolesOverview(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "users": [
                        {
                            "user_id": "alice",
                            "roles": ["trader"],
                            "created_at": 1795490821,
                            "updated_at": 1795490821,
                        }
                    ],
                    "metrics": {"total_users": 1, "role_counts": {"trader": 1}},
                    "available_roles": ["viewer", "trader", "admin"],
                }
            ]
        }
    )

    users: list[RoleEntry]
    metrics: RoleMetrics
    available_roles: list[str]


class UserRoles(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "user_id": "alice",
                    "roles": ["trader"],
                    "created_at": 1795490821,
                    "updated_at": 1795490821,
                    "created_by": "admin",
                }
            ]
        }
    )

    user_id: str
    roles: list[str]
    created_at: int
    updated_at: int
    created_by: str | None


class DefaultUserRoles(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"user_id": "bob", "roles": ["viewer"], "is_default": True}]
        }
    )

    user_id: str
    roles: list[str]
    is_default: bool = True


def _role_change_schema(schema: dict[str, Any]) -> None:
    """`roles` (a list) wins; otherwise `role` must name a role. Exactly what the handler takes."""
    roles = {"type": "array", "items": {"enum": list(ROLES)}}
    schema["properties"]["role"] = {"description": "Add this role to the user's list."}
    schema["properties"]["roles"] = {
        "anyOf": [roles, {"type": "null"}],
        "description": "Replace the user's list (wins over `role` unless null).",
    }
    schema["anyOf"] = [
        {"required": ["roles"], "properties": {"roles": roles}},
        {
            "required": ["role"],
            "properties": {"role": {"enum": list(ROLES)}, "roles": {"type": "null"}},
        },
    ]
    schema["examples"] = [
        {"user_id": "alice", "role": "trader"},
        {"user_id": "alice", "roles": ["viewer", "trader"]},
    ]


class RoleChange(BaseModel):
    """`role` adds one role; `roles` replaces the list. One of them is required."""

    model_config = ConfigDict(json_schema_extra=_role_change_schema)

    user_id: str = Field(min_length=1, pattern=NOT_BLANK)
    role: Any = None
    roles: list[Role] | None = Field(None, description="Replace the user's list (wins over role).")


class RoleChangeResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"ok": True, "user_id": "alice", "role": "trader", "roles": ["viewer", "trader"]}
            ]
        }
    )

    ok: bool
    message: str | None = None
    user_id: str
    role: str | None = None
    roles: list[str]


class UserCreate(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"user_id": "alice", "password": "a-long-passphrase", "roles": ["trader"]}]
        }
    )

    user_id: str = Field(pattern=r"^[A-Za-z0-9._@-]{1,64}$")
    password: str = Field(min_length=8)
    roles: list[Role] | None = Field(None, description="Defaults to viewer.")


class UserInfo(BaseModel):
    user_id: str
    roles: list[str]
    disabled: bool
    created_at: int
    updated_at: int
    last_login_at: int | None


class UserList(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "users": [
                        {
                            "user_id": "admin",
                            "roles": ["admin"],
                            "disabled": False,
                            "created_at": 1795490821,
                            "updated_at": 1795490821,
                            "last_login_at": 1795490900,
                        }
                    ]
                }
            ]
        }
    )

    users: list[UserInfo]


class UserChanged(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"ok": True, "user_id": "alice", "roles": ["trader"], "disabled": False}]
        }
    )

    ok: bool = True
    user_id: str
    roles: list[str]
    disabled: bool


class AuthStatusResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"auth_enabled": True, "methods": ["password", "api_key"]},
                {"auth_enabled": False, "methods": []},
            ]
        }
    )

    auth_enabled: bool = Field(description="Whether protected routes need credentials.")
    methods: list[Literal["password", "api_key"]] = Field(
        description="How a caller can authenticate: `password` (POST /api/auth/login, then "
        "`Authorization: Bearer`) and `api_key` (`X-API-Key`). Empty with auth off."
    )


class CallerResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"user_id": "vera", "auth_method": "jwt", "roles": ["viewer"],
                 "grants": ["viewer"], "permissions": ["read:market", "read:config"],
                 "key_id": None},
                {"user_id": "admin", "auth_method": "api_key", "roles": [],
                 "grants": ["read"], "key_id": "vk_83aaa142929ef7cb",
                 "permissions": ["read:market", "read:orders", "read:account", "read:config"]},
            ]
        }
    )  # fmt: skip

    user_id: str = Field(description="`anonymous` with auth off.")
    auth_method: Literal["jwt", "api_key", "anonymous"] = Field(
        description="How this request was authenticated; `anonymous` with auth off."
    )
    roles: list[str] = Field(description="The role names among `grants`.")
    grants: list[str] = Field(
        description="As assigned: the user's roles, or the API key's list (roles, legacy "
        "`read`/`write`/`admin` or granular names)."
    )
    permissions: list[str] = Field(
        description="The effective granular permissions `grants` expand to."
    )
    key_id: str | None = Field(description="The API key used, for `api_key` callers.")
