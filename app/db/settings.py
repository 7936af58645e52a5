"""The GUI settings document in the database. Synchronous: called through asyncio.to_thread.

One row holds the whole document as JSON text, so a save is a single-row upsert: atomic, and
never a mix of an old and a new section. The row is named, so per-user documents can be added
later without a schema change; the gateway uses the name `default`.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import BigInteger, Column, Engine, Table, Text, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Field, SQLModel

DEFAULT_DOCUMENT = "default"


class GuiSettingsRow(SQLModel, table=True):
    """The settings document of `name` (§4.15), as stored: not merged with the defaults."""

    __tablename__ = "gui_settings"

    name: str = Field(primary_key=True, max_length=64)
    document: str = Field(sa_column=Column(Text, nullable=False))  # JSON object
    updated_at: int = Field(sa_column=Column(BigInteger, nullable=False))


GUI_SETTINGS: Table = GuiSettingsRow.__table__  # type: ignore[attr-defined]


class CorruptSettings(Exception):
    """The stored document is not a JSON object."""


class SettingsRepository:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert

    def load(self, name: str = DEFAULT_DOCUMENT) -> dict[str, Any] | None:
        """The stored document, or None when nothing was ever saved."""
        with self.engine.connect() as conn:
            text = conn.execute(
                select(GUI_SETTINGS.c.document).where(GUI_SETTINGS.c.name == name)
            ).scalar()
        if text is None:
            return None
        try:
            document = json.loads(text)
        except ValueError as exc:
            raise CorruptSettings(f"settings document {name!r} is not valid JSON") from exc
        if not isinstance(document, dict):
            raise CorruptSettings(f"settings document {name!r} is not a JSON object")
        return document

    def save(self, document: dict[str, Any], updated_at: int, name: str = DEFAULT_DOCUMENT) -> None:
        """Replace the whole document in one transaction."""
        row = {
            "name": name,
            "document": json.dumps(document, ensure_ascii=False, allow_nan=False),
            "updated_at": updated_at,
        }
        stmt = self._insert(GUI_SETTINGS).values(**row)
        stmt = stmt.on_conflict_do_update(
            index_elements=["name"],
            set_={"document": row["document"], "updated_at": updated_at},
        )
        with self.engine.begin() as conn:
            conn.execute(stmt)
