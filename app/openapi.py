"""The OpenAPI document: FastAPI's, completed with what route decorators cannot say.

Every rule here applies to every operation, so a new route is documented the same way without
being listed: its security (from its guard), the error statuses the middleware and guards can
answer, the rate-limit and request-id headers, and required query parameters the handlers check
themselves (to keep the original's exact messages).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import Any

from fastapi import FastAPI, routing
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from pydantic import BaseModel

from app.api.deps import FORM, FORM_SUFFIX, REQUIRED_PARAMETER
from app.api.security import (
    API_KEY_SCHEME,
    BEARER_SCHEME,
    authenticated,
    optional_principal,
    public_rate_limited,
    stream_rate_limited,
)
from app.schemas.auth import ApiKeyCreate, LoginRequest, RefreshRequest, RoleChange, UserCreate
from app.schemas.exchange_keys import ExchangeKeyCreate, ExchangeKeyTest
from app.schemas.orders import CancelRequest, OrderRequest
from app.schemas.settings import SettingsImport, SettingsUpdate
from app.schemas.stream import StreamEventData
from app.schemas.system import ConfigChange

DESCRIPTION = """
HTTP gateway in front of the VeloZ trading engine: orders, cancels, order state, balances and
market data over REST, and every engine event live over Server-Sent Events (`/api/stream`).

**Errors** are always JSON: `{"error": "<code>", "message": "...", "details": ...}`. Invalid
input answers `400 bad_params` (field errors in `details`) or `400 bad_json`, never 422.

