"""Dependencies for the routers, as Annotated aliases."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import Depends, Query, Request
from pydantic import BaseModel, ValidationError

from app.core.config import Settings
from app.core.errors import ApiError
from app.core.jsonutil import loads
from app.runtime import Runtime
from app.services.orders import OrderService


# async: FastAPI runs plain `def` dependencies in a worker thread, a costly hop per request.
async def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


async def get_settings(request: Request) -> Settings:
    runtime: Runtime = request.app.state.runtime
    return runtime.settings


async def get_order_service(request: Request) -> OrderService:
    runtime: Runtime = request.app.state.runtime
    return runtime.orders


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
OrderServiceDep = Annotated[OrderService, Depends(get_order_service)]


FORM = "application/x-www-form-urlencoded"
FORM_SUFFIX = "Form"  # `<Model>Form`: the model's fields as a form can carry them (app.openapi)
REQUIRED_PARAMETER = "x-veloz-required"  # turned into `required: true` by app.openapi


def body_doc(model: type[BaseModel], *, form: bool = False) -> dict[str, Any]:
    """OpenAPI for a body read by hand (`read_object_body`): JSON, and forms where accepted."""
    content: dict[str, Any] = {
        "application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}
    }
    if form:
        name = f"{model.__name__}{FORM_SUFFIX}"
        content[FORM] = {"schema": {"$ref": f"#/components/schemas/{name}"}}
    # A missing body reads as `{}` (contract §1.3), so it is optional where `{}` is valid.
    try:
        model.model_validate({})
        required = False
    except ValidationError:
        required = True
    return {"requestBody": {"required": required, "content": content}}


def required_query(description: str, **schema: Any) -> Any:
    """A query parameter documented as required that the handler checks itself, so a missing
    or blank value gets the original's exact message (`<name> is required`)."""
    return Query(description=description, json_schema_extra={REQUIRED_PARAMETER: True, **schema})


async def read_object_body(request: Request, *, form_allowed: bool) -> dict[str, Any]:
    """The body as an object: JSON, or a form when allowed and the type is not JSON (K4)."""
    raw = await request.body()
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if form_allowed and content_type != "application/json":
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ApiError(400, "bad_params", "form body is not valid UTF-8") from exc
        form: dict[str, Any] = {}
        for key, value in parse_qsl(text, keep_blank_values=True):
            form.setdefault(key, value)  # the first value of each key wins
        return form
    if not raw.strip():
        return {}
    try:
        data = loads(raw)
    except ValueError as exc:
        raise ApiError(400, "bad_json", "request body is not valid JSON") from exc
    if not isinstance(data, dict):
        raise ApiError(400, "bad_params", "request body must be a JSON object")
    return data
