"""Runtime configuration (POST /api/config, decision F7).

Overrides are validated against the Settings model, stored in the database, applied at start on
top of the environment and file, and applied at once where that is safe.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import SecretStr, ValidationError
from sqlalchemy.engine import make_url

from app.core.config import Settings
from app.core.errors import ApiError, validation_details
from app.schemas.json_types import json_type_errors as model_type_errors

log = logging.getLogger("veloz.config")

# Applied to the running gateway at once.
LIVE_FIELDS = frozenset(
    {
        "rate_limit_capacity",
        "rate_limit_refill",
        "cors_origins",
        "cors_credentials",
        "log_level",
        "market_symbols",
        "risk_max_order_qty",
        "risk_max_order_notional",
        "sse_max_clients",
        "token_expiry",
    }
)
# Stored now, used from the next start.
RESTART_FIELDS = frozenset(
    {
        "event_buffer_size",
        "sse_queue_size",
        "sse_keepalive_seconds",
        "sim_tick_ms",
        "sim_volatility",
        "sim_liquidity",
        "audit_log_enabled",
        "audit_retention",
        "audit_queue_size",
        "audit_cleanup_interval_hours",
        "refresh_rotation",
    }
)
ACCEPTED_FIELDS = LIVE_FIELDS | RESTART_FIELDS
MASKED_FIELDS = frozenset({"binance_api_key"})  # not secret strictly, but not for viewers


async def load_overrides(settings: Settings) -> tuple[Settings, dict[str, Any]]:
    """The stored overrides, and the settings with them applied (read before start-up; the
    runtime migrates the schema, so a database without the table simply has none)."""
    from app.db.config import ConfigRepository
    from app.db.database import make_engine

    engine = make_engine(settings.effective_database_url)
    try:
        overrides = await asyncio.to_thread(ConfigRepository(engine).load)
    finally:
        engine.dispose()
    usable = {}
    for name, value in overrides.items():
        try:
            with_overrides(settings, {name: value})
        except ValidationError:
            log.error("ignoring the stored override of %s: no longer valid", name)
            continue
        usable[name] = value
    return with_overrides(settings, usable), usable


def with_overrides(settings: Settings, overrides: dict[str, Any]) -> Settings:
    """A validated Settings with `overrides` on top (raises ValidationError)."""
    values = settings.model_dump()
    values.update({k: v for k, v in overrides.items() if k in ACCEPTED_FIELDS})
    return Settings.model_validate(values)


def json_type_errors(changes: dict[str, Any]) -> list[dict[str, Any]]:
    """Changes whose JSON type is not the documented one (ConfigChange)."""
    from app.schemas.system import ConfigChange

    return model_type_errors(ConfigChange, changes)


def redacted(settings: Settings) -> dict[str, Any]:
    """Every setting, JSON-ready, secrets shown only as set or not."""
    out: dict[str, Any] = {}
    for name, value in settings.model_dump(mode="json").items():
        raw = getattr(settings, name)
        if isinstance(raw, SecretStr) or name in MASKED_FIELDS:
            shown = raw.get_secret_value() if isinstance(raw, SecretStr) else raw
            out[name] = "**********" if shown else ""
        elif name in ("database_url", "redis_url") and value:
            out[name] = make_url(value).render_as_string(hide_password=True)
        else:
            out[name] = value
    return out


def live_changes(old: Settings, new: Settings) -> set[str]:
    """The live fields whose values differ."""
    return {name for name in LIVE_FIELDS if getattr(old, name) != getattr(new, name)}


class RuntimeConfig:
    """Holds the stored overrides and applies changes through `apply_live`."""

    def __init__(
        self,
        overrides: dict[str, Any],
        save: Callable[[dict[str, Any]], None],
        apply_live: Callable[[Settings, set[str]], set[str]],
    ) -> None:
        self.overrides = overrides
        self._save = save
        self._apply_live = apply_live
        self.on_saved: Callable[[], Awaitable[None]] | None = None  # replicas: tell the others

    async def update(
        self, settings: Settings, changes: dict[str, Any]
    ) -> tuple[Settings, dict[str, list[str]]]:
        """Validate, store and apply; returns the new settings and what applied or waits."""
        unknown = sorted(set(changes) - ACCEPTED_FIELDS)
        if unknown:
            raise ApiError(
                400, "bad_params", f"these settings cannot be changed at run time: {unknown}",
                details={"accepted": sorted(ACCEPTED_FIELDS)},
            )  # fmt: skip
        mistyped = json_type_errors(changes)
        if mistyped:
            raise ApiError(400, "bad_params", "invalid configuration", mistyped)
        try:
            updated = with_overrides(settings, changes)
        except ValidationError as exc:
            raise ApiError(400, "bad_params", "invalid configuration",
                           validation_details(exc.errors())) from exc  # fmt: skip
        stored = {**self.overrides}
        for name in changes:
            stored[name] = updated.model_dump(mode="json")[name]
        await asyncio.to_thread(self._save, stored)  # stored before anything changes
        self.overrides = stored
        live = {name for name in changes if name in LIVE_FIELDS}
        waiting = self._apply_live(updated, live)  # a live field may still need a restart
        applied = sorted(live - waiting)
        restart = sorted((set(changes) - live) | waiting)
        log.info("configuration changed: applied %s, after restart %s", applied, restart)
        if self.on_saved is not None:
            await self.on_saved()
        return updated, {"applied": applied, "restart_required": restart}
