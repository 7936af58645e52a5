"""GUI settings rules (contract §4.15): defaults, section merge, full replacement, export, import.

Two views of one document:

* the *stored* document, exactly as last saved (a replacement or an import may leave keys out);
* the *effective* settings, what GET answers: each default section (§4.15) with the stored
  section shallow-merged over it, then every other stored top-level key as stored. It is computed
  the same way at start and after every save, so it never changes across a restart.

Saves go to the database before the in-memory view changes, one at a time: a failed save changes
nothing, and two concurrent section merges never lose one another's keys.
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy import Engine

from app.core.jsonutil import loads
from app.db.settings import CorruptSettings, SettingsRepository
from app.schemas.settings import SECTION_MODELS, SENSITIVE_KEY, SettingsConfig, default_settings

log = logging.getLogger("veloz.settings")

MAX_SECTION_NAME = 64


class InvalidSettings(Exception):
    """A document or section that fails its model; `errors` are [{"field", "message", "type"}]."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__("invalid settings")
        self.errors = errors


class InvalidSettingsText(InvalidSettings):
    """Imported JSON text that does not parse to a valid document."""


class SettingsStorageError(Exception):
    """The database did not take the save."""


def _error(field: str | None, message: str, kind: str = "value_error") -> dict[str, Any]:
    return {"field": field, "message": message, "type": kind}


def _errors(exc: ValidationError, prefix: Sequence[str] = ()) -> list[dict[str, Any]]:
    """Pydantic's errors as the API's details: the field as a dotted path, no input values."""
    return [
        _error(
            ".".join([*prefix, *(str(part) for part in error["loc"])]) or None,
            error["msg"],
            error["type"],
        )
        for error in exc.errors(include_url=False, include_input=False)
    ]


def effective(stored: dict[str, Any]) -> dict[str, Any]:
    """The default sections, each with the stored one shallow-merged over it, then every other
    stored key. A new document: nothing is shared with `stored`."""
    result = default_settings()
    for name, value in stored.items():
        if name in result and isinstance(value, dict):
            result[name].update(copy.deepcopy(value))
        else:
            result[name] = copy.deepcopy(value)
    return result


def validate_document(config: object) -> dict[str, Any]:
    """A whole document: the four required sections, each section valid. Raises InvalidSettings."""
    if not isinstance(config, dict):
        raise InvalidSettings([_error(None, "the configuration must be a JSON object")])
    try:
        SettingsConfig.model_validate(config)
    except ValidationError as exc:
        raise InvalidSettings(_errors(exc)) from None
    return config


def validate_section(section: str, data: dict[str, Any]) -> None:
    """A known section's content (after a merge); other sections only need to be objects."""
    model: type[BaseModel] | None = SECTION_MODELS.get(section)
    if model is None:
        return
    try:
        model.model_validate(data)
    except ValidationError as exc:
        raise InvalidSettings(_errors(exc, (section,))) from None


class SettingsService:
    def __init__(self, engine: Engine) -> None:
        self.repository = SettingsRepository(engine)
        self._stored: dict[str, Any] = {}
        self._effective: dict[str, Any] = default_settings()
        self._lock = asyncio.Lock()
        # Replicas share the document: re-read it before a merge, tell the others after a save.
        self.shared = False
        self.on_saved: Callable[[], Awaitable[None]] | None = None

    async def start(self) -> None:
        await self.reload()

    async def reload(self) -> None:
        """Read the stored document (at start; with replicas, when another one saved it)."""
        try:
            stored = await asyncio.to_thread(self.repository.load)
        except CorruptSettings:
            # Never written like this by the gateway; keep the row for inspection until the next
            # save, and serve the defaults meanwhile.
            log.exception("stored GUI settings unreadable; using the defaults")
            stored = None
        self._stored = stored or {}
        self._effective = effective(self._stored)

    # --- reads ------------------------------------------------------------------------------
    def get(self) -> dict[str, Any]:
        """The effective settings (a copy)."""
        return copy.deepcopy(self._effective)

    def export(self, include_sensitive: bool) -> str:
        """The effective settings as an indent-2 JSON file, without `apiKeys` unless asked."""
        config = self.get()
        if not include_sensitive:
            config.pop(SENSITIVE_KEY, None)
        return json.dumps(config, indent=2)

    # --- changes ----------------------------------------------------------------------------
    async def merge_section(self, section: object, data: object) -> dict[str, Any]:
        """Shallow-merge `data` into `section` (created if absent); the effective settings."""
        if not isinstance(section, str) or not 0 < len(section) <= MAX_SECTION_NAME:
            raise InvalidSettings(
                [_error("section", f"section must be a name of 1 to {MAX_SECTION_NAME} characters")]
            )
        if not isinstance(data, dict):
            raise InvalidSettings([_error("data", "data must be a JSON object")])
        async with self._lock:
            if self.shared:
                await self.reload()
            current = self._effective.get(section)
            merged = {**current, **data} if isinstance(current, dict) else dict(data)
            validate_section(section, merged)
            stored_section = self._stored.get(section)
            stored = dict(self._stored)
            stored[section] = (
                {**stored_section, **data} if isinstance(stored_section, dict) else dict(data)
            )
            await self._save(stored)
        return self.get()

    async def replace(self, config: object) -> dict[str, Any]:
        """Replace the whole document; the effective settings."""
        document = validate_document(config)
        async with self._lock:
            await self._save(document)
        return self.get()

    async def import_config(self, config: object) -> dict[str, Any]:
        """Replace the whole document with `config`, an object or its JSON text; the document as
        saved. Text that does not parse or validate raises InvalidSettingsText."""
        if isinstance(config, str):
            try:
                document = validate_document(loads(config))
            except ValueError:
                raise InvalidSettingsText([_error("config", "not valid JSON")]) from None
            except InvalidSettings as exc:
                raise InvalidSettingsText(exc.errors) from None
        else:
            document = validate_document(config)
        async with self._lock:
            await self._save(document)
        return copy.deepcopy(document)

    async def _save(self, stored: dict[str, Any]) -> None:
        stored = copy.deepcopy(stored)
        try:
            await asyncio.to_thread(self.repository.save, stored, int(time.time()))
        except Exception as exc:
            log.exception("saving the GUI settings failed")
            raise SettingsStorageError("the settings could not be saved") from exc
        self._stored = stored
        self._effective = effective(stored)
        if self.on_saved is not None:
            await self.on_saved()
