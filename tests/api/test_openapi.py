"""The committed OpenAPI contract and the offline Swagger UI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import fastapi.routing
from fastapi import FastAPI
from fastapi.routing import APIRoute

from app import __version__
from app.main import create_app
from app.openapi_export import current_schema, render
from tests.api.conftest import SettingsFactory
from tests.conftest import Gateway

COMMITTED = Path(__file__).resolve().parents[2] / "openapi" / "openapi.json"


def _operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, operation)
        for path, item in schema["paths"].items()
        for method, operation in item.items()
    ]


def test_committed_schema_matches_the_app() -> None:
    committed = COMMITTED.read_text(encoding="utf-8")
    assert render(current_schema()) == committed, "run `make openapi` and commit the result"


def test_operation_ids_are_clean_and_unique() -> None:
    schema = current_schema()
    ids = [operation["operationId"] for _, _, operation in _operations(schema)]
    assert len(ids) == len(set(ids))
    assert all(op_id.isidentifier() for op_id in ids)
    assert not [i for i in ids if i.endswith(("_get", "_post", "_delete"))]
    assert "place_order" in ids
    assert "cancel_order" in ids


ERROR_REF = "#/components/schemas/ErrorResponse"
BOTH_SCHEMES = [{"bearerAuth": []}, {"apiKeyAuth": []}]


def _guards(app: FastAPI) -> dict[str, str]:
    """Per operation id, how the route is guarded: "protected" (a permission), "authenticated"
    (any valid credentials), "optional" (credentials used when sent) or "public", read from its
    dependencies."""
    guards = {}
    for context in fastapi.routing.iter_route_contexts(app.routes):
        route = context.original_route
        if not isinstance(route, APIRoute) or not route.include_in_schema:
            continue
        names = {getattr(dep.call, "__name__", "") for dep in _dependencies(context.dependant)}
        if any(name.startswith("require_") for name in names):
            guards[str(context.name)] = "protected"
        elif "authenticated" in names:
            guards[str(context.name)] = "authenticated"
        elif "optional_principal" in names:
            guards[str(context.name)] = "optional"
        else:
            guards[str(context.name)] = "public"
    return guards


def _dependencies(dependant: Any) -> list[Any]:
    found = []
    for dep in dependant.dependencies:
        found.append(dep)
        found.extend(_dependencies(dep))
    return found


def _model(schema: dict[str, Any], ref_holder: dict[str, Any]) -> dict[str, Any]:
    ref = ref_holder.get("$ref", "")
    assert ref.startswith("#/components/schemas/"), ref_holder
    model: dict[str, Any] = schema["components"]["schemas"][ref.rsplit("/", 1)[-1]]
    return model


def test_security_schemes_are_bearer_jwt_and_the_api_key_header() -> None:
    schemes = current_schema()["components"]["securitySchemes"]
    assert schemes["bearerAuth"] == {
        "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
        "description": schemes["bearerAuth"]["description"],
    }  # fmt: skip
    assert schemes["apiKeyAuth"]["type"] == "apiKey"
    assert schemes["apiKeyAuth"]["in"] == "header"
    assert schemes["apiKeyAuth"]["name"] == "X-API-Key"


def test_every_operation_follows_the_documentation_rules(make_settings: SettingsFactory) -> None:
    """The rules every operation is held to, new ones included: tagged with a described tag,
    summarised and described, secured exactly as its guard says, every error documented with
    the error model (guards: 401/403/429; bodies: 400/413; everywhere: 403 for refused
    addresses), examples on its request body and JSON answers."""
    schema = current_schema()
    guards = _guards(create_app(make_settings()))
    described_tags = {tag["name"] for tag in schema["tags"] if tag.get("description")}
    assert described_tags == {tag["name"] for tag in schema["tags"]}
    operations = _operations(schema)
    assert {op["operationId"] for _, _, op in operations} == set(guards)
    for path, method, operation in operations:
        where = (method, path)
        assert operation.get("summary"), where
        assert len(operation.get("description", "")) > 20, where
        assert operation.get("tags") and set(operation["tags"]) <= described_tags, where

        guard = guards[operation["operationId"]]
        responses = operation["responses"]
        if guard in ("protected", "authenticated"):
            assert operation["security"] == BOTH_SCHEMES, where
            assert {"401", "403", "429"} <= set(responses), where
            # Without a permission to check, the only 403 is a refused address.
            forbidden_documented = "`forbidden`" in responses["403"]["description"]
            assert forbidden_documented == (guard == "protected"), where
        elif guard == "optional":
            assert operation["security"] == [{}, *BOTH_SCHEMES], where
            assert "401" not in responses, where
        else:
            assert operation["security"] == [], where
        assert "403" in responses, where
        assert "422" not in responses, where

        for status, response in responses.items():
            assert response.get("description"), (where, status)
            assert "X-Request-ID" in response["headers"], (where, status)
            if status.startswith(("4", "5")):
                assert response["content"]["application/json"]["schema"]["$ref"] == ERROR_REF, (
                    where, status,
                )  # fmt: skip
            elif "application/json" in response.get("content", {}):
                body = response["content"]["application/json"]["schema"]
                refs = body.get("anyOf", [body])
                assert all(_model(schema, ref).get("examples") for ref in refs), (where, status)
        if "429" in responses:
            assert "Retry-After" in responses["429"]["headers"], where

        if "requestBody" in operation:
            assert {"400", "413"} <= set(responses), where
            for content in operation["requestBody"]["content"].values():
                assert _model(schema, content["schema"]).get("examples"), where
    assert "HTTPValidationError" not in schema["components"]["schemas"]


def test_the_version_is_the_package_version_and_has_a_changelog_entry() -> None:
    schema = current_schema()
    assert schema["info"]["version"] == __version__
    changelog = (COMMITTED.parents[1] / "CHANGELOG.md").read_text(encoding="utf-8")
    assert f"## {__version__}" in changelog


def test_required_query_parameters_are_documented_as_required() -> None:
    schema = current_schema()
    expected = {
        ("/api/order_state", "get"): {"client_order_id"},
        ("/api/auth/keys", "delete"): {"key_id"},
        ("/api/auth/roles", "delete"): {"user_id", "role"},
        ("/api/auth/users", "delete"): {"user_id"},
        ("/api/exchange-keys", "delete"): {"key_id"},
    }
    for (path, method), names in expected.items():
        parameters = schema["paths"][path][method]["parameters"]
        required = {p["name"] for p in parameters if p.get("required")}
        assert required == names, (path, method)
        for parameter in parameters:
            assert "null" not in json.dumps(parameter["schema"]), (path, parameter)
    role = schema["paths"]["/api/auth/roles"]["delete"]["parameters"][1]["schema"]
    assert role["enum"] == ["viewer", "trader", "admin"]


def test_order_and_cancel_document_json_and_form_bodies() -> None:
    schema = current_schema()
    for path, model in (("/api/order", "OrderRequest"), ("/api/cancel", "CancelRequest")):
        content = schema["paths"][path]["post"]["requestBody"]["content"]
        assert set(content) == {"application/json", "application/x-www-form-urlencoded"}
        assert content["application/json"]["schema"] == {"$ref": f"#/components/schemas/{model}"}
        form = content["application/x-www-form-urlencoded"]["schema"]["$ref"].rsplit("/", 1)[-1]
        assert form == f"{model}Form"
        models = schema["components"]["schemas"]
        # A form cannot carry null: the form variant lists the same fields, never nullable.
        assert set(models[form]["properties"]) == set(models[model]["properties"])
        assert '"null"' not in json.dumps(models[form])
    # JSON may say null, except for the price of a limit order.
    limit_price = schema["components"]["schemas"]["OrderRequest"]["else"]["properties"]["price"]
    assert limit_price == {"not": {"type": "null"}}


def test_stream_is_documented_as_event_stream() -> None:
    schema = current_schema()
    content = schema["paths"]["/api/stream"]["get"]["responses"]["200"]["content"]
    event = content["text/event-stream"]["schema"]
    assert event["required"] == ["id", "event", "data"]
    assert event["properties"]["data"]["contentMediaType"] == "application/json"
    for event_type in ("engine_started", "market", "order_update", "fill", "account", "error"):
        assert event_type in event["properties"]["event"]["examples"]
    data = schema["components"]["schemas"]["StreamEventData"]
    assert data["required"] == ["type"]


async def test_swagger_ui_is_served_without_internet(gateway: Gateway) -> None:
    page = await gateway.client.get("/docs")
    assert page.status_code == 200
    assert "cdn" not in page.text.lower()
    assert "/docs-assets/swagger-ui-bundle.js" in page.text
    redoc = await gateway.client.get("/redoc")
    assert redoc.status_code == 200
    assert "/docs-assets/redoc.standalone.js" in redoc.text
    assert "fonts.googleapis" not in redoc.text
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js"):
        response = await gateway.client.get(f"/docs-assets/{asset}")
        assert response.status_code == 200
        assert len(response.content) > 10_000
    served = await gateway.client.get("/openapi.json")
    assert served.json() == json.loads(COMMITTED.read_text(encoding="utf-8"))
