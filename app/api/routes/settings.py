"""GUI application settings (contract §4.15), stored in the database.

Permissions: reading needs read:config; POST /api/settings needs write:orders, as in the original
(its default for a POST), so a trader's GUI can save its preferences. Two deliberate
tightenings: an export with `include_sensitive=true` needs admin:config, and so does an import,
which replaces the original's check for the literal `admin` permission (§2.5): the admin role,
the legacy `admin` name and a granular `admin:config` all pass it. The export's extra check is
made in the handler, after the read:config guard (the contract's "handler check" of §4.1).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from app.api.context import audit
from app.api.deps import body_doc, read_object_body
from app.api.security import require
from app.auth.permissions import ADMIN_CONFIG, READ_CONFIG, WRITE_ORDERS, Principal
from app.core.errors import ApiError
from app.core.jsonutil import dumps_bytes
from app.schemas.common import ErrorResponse, error_responses
from app.schemas.settings import (
    SettingsConfig,
    SettingsImport,
    SettingsImported,
    SettingsSaved,
    SettingsUpdate,
)
from app.services.settings import (
    InvalidSettings,
    InvalidSettingsText,
    SettingsService,
    SettingsStorageError,
)

router = APIRouter(tags=["settings"])

INVALID_CONFIGURATION = "Invalid configuration"
EXPORT_FILENAME = "veloz_config.json"

_read_config = require(READ_CONFIG)


def _service(request: Request) -> SettingsService:
    service: SettingsService = request.app.state.runtime.gui_settings
    return service


def _json(body: Any) -> Response:
    """Values exactly as stored: numbers keep their JSON form (10000 stays 10000)."""
    return Response(dumps_bytes(body), media_type="application/json")


def _server_error(code: str, description: str) -> dict[int | str, dict[str, Any]]:
    return {500: {"model": ErrorResponse, "description": f"{description} (`{code}`)"}}


def _invalid(exc: InvalidSettings) -> ApiError:
    return ApiError(400, "validation_error", INVALID_CONFIGURATION, exc.errors)


def _storage_failed(exc: SettingsStorageError) -> ApiError:
    return ApiError(500, "config_error", str(exc))


def _is_true(value: str | None) -> bool:
    return (value or "").lower() == "true"


IncludeSensitive = Annotated[
    str | None,
    Query(description="`true` (any case) keeps the top-level `apiKeys`; needs admin:config."),
]


async def _require_also(request: Request, principal: Principal, permission: str) -> None:
    """A handler-level permission check (§4.1's "handler check"), refused as a guard refuses:
    403 with the same message, counted and audited."""
    if principal.allows(permission):
        return
    request.app.state.runtime.metrics.auth_failures.labels(reason="forbidden").inc()
    await audit(request, "access", "permission_denied",
                {"path": request.url.path, "permission": permission})  # fmt: skip
    raise ApiError(403, "forbidden", f"Required permissions: {permission}")


_VALIDATION_400: dict[int | str, dict[str, Any]] = {
    400: {
        "model": ErrorResponse,
        "description": "Invalid body (`bad_json`, `bad_params`) or configuration "
        "(`validation_error`, with the failing fields in `details`)",
    }
}


@router.get(
    "/api/settings",
    summary="GUI settings",
    response_model=SettingsConfig,
    responses=error_responses(401, 403, 429),
    dependencies=[Depends(_read_config)],
)
async def get_settings(request: Request) -> Response:
    """The settings in effect, as a bare object: each section of the defaults with the saved
    section shallow-merged over it, then any other saved sections."""
    return _json(_service(request).get())


@router.post(
    "/api/settings",
    summary="Save GUI settings",
    response_model=SettingsSaved,
    responses={
        **_VALIDATION_400,
        **error_responses(401, 403, 413, 429),
        **_server_error("config_error", "The settings could not be saved"),
    },
    dependencies=[Depends(require(WRITE_ORDERS))],
    openapi_extra=body_doc(SettingsUpdate),
)
async def save_settings(request: Request) -> Response:
    """`{"section": name, "data": {...}}` shallow-merges `data` into that section, creating it
    if absent. Any other body replaces the whole document and must hold `general`, `trading`,
    `risk` and `advanced`. Known sections are validated field by field; the answer carries the
    settings now in effect."""
    body = await read_object_body(request, form_allowed=False)
    service = _service(request)
    try:
        if "section" in body and "data" in body:
            sections = [body["section"]]
            settings = await service.merge_section(body["section"], body["data"])
            mode = "merge"
        else:
            sections = list(body)
            settings = await service.replace(body)
            mode = "replace"
    except InvalidSettings as exc:
        raise _invalid(exc) from None
    except SettingsStorageError as exc:
        raise _storage_failed(exc) from exc
    await audit(request, "config", "update_settings", {"sections": sections, "mode": mode})
    return _json({"ok": True, "settings": settings})


@router.get(
    "/api/settings/export",
    summary="Export GUI settings",
    response_class=Response,
    responses={
        200: {
            "description": "The settings in effect as an indent-2 JSON file, without the "
            "top-level `apiKeys` unless `include_sensitive=true`.",
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/SettingsConfig"}}
            },
            "headers": {
                "Content-Disposition": {
                    "description": f"`attachment; filename={EXPORT_FILENAME}`",
                    "schema": {"type": "string"},
                }
            },
        },
        **error_responses(401, 403, 429),
        **_server_error("export_error", "The export failed"),
    },
)
async def export_settings(
    request: Request,
    principal: Annotated[Principal, Depends(_read_config)],
    include_sensitive: IncludeSensitive = None,
) -> Response:
    """Download the settings. `include_sensitive=true` also needs admin:config."""
    sensitive = _is_true(include_sensitive)
    if sensitive:
        await _require_also(request, principal, ADMIN_CONFIG)
    try:
        text = _service(request).export(sensitive)
    except Exception as exc:
        raise ApiError(500, "export_error", "the settings could not be exported") from exc
    await audit(request, "config", "export_settings", {"include_sensitive": sensitive})
    return Response(
        text,
        media_type="application/json",
        headers={"Content-Disposition": f"attachment; filename={EXPORT_FILENAME}"},
    )


@router.post(
    "/api/settings/import",
    summary="Import GUI settings",
    response_model=SettingsImported,
    responses={
        400: {
            "model": ErrorResponse,
            "description": "No `config` (`bad_params`), JSON text that does not parse or "
            "validate (`import_error`), an object that does not validate (`validation_error`), "
            "or an invalid body (`bad_json`)",
        },
        **error_responses(401, 403, 413, 429),
        **_server_error("config_error", "The settings could not be saved"),
    },
    dependencies=[Depends(require(ADMIN_CONFIG))],
    openapi_extra=body_doc(SettingsImport),
)
async def import_settings(request: Request) -> Response:
    """Replace the whole document with `config`: an object, or its JSON text (an exported file).
    The answer carries the document as saved, not merged with the defaults. Needs admin:config."""
    body = await read_object_body(request, form_allowed=False)
    config = body.get("config")
    if not config:
        raise ApiError(400, "bad_params", "config field required")
    try:
        saved = await _service(request).import_config(config)
    except InvalidSettingsText as exc:
        raise ApiError(400, "import_error", "Invalid configuration format", exc.errors) from None
    except InvalidSettings as exc:
        raise _invalid(exc) from None
    except SettingsStorageError as exc:
        raise _storage_failed(exc) from exc
    form = "text" if isinstance(config, str) else "object"
    await audit(request, "config", "import_settings", {"sections": list(saved), "format": form})
    return _json({"ok": True, "message": "Configuration imported successfully", "settings": saved})
