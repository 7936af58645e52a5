"""The web UI: the built-in dashboard's files and the public static file server."""

from __future__ import annotations

from pathlib import Path

BUILTIN_UI_DIR = Path(__file__).resolve().parent / "ui"
