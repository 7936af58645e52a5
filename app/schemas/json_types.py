"""JSON type checks against a model's documented schema, for bodies read by hand: pydantic
alone would coerce `0` into false or `"5"` into 5, and `str()` would turn `{}` into text."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "boolean": (bool,),
    "integer": (int,),
    "number": (int, float),
    "string": (str,),
    "array": (list,),
    "object": (dict,),
    "null": (type(None),),
}


def has_json_type(value: Any, kind: str | None) -> bool:
    if kind is None:
        return True
    if isinstance(value, bool) and kind != "boolean":
        return False
    if kind == "integer" and isinstance(value, float):
        return value.is_integer()  # JSON counts 5.0 as an integer
    return isinstance(value, _JSON_TYPES[kind])


def json_type_errors(model: type[BaseModel], values: dict[str, Any]) -> list[dict[str, Any]]:
    """The documented fields of `values` whose JSON type is not the model's (others pass)."""
    properties = model.model_json_schema()["properties"]
    errors = []
    for name, value in values.items():
        if name not in properties:
            continue
        prop = properties[name]
        kinds = [option.get("type") for option in prop.get("anyOf", [prop])]
        if not any(has_json_type(value, kind) for kind in kinds):
            expected = " or ".join(map(str, kinds))
            errors.append(
                {"field": name, "message": f"must be of type {expected}", "type": "type_error"}
            )
    return errors
