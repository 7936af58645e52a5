"""Clients generated from the committed openapi/openapi.json, built in temporary directories."""

from __future__ import annotations

import importlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from tests.integration.conftest import PROJECT_ROOT, start_gateway

__all__ = ["start_gateway"]

SCHEMA = PROJECT_ROOT / "openapi" / "openapi.json"
GENERATOR = Path(sys.executable).with_name("openapi-python-client")
PACKAGE = "veloz_client"


def _import_unset_where_used(package: Path) -> None:
    """openapi-python-client 0.29 annotates a required body that has several media types (our
    JSON-or-form order and cancel) with `| Unset` but does not import `Unset`, so the module
    fails at import. Add the import where the name is used and missing; nothing else changes."""
    for module in (package / "api").rglob("*.py"):
        text = module.read_text(encoding="utf-8")
        if "| Unset" in text and "import UNSET, Unset" not in text:
            fixed = text.replace(
                "from ...types import Response, UNSET\n",
                "from ...types import Response, UNSET, Unset\n",
                1,
            )
            assert fixed != text, f"unexpected imports in {module}"
            module.write_text(fixed, encoding="utf-8")


@pytest.fixture(scope="session")
def python_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """The package openapi-python-client generates, importable as `veloz_client`."""
    root = tmp_path_factory.mktemp("python-client")
    config = root / "generator.yaml"
    config.write_text(f"package_name_override: {PACKAGE}\npost_hooks: []\n", encoding="utf-8")
    generated = subprocess.run(
        [str(GENERATOR), "generate", "--path", str(SCHEMA), "--meta", "none",
         "--output-path", str(root / PACKAGE), "--config", str(config)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert generated.returncode == 0, generated.stdout + generated.stderr
    assert "Warning" not in generated.stdout, generated.stdout
    _import_unset_where_used(root / PACKAGE)
    sys.path.insert(0, str(root))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(root))
        for name in [n for n in sys.modules if n == PACKAGE or n.startswith(f"{PACKAGE}.")]:
            del sys.modules[name]
