"""Static files of the web UI, public (F17), with the single-page-app fallback (§11.1).

Installed as the router's default, so it only ever sees requests no route matched. A GET or
HEAD outside the API and documentation paths gets the file it names, or `index.html` when
there is no such file (client-side routes). Everything else keeps the JSON 404.
"""

from __future__ import annotations

import asyncio
import hashlib
import mimetypes
import os
import stat
from dataclasses import dataclass
from email.utils import formatdate, parsedate_to_datetime
from pathlib import Path
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from app.core.jsonutil import dumps_bytes

# Never served from the static directory, even when no route matches: these stay JSON 404s.
RESERVED = (
    "/api", "/ws", "/metrics", "/health", "/docs", "/docs-assets", "/redoc", "/openapi.json",
)  # fmt: skip

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".map": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".webp": "image/webp",
    ".woff2": "font/woff2",
    ".txt": "text/plain; charset=utf-8",
}
# No build step means no content-hashed names: browsers revalidate every file (ETag → 304).
CACHE_CONTROL = b"no-cache"
NOT_FOUND = dumps_bytes({"error": "not_found"})
# Files up to this size are kept in memory after the first read (the dashboard's are ~10 KiB).
CACHED_FILE_MAX = 512 * 1024
CACHED_FILES_MAX = 256


def is_reserved(path: str) -> bool:
    return any(path == prefix or path.startswith(prefix + "/") for prefix in RESERVED)


def content_type(path: Path) -> str:
    known = CONTENT_TYPES.get(path.suffix.lower())
    if known:
        return known
    guessed, _ = mimetypes.guess_type(path.name)
    return guessed or "application/octet-stream"


class Refused(Exception):
    """The path tries to leave the static directory, or names a hidden file."""


@dataclass(frozen=True, slots=True)
class StaticFile:
    path: Path
    body: bytes
    etag: str
    last_modified: str
    mtime: int


class StaticSite:
    """Serves one directory; `index.html` in it is the single-page app's shell.

    Resolving a path (symbolic links included) costs ~100 µs, so a path found to name a file
    is remembered; each request then costs one `stat`. A file that changed on disk is checked
    again before it is read.
    """

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self._files: dict[str, Path] = {}  # URL path -> the file it names
        self._cache: dict[Path, tuple[int, int, StaticFile]] = {}

    def resolve(self, url_path: str) -> Path | None:
        """The file a decoded URL path names, None when there is none; Refused on traversal."""
        known = self._files.get(url_path)
        if known is not None:
            return known
        segments = [segment for segment in url_path.split("/") if segment]
        for segment in segments:
            if segment.startswith(".") or "\\" in segment or "\x00" in segment:
                raise Refused(url_path)
        # Without `..` the path stays inside lexically; only a link can lead out, and only a
        # file that would be served needs that (costlier) check.
        candidate = self.root.joinpath(*segments)
        try:
            if not stat.S_ISREG(candidate.stat().st_mode):
                return None
        except OSError:
            return None
        real = self._inside(candidate)
        if real is None:  # a symbolic link pointing outside
            raise Refused(url_path)
        _remember(self._files, url_path, real)
        return real

    def _inside(self, path: Path) -> Path | None:
        real = path.resolve()
        return real if real.is_relative_to(self.root) else None

    def _cached(self, path: Path) -> tuple[StaticFile | None, os.stat_result | None]:
        """(content, stat): the content while unchanged on disk; no stat once it is gone or
        leads outside the directory (checked again whenever the file changed)."""
        try:
            info = path.stat()
        except OSError:
            return None, None
        cached = self._cache.get(path)
        if cached is not None and cached[:2] == (info.st_mtime_ns, info.st_size):
            return cached[2], info
        if self._inside(path) != path:  # changed on disk: it may be a link now
            return None, None
        return None, info

    async def load(self, path: Path) -> StaticFile | None:
        """The file's content, or None when it is gone or now leads outside the directory."""
        cached, info = self._cached(path)
        if cached is not None or info is None:
            return cached
        try:
            body = await asyncio.to_thread(path.read_bytes)
        except OSError:
            return None
        loaded = StaticFile(
            path=path,
            body=body,
            etag=f'"{hashlib.blake2b(body, digest_size=12).hexdigest()}"',
            last_modified=formatdate(info.st_mtime, usegmt=True),
            mtime=int(info.st_mtime),
        )
        if info.st_size <= CACHED_FILE_MAX:
            _remember(self._cache, path, (info.st_mtime_ns, info.st_size, loaded))
        return loaded

    async def find(self, url_path: str) -> StaticFile | None:
        """The file for a URL path, or the shell (index.html) when it names none."""
        found = self.resolve(url_path)
        if found is not None:
            loaded = await self.load(found)
            if loaded is not None:
                return loaded
            self._files.pop(url_path, None)
        shell = self.resolve("/index.html")
        return await self.load(shell) if shell is not None else None

    def middleware(self, not_found: ASGIApp) -> ASGIApp:
        """The router's default: static files and the fallback, else `not_found`."""

        async def serve(scope: Scope, receive: Receive, send: Send) -> None:
            path: str = scope.get("path", "")
            if (
                scope["type"] != "http"
                or scope["method"] not in ("GET", "HEAD")
                or is_reserved(path)
            ):
                await not_found(scope, receive, send)
                return
            try:
                file = await self.find(path)
            except Refused:
                await _send(send, 404, [(b"content-type", b"application/json")], NOT_FOUND)
                return
            if file is None:  # an operator's directory lost its index.html
                await not_found(scope, receive, send)
                return
            await self._send_file(scope, send, file)

        return serve

    async def _send_file(self, scope: Scope, send: Send, file: StaticFile) -> None:
        headers = [
            (b"cache-control", CACHE_CONTROL),
            (b"etag", file.etag.encode()),
            (b"last-modified", file.last_modified.encode()),
        ]
        if _not_modified(scope, file):
            await _send(send, 304, headers, b"", length=None)
            return
        headers.append((b"content-type", content_type(file.path).encode()))
        body = b"" if scope["method"] == "HEAD" else file.body
        await _send(send, 200, headers, body, length=len(file.body))


def _remember(table: dict[Any, Any], key: Any, value: Any) -> None:
    """Insert into a bounded table, dropping the oldest entry when it is full."""
    if key not in table and len(table) >= CACHED_FILES_MAX:
        table.pop(next(iter(table)))
    table[key] = value


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _not_modified(scope: Scope, file: StaticFile) -> bool:
    if_none_match = _header(scope, b"if-none-match")
    if if_none_match is not None:
        tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
        return file.etag in tags or "*" in tags
    if_modified_since = _header(scope, b"if-modified-since")
    if if_modified_since:
        try:
            return file.mtime <= int(parsedate_to_datetime(if_modified_since).timestamp())
        except (TypeError, ValueError):
            return False
    return False


async def _send(
    send: Send,
    status: int,
    headers: list[tuple[bytes, bytes]],
    body: bytes,
    length: int | None = -1,
) -> None:
    """`length` -1: the body's; None: no Content-Length (304)."""
    if length is not None:
        size = len(body) if length < 0 else length
        headers = [*headers, (b"content-length", str(size).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
