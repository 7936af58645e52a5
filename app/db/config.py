"""Stored configuration overrides. Synchronous."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Engine, Table, delete, insert, inspect, select

from app.db.tables import ConfigOverrideRow

OVERRIDES: Table = ConfigOverrideRow.__table__  # type: ignore[attr-defined]


class ConfigRepository:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def load(self) -> dict[str, Any]:
        """The stored overrides; none when the schema does not have the table yet."""
        if not inspect(self.engine).has_table(OVERRIDES.name):
            return {}
        with self.engine.connect() as conn:
            return {r.name: json.loads(r.value) for r in conn.execute(select(OVERRIDES))}

    def save(self, overrides: dict[str, Any]) -> None:
        """Replace every stored override in one transaction."""
        with self.engine.begin() as conn:
            conn.execute(delete(OVERRIDES))
            if overrides:
                conn.execute(
                    insert(OVERRIDES),
                    [{"name": k, "value": json.dumps(v)} for k, v in overrides.items()],
                )
