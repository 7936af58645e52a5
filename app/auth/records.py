"""Identity records held in memory (the database is written through on every change)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class User:
    user_id: str
    password_hash: str
    disabled: bool
    created_at: int
    updated_at: int
    last_login_at: int | None = None


@dataclass(slots=True)
class RoleAssignment:
    user_id: str
    roles: list[str]
    created_at: int
    updated_at: int
    created_by: str | None = None


@dataclass(slots=True)
class ApiKey:
    key_id: str
    key_hash: str
    user_id: str
    name: str
    permissions: list[str]
    created_at: int
    last_used_at: int | None = None
    expires_at: int | None = None
    revoked: bool = False
