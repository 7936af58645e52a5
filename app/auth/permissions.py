"""Permission names, roles and their expansion (contract §2.5)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

READ_MARKET = "read:market"
READ_ORDERS = "read:orders"
READ_ACCOUNT = "read:account"
READ_CONFIG = "read:config"
WRITE_ORDERS = "write:orders"
WRITE_CANCEL = "write:cancel"
ADMIN_KEYS = "admin:keys"
ADMIN_USERS = "admin:users"
ADMIN_CONFIG = "admin:config"

ALL_PERMISSIONS = (
    READ_MARKET, READ_ORDERS, READ_ACCOUNT, READ_CONFIG, WRITE_ORDERS, WRITE_CANCEL,
    ADMIN_KEYS, ADMIN_USERS, ADMIN_CONFIG,
)  # fmt: skip

ROLES: dict[str, frozenset[str]] = {
    "viewer": frozenset({READ_MARKET, READ_CONFIG}),
    "trader": frozenset(
        {READ_MARKET, READ_ORDERS, READ_ACCOUNT, READ_CONFIG, WRITE_ORDERS, WRITE_CANCEL}
    ),
    "admin": frozenset(ALL_PERMISSIONS),
}
VALID_ROLES = ["viewer", "trader", "admin"]
DEFAULT_ROLES = ["viewer"]

LEGACY: dict[str, frozenset[str]] = {
    "read": frozenset({READ_MARKET, READ_ORDERS, READ_ACCOUNT, READ_CONFIG}),
    "write": frozenset({WRITE_ORDERS, WRITE_CANCEL}),
    "admin": frozenset({ADMIN_KEYS, ADMIN_USERS, ADMIN_CONFIG}),
}


def expand(permissions: Iterable[str]) -> frozenset[str]:
    """Roles first (so `admin` gives all nine), then legacy names, else the name itself."""
    expanded: set[str] = set()
    for name in permissions:
        if name in ROLES:
            expanded |= ROLES[name]
        elif name in LEGACY:
            expanded |= LEGACY[name]
        else:
            expanded.add(name)
    return frozenset(expanded)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling. `permissions` is the raw list (roles, legacy or granular names)."""

    user_id: str
    permissions: tuple[str, ...]
    auth_method: str  # "disabled", "jwt" or "api_key"
    key_id: str | None = None
    token_jti: str | None = None
    token_exp: int | None = None
    expanded: frozenset[str] = field(default=frozenset())

    @classmethod
    def of(
        cls, user_id: str, permissions: Iterable[str], auth_method: str, **extra: object
    ) -> Principal:
        raw = tuple(permissions)
        return cls(user_id, raw, auth_method, expanded=expand(raw), **extra)  # type: ignore[arg-type]

    def allows(self, permission: str) -> bool:
        return permission in self.expanded

    @property
    def is_literal_admin(self) -> bool:
        """The original's handler check: the raw list holds the word `admin` itself."""
        return "admin" in self.permissions


ANONYMOUS = Principal.of(
    "anonymous", ["read", "write", "admin", ADMIN_KEYS, ADMIN_USERS, ADMIN_CONFIG], "disabled"
)
