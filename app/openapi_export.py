"""Write the app's OpenAPI schema: `python -m app.openapi_export openapi/openapi.json`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def current_schema() -> dict[str, Any]:
    from app.core.config import Settings
    from app.main import create_app

    schema: dict[str, Any] = create_app(Settings()).openapi()
    return schema


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=False) + "\n"


def main() -> int:
    text = render(current_schema())
    if len(sys.argv) > 1:
        Path(sys.argv[1]).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
