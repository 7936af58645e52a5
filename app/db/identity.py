"""Users, role assignments, API keys and token revocations in the database. Synchronous."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from sqlalchemy import Engine, Table, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from app.auth.records import ApiKey, RoleAssignment, User
from app.db.tables import ApiKeyRow, RevocationRow, RoleAssignmentRow, UserRow

USERS: Table = UserRow.__table__  # type: ignore[attr-defined]
ROLES: Table = RoleAssignmentRow.__table__  # type: ignore[attr-defined]
KEYS: Table = ApiKeyRow.__table__  # type: ignore[attr-defined]
REVOCATIONS: Table = RevocationRow.__table__  # type: ignore[attr-defined]


class IdentityRepository:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert

    def load(
        self, now: int
    ) -> tuple[list[User], list[RoleAssignment], list[ApiKey], dict[str, int]]:
        with self.engine.begin() as conn:
            conn.execute(delete(REVOCATIONS).where(REVOCATIONS.c.expires_at < now))
            users = [User(**row._mapping) for row in conn.execute(select(USERS))]
            roles = [
                RoleAssignment(
                    user_id=r.user_id,
                    roles=json.loads(r.roles),
                    created_at=r.created_at,
                    updated_at=r.updated_at,
                    created_by=r.created_by,
                )
                for r in conn.execute(select(ROLES))
            ]
            keys = [
                ApiKey(**{**row._mapping, "permissions": json.loads(row.permissions)})
                for row in conn.execute(select(KEYS).order_by(KEYS.c.created_at, KEYS.c.key_id))
            ]
            revoked = {r.token_id: r.expires_at for r in conn.execute(select(REVOCATIONS))}
        return users, roles, keys, revoked

    def _upsert(self, table: Table, key: str, row: dict[str, Any]) -> None:
        stmt = self._insert(table).values(**row)
        stmt = stmt.on_conflict_do_update(
            index_elements=[key], set_={k: v for k, v in row.items() if k != key}
        )
        with self.engine.begin() as conn:
            conn.execute(stmt)

    def save_user(self, user: User) -> None:
        self._upsert(USERS, "user_id", asdict(user))

    def save_roles(self, assignment: RoleAssignment) -> None:
        row = asdict(assignment)
        row["roles"] = json.dumps(assignment.roles)
        self._upsert(ROLES, "user_id", row)

    def save_key(self, key: ApiKey) -> None:
        row = asdict(key)
        row["permissions"] = json.dumps(key.permissions)
        self._upsert(KEYS, "key_id", row)

    def touch_keys(self, last_used: dict[str, int]) -> None:
        with self.engine.begin() as conn:
            for key_id, when in last_used.items():
                conn.execute(update(KEYS).where(KEYS.c.key_id == key_id).values(last_used_at=when))

    def revoke(self, token_ids: dict[str, int]) -> None:
        with self.engine.begin() as conn:
            for token_id, expires_at in token_ids.items():
                stmt = self._insert(REVOCATIONS).values(token_id=token_id, expires_at=expires_at)
                conn.execute(stmt.on_conflict_do_nothing(index_elements=["token_id"]))