**Authentication** is off by default. When it is on, send either an access token from
`POST /api/auth/login` as `Authorization: Bearer <token>`, or an API key from
`POST /api/auth/keys` as `X-API-Key: <key>` (the **Authorize** button takes either).
Operations without a lock are public. Protected operations answer `401` without valid
credentials, `403 forbidden` without the permission, and `429 rate_limit_exceeded` when the
caller's token bucket is empty; their answers carry `X-RateLimit-Limit`, `X-RateLimit-Remaining`
and `X-RateLimit-Reset`.
"""

TAGS = [
    {"name": "health", "description": "Liveness of the process and of the engine. Public."},
    {"name": "market", "description": "The last simulated or venue price of each symbol."},
    {"name": "orders", "description": "Place and cancel orders (JSON or form bodies); read each "
     "order's folded state and the recent order events."},
    {"name": "account", "description": "Balances per asset: free, and locked by open orders."},
    {"name": "config", "description": "The effective configuration; run-time changes (admin)."},
    {"name": "execution", "description": "Reachability of the execution venue or engine."},
    {"name": "stream", "description": "Every engine event, live, as Server-Sent Events. Public."},
    {"name": "auth", "description": "Log in with a password, refresh and log out (HS256 JWTs); "
     "whether authentication is on and how to authenticate (public); who the caller is, with "
     "roles and permissions (any valid credentials)."},
    {"name": "api-keys", "description": "API keys for programs, sent as the `X-API-Key` header."},
    {"name": "roles", "description": "Role assignments: `viewer`, `trader`, `admin`."},
    {"name": "users", "description": "Users who can log in (admin)."},
    {"name": "audit", "description": "The audit log: query, statistics, archive (admin)."},
    {"name": "settings", "description": "GUI application settings: read, save, export, import."},
    {"name": "exchange-keys", "description": "Exchange API keys for trading on a venue: list, "
     "store (secrets encrypted at rest, never answered), delete, and test against the venue."},
    {"name": "metrics", "description": "Prometheus metrics. Public."},
]  # fmt: skip

# Bodies read by hand (JSON or form) are not seen by FastAPI; their schemas are added here.
EXTRA_SCHEMAS: tuple[type[BaseModel], ...] = (
    OrderRequest, CancelRequest, LoginRequest, RefreshRequest, ApiKeyCreate, RoleChange,
    UserCreate, ConfigChange, SettingsUpdate, SettingsImport, StreamEventData,
    ExchangeKeyCreate, ExchangeKeyTest,
)  # fmt: skip

ERROR_REF = {"$ref": "#/components/schemas/ErrorResponse"}

# What the guards and middleware can answer, whatever the route.
GUARD_ERRORS = {
    401: "Missing or invalid credentials (`authentication_required`, `invalid_token`, "
    "`invalid_api_key`)",
    403: "The caller lacks the permission (`forbidden`), or the address is refused "
    "(`ip_forbidden`)",
    429: "Rate limit exceeded (`rate_limit_exceeded`); retry after `Retry-After` seconds",
}
IP_REFUSED = (
    "The client address is refused by VELOZ_IP_WHITELIST / VELOZ_IP_BLACKLIST (`ip_forbidden`)"
)
BODY_ERRORS = {
    400: "Invalid body (`bad_json`) or fields (`bad_params`, the failing fields in `details`)",
    413: "Body larger than VELOZ_MAX_BODY_SIZE (`payload_too_large`)",
}

HEADERS: dict[str, dict[str, Any]] = {
    "X-Request-ID": {
        "description": "The request's id: the client's when it sent a valid one, else a new one.",
        "schema": {"type": "string"},
    },
    "X-RateLimit-Limit": {
        "description": "Bucket capacity (auth on only).",
        "schema": {"type": "integer"},
    },
    "X-RateLimit-Remaining": {
        "description": "Tokens left after this request (auth on only).",
        "schema": {"type": "integer"},
    },
    "X-RateLimit-Reset": {
        "description": "Unix seconds at which the bucket is full again (auth on only).",
        "schema": {"type": "integer"},
    },
    "Retry-After": {
        "description": "Seconds to wait before retrying.",
        "schema": {"type": "integer"},
    },
}
RATE_LIMIT_HEADERS = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")

# Links between operations (by operation id): what a response gives the next call. Clients and
# stateful test tools follow them.
LINKS: dict[tuple[str, str], dict[str, dict[str, Any]]] = {
    ("place_order", "200"): {
        "GetOrderState": {
            "operationId": "get_order_state",
            "parameters": {"client_order_id": "$response.body#/client_order_id"},
            "description": "The order's folded state.",
        },
        "CancelOrder": {
            "operationId": "cancel_order",
            "requestBody": {"client_order_id": "$response.body#/client_order_id"},
            "description": "Cancel the order.",
        },
    },
    ("create_api_key", "201"): {
        "RevokeApiKey": {
            "operationId": "revoke_api_key",
            "parameters": {"key_id": "$response.body#/key_id"},
            "description": "Revoke the new key.",
        },
    },
    ("create_user", "201"): {
        "GetUserRoles": {
            "operationId": "get_roles",
            "parameters": {"user_id": "$response.body#/user_id"},
            "description": "The new user's roles.",
        },
        "DisableUser": {
            "operationId": "disable_user",
            "parameters": {"user_id": "$response.body#/user_id"},
            "description": "Disable the new user.",
        },
    },
    ("assign_roles", "200"): {
        "RemoveRole": {
            "operationId": "remove_role",
            "parameters": {"user_id": "$response.body#/user_id", "role": "$response.body#/roles/0"},
            "description": "Remove one of the user's roles.",
        },
    },
    ("login", "200"): {
        "Refresh": {
            "operationId": "refresh_token",
            "requestBody": {"refresh_token": "$response.body#/refresh_token"},
            "description": "A new access token.",
        },
    },
}


def operation_id(route: APIRoute) -> str:
    """Operation ids are the handlers' names: `place_order`, `get_order_state`, ..."""
    return route.name


def _calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    for sub in dependant.dependencies:
        if sub.call is not None:
            yield sub.call
        yield from _calls(sub)


def _route_facts(app: FastAPI) -> dict[str, dict[str, bool]]:
    """Per operation id: whether credentials are optional, whether any valid credentials will
    do (no permission checked), whether it is rate limited while public."""
    facts = {}
    for context in routing.iter_route_contexts(app.routes):
        if isinstance(context.original_route, APIRoute) and context.include_in_schema:
            calls = set(_calls(context.dependant))
            facts[str(context.name)] = {
                "optional_auth": optional_principal in calls,
                "any_caller": authenticated in calls,
                "public_limited": bool(calls & {public_rate_limited, stream_rate_limited}),
            }
    return facts


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": ERROR_REF}}}


def _header_refs(*names: str) -> dict[str, Any]:
    return {name: {"$ref": f"#/components/headers/{name}"} for name in names}


def _without_null(schema: dict[str, Any]) -> dict[str, Any]:
    """A query or form value is never JSON null: drop the null branch of an optional type."""
    branches = schema.get("anyOf")
    if not branches:
        return schema
    kept = [b for b in branches if b.get("type") != "null"]
    rest = {k: v for k, v in schema.items() if k != "anyOf"}
    if len(kept) == 1:
        return {**kept[0], **rest}
    return {**rest, "anyOf": kept}


