"""The committed OpenAPI contract and the offline Swagger UI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from app import __version__
from app.openapi_export import current_schema, render
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


def test_every_operation_is_described_and_errors_use_the_error_model() -> None:
    schema = current_schema()
    assert schema["info"]["version"] == __version__
    for path, method, operation in _operations(schema):
        assert operation.get("summary"), (method, path)
        assert operation.get("tags"), (method, path)
        assert "422" not in operation["responses"], (method, path)
        for status, response in operation["responses"].items():
            if status.startswith(("4", "5")):
                ref = response["content"]["application/json"]["schema"]["$ref"]
                assert ref == "#/components/schemas/ErrorResponse", (method, path, status)
    assert "HTTPValidationError" not in schema["components"]["schemas"]


def test_order_and_cancel_document_json_and_form_bodies() -> None:
    schema = current_schema()
    for path, model in (("/api/order", "OrderRequest"), ("/api/cancel", "CancelRequest")):
        content = schema["paths"][path]["post"]["requestBody"]["content"]
        assert set(content) == {"application/json", "application/x-www-form-urlencoded"}
        assert content["application/json"]["schema"] == {"$ref": f"#/components/schemas/{model}"}
        assert model in schema["components"]["schemas"]


def test_stream_is_documented_as_event_stream() -> None:
    schema = current_schema()
    content = schema["paths"]["/api/stream"]["get"]["responses"]["200"]["content"]
    assert "text/event-stream" in content


async def test_swagger_ui_is_served_without_internet(gateway: Gateway) -> None:
    page = await gateway.client.get("/docs")
    assert page.status_code == 200
    assert "cdn" not in page.text.lower()
    assert "/docs-assets/swagger-ui-bundle.js" in page.text
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
        response = await gateway.client.get(f"/docs-assets/{asset}")
        assert response.status_code == 200
        assert len(response.content) > 10_000
    served = await gateway.client.get("/openapi.json")
    assert served.json() == json.loads(COMMITTED.read_text(encoding="utf-8"))
