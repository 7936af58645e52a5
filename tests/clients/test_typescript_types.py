"""TypeScript types generated from openapi/openapi.json (openapi-typescript), and a small typed
client (clients/typescript/src/usage.ts) that must type-check against them with `tsc`.

The tools come from clients/typescript/package-lock.json through `npm ci` (the npm cache serves
them offline once fetched); the generated file lives in a temporary directory.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.clients.conftest import SCHEMA
from tests.integration.conftest import PROJECT_ROOT

PROJECT = PROJECT_ROOT / "clients" / "typescript"
BIN = PROJECT / "node_modules" / ".bin"


def _run(args: list[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )


def _installed_versions(lock: Path) -> dict[str, str]:
    packages = json.loads(lock.read_text(encoding="utf-8")).get("packages", {})
    return {path: entry.get("version", "") for path, entry in packages.items() if path}


def _ensure_tools() -> None:
    """`npm ci` unless node_modules already holds exactly what the lock file pins."""
    installed = PROJECT / "node_modules" / ".package-lock.json"
    pinned = _installed_versions(PROJECT / "package-lock.json")
    if installed.exists() and _installed_versions(installed) == pinned:
        return
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail("npm is not installed: install Node.js 18.17 or newer with npm")
    done = _run([npm, "ci", "--prefer-offline", "--no-audit", "--no-fund"], PROJECT)
    assert done.returncode == 0, done.stdout + done.stderr


def test_generated_typescript_types_check_a_typed_client(tmp_path: Path) -> None:
    _ensure_tools()
    types = tmp_path / "api.d.ts"
    generated = _run(
        [str(BIN / "openapi-typescript"), str(SCHEMA), "--default-non-nullable", "false",
         "--output", str(types)],
        PROJECT,
    )  # fmt: skip
    assert generated.returncode == 0, generated.stdout + generated.stderr
    assert "export interface paths" in types.read_text(encoding="utf-8")

    config = json.loads((PROJECT / "tsconfig.json").read_text(encoding="utf-8"))
    config["compilerOptions"]["baseUrl"] = str(PROJECT)
    config["compilerOptions"]["paths"] = {"veloz-api": [str(types)]}
    config["files"] = [str(PROJECT / "src" / "usage.ts")]
    (tmp_path / "tsconfig.json").write_text(json.dumps(config), encoding="utf-8")
    checked = _run([str(BIN / "tsc"), "-p", str(tmp_path / "tsconfig.json")], PROJECT)
    assert checked.returncode == 0, checked.stdout + checked.stderr
