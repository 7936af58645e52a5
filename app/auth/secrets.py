"""Server secrets: from the environment, else generated once and kept in the data dir (0600)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def load_or_create(path: Path, configured: str) -> str:
    """`configured` if set; else the secret stored at `path`, created on first use."""
    if configured:
        return configured
    try:
        existing = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        existing = ""
    if existing:
        return existing
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_hex(32)
    # O_EXCL: two processes starting at once must not both write different secrets.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text(encoding="utf-8").strip()
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(value + "\n")
    return value
