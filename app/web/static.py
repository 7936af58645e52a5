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
from dataclasses import dataclass
from email.utils import formatdate, parsedate_to_datetime
from pathlib import Path

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
    """Serves one directory; `index.html` in it is the single-page app's shell."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        index = (self.root / "index.html").resolve()
        self._index = index if index.is_relative_to(self.root) else None
        self._cache: dict[Path, tuple[int, int, StaticFile]] = {}

    def resolve(self, url_path: str) -> Path | None:
        """The file a decoded URL path names, None when there is none; Refused on traversal."""
        segments = [segment for segment in url_path.split("/") if segment]
        for segment in segments:
            if segment.startswith(".") or "\\" in segment or "\x00" in segment:
                raise Refused(url_path)
        candidate = self.root.joinpath(*segments).resolve()
        if not candidate.is_relative_to(self.root):  # a symbolic link pointing outside
            raise Refused(url_path)
        return candidate if candidate.is_file() else None

    def _shell(self) -> Path | None:
        """index.html, for every path that names no file (client-side routes)."""
        return self._index if self._index is not None and self._index.is_file() else None

    def cached(self, path: Path) -> tuple[StaticFile | None, os.stat_result]:
        """The file's stat, and its cached content while it is unchanged (a µs-cheap check)."""
        stat = path.stat()
        cached = self._cache.get(path)
        if cached is not None and cached[:2] == (stat.st_mtime_ns, stat.st_size):
            return cached[2], stat
        return None, stat

    async def load(self, path: Path) -> StaticFile:
        found, stat = self.cached(path)
        if found is not None:
            return found
        body = await asyncio.to_thread(path.read_bytes)
        digest = hashlib.blake2b(body, digest_size=12).hexdigest()
        loaded = StaticFile(
            path=path,
            body=body,
            etag=f'"{digest}"',
            last_modified=formatdate(stat.st_mtime, usegmt=True),
            mtime=int(stat.st_mtime),
        )
        if stat.st_size <= CACHED_FILE_MAX:
            if len(self._cache) >= CACHED_FILES_MAX:
                self._cache.pop(next(iter(self._cache)))
            self._cache[path] = (stat.st_mtime_ns, stat.st_size, loaded)
        return loaded

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
                found = self.resolve(path) or self._shell()
            except Refused:
                await _send(send, 404, [(b"content-type", b"application/json")], NOT_FOUND)
                return
            if found is None:  # an operator's directory lost its index.html
                await not_found(scope, receive, send)
                return
            await self._send_file(scope, send, await self.load(found))

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