def _complete_parameters(operation: dict[str, Any]) -> None:
    for parameter in operation.get("parameters", []):
        schema = _without_null(parameter.get("schema", {}))
        if schema.pop(REQUIRED_PARAMETER, False):
            parameter["required"] = True
        if "default" in schema and schema["default"] is None:
            del schema["default"]
        parameter["schema"] = schema


def _complete_errors(operation: dict[str, Any], facts: dict[str, bool]) -> None:
    responses: dict[str, Any] = operation["responses"]
    if responses.pop("422", None) is not None:
        responses.setdefault("400", _error(BODY_ERRORS[400]))
    protected = bool(operation.get("security")) and not facts["optional_auth"]
    if protected:
        for status, description in GUARD_ERRORS.items():
            if status == 403 and facts["any_caller"]:
                description = IP_REFUSED
            responses.setdefault(str(status), _error(description))
    elif facts["public_limited"]:
        responses.setdefault("429", _error(GUARD_ERRORS[429]))
    responses.setdefault("403", _error(IP_REFUSED))
    if "requestBody" in operation:
        for status, description in BODY_ERRORS.items():
            responses.setdefault(str(status), _error(description))
    for code, response in responses.items():
        names = ["X-Request-ID"]
        if code in ("429", "503"):
            names.append("Retry-After")
        if (protected or facts["public_limited"]) and code not in ("401", "403"):
            names.extend(RATE_LIMIT_HEADERS)
        response["headers"] = {**_header_refs(*names), **response.get("headers", {})}
    operation["responses"] = dict(sorted(responses.items()))


def _complete_security(operation: dict[str, Any], facts: dict[str, bool]) -> None:
    if facts["optional_auth"]:
        # Public, but the credentials sent along are used (logout revokes the access token).
        operation["security"] = [{}, {BEARER_SCHEME: []}, {API_KEY_SCHEME: []}]
    elif not operation.get("security"):
        operation["security"] = []  # explicitly public


def build_openapi(app: FastAPI) -> dict[str, Any]:
    schema = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
        tags=app.openapi_tags,
    )
    facts = _route_facts(app)
    for item in schema.get("paths", {}).values():
        for operation in item.values():
            op_facts = facts[operation["operationId"]]
            _complete_parameters(operation)
            _complete_security(operation, op_facts)
            _complete_errors(operation, op_facts)
    by_id = {op["operationId"]: op for item in schema["paths"].values() for op in item.values()}
    for (op_id, status), links in LINKS.items():
        targets = {link["operationId"] for link in links.values()}
        if op_id not in by_id or not targets <= set(by_id):  # a renamed route breaks a link
            raise RuntimeError(f"OpenAPI link from {op_id} to unknown operations: {targets}")
        by_id[op_id]["responses"][status]["links"] = links
    components = schema.setdefault("components", {})
    models = components.setdefault("schemas", {})
    models.pop("HTTPValidationError", None)
    models.pop("ValidationError", None)
    for model in EXTRA_SCHEMAS:
        model_schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        models.update(model_schema.pop("$defs", {}))
        models[model.__name__] = model_schema
    for model in EXTRA_SCHEMAS:  # a model may finish its schema once every component exists
        refine = getattr(model, "openapi_refine", None)
        if refine is not None:
            refine(models)
    for ref in _form_refs(schema):
        name = ref.rsplit("/", 1)[-1]
        models[name] = _form_schema(models[name.removesuffix(FORM_SUFFIX)])
    components["schemas"] = dict(sorted(models.items()))
    components["headers"] = HEADERS
    return schema


def _form_refs(schema: dict[str, Any]) -> set[str]:
    return {
        body["content"][FORM]["schema"]["$ref"]
        for item in schema["paths"].values()
        for operation in item.values()
        if FORM in (body := operation.get("requestBody", {})).get("content", {})
    }


def _form_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """The form variant of a body model: the same fields, never null (a form cannot say null)."""
    form = copy.deepcopy({k: v for k, v in schema.items() if k not in ("examples", "title")})
    form["examples"] = [
        {name: str(value) for name, value in example.items()}
        for example in schema.get("examples", [])
    ]
    form["title"] = f"{schema.get('title', '')}Form"
    for branch in ("then", "else"):  # conditions may forbid null, which a form cannot send anyway
        for prop in form.get(branch, {}).get("properties", {}).values():
            prop.pop("not", None)
    form["properties"] = {
        name: {k: v for k, v in _without_null(prop).items() if not (k == "default" and v is None)}
        for name, prop in schema.get("properties", {}).items()
    }
    return form
