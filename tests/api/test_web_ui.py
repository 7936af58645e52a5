"""The web UI's files over HTTP: types and caching, the single-page-app fallback (§11.1),
path traversal refused, VELOZ_STATIC_DIR, and public access with auth on (F17)."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import uvicorn
from pydantic import ValidationError

from app.core.config import Settings, describe_settings_error
from app.main import create_app
from app.web import BUILTIN_UI_DIR
from tests.api.conftest import SettingsFactory
from tests.conftest import Gateway, running_gateway

SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "content-security-policy": (
        "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'"
    ),
}
JS = "text/javascript; charset=utf-8"
HTML = "text/html; charset=utf-8"
NOT_FOUND = {"error": "not_found"}
SECRET = "top-secret-do-not-serve"


def site(root: Path) -> Path:
    """An operator's build: index, an asset, a hidden file, a link out; a secret beside it."""
    (root / "site" / "assets").mkdir(parents=True)
    (root / "site" / "index.html").write_text("<!doctype html><title>operator build</title>")
    (root / "site" / "assets" / "app.js").write_text("console.log('operator');\n")
    (root / "site" / ".env").write_text(SECRET)
    (root / "secret.txt").write_text(SECRET)
    (root / "site" / "leak.txt").symlink_to(root / "secret.txt")
    return root / "site"


# --- the built-in dashboard ------------------------------------------------------------------


async def test_shell_and_assets_have_their_types_and_revalidate(gateway: Gateway) -> None:
    index = await gateway.client.get("/")
    assert index.status_code == 200
    assert index.headers["content-type"] == HTML
    assert index.headers["cache-control"] == "no-cache"
    assert index.headers["content-length"] == str(len(index.content))
    assert re.fullmatch(r'"[0-9a-f]{24}"', index.headers["etag"])
    assert index.headers["last-modified"].endswith(" GMT")
    for name, value in SECURITY_HEADERS.items():
        assert index.headers[name] == value, name
    assert '<script type="module" src="/js/main.js"></script>' in index.text
    assert '<link rel="stylesheet" href="/app.css">' in index.text

    for path, content_type in (
        ("/index.html", HTML),
        ("/app.css", "text/css; charset=utf-8"),
        ("/favicon.svg", "image/svg+xml"),
        ("/js/main.js", JS),
    ):
        response = await gateway.client.get(path)
        assert response.status_code == 200, path
        assert response.headers["content-type"] == content_type, path
        assert response.headers["cache-control"] == "no-cache", path


async def test_every_module_the_dashboard_imports_is_served(gateway: Gateway) -> None:
    modules = sorted(path.name for path in (BUILTIN_UI_DIR / "js").glob("*.js"))
    imported: set[str] = set()
    for name in modules:
        text = (await gateway.client.get(f"/js/{name}")).text
        imported.update(re.findall(r'from "\./([\w-]+\.js)"', text))
    assert imported, "no imports found"
    assert imported <= set(modules), imported - set(modules)
    for name in modules:
        response = await gateway.client.get(f"/js/{name}")
        assert response.status_code == 200, name
        assert response.headers["content-type"] == JS, name


async def test_conditional_and_head_requests(gateway: Gateway) -> None:
    first = await gateway.client.get("/app.css")
    etag, modified = first.headers["etag"], first.headers["last-modified"]

    same = await gateway.client.get("/app.css", headers={"If-None-Match": etag})
    assert same.status_code == 304
    assert same.content == b""
    assert same.headers["etag"] == etag
    assert "content-type" not in same.headers
    weak = await gateway.client.get("/app.css", headers={"If-None-Match": f'"x", W/{etag}'})
    assert weak.status_code == 304
    changed = await gateway.client.get("/app.css", headers={"If-None-Match": '"other"'})
    assert changed.status_code == 200
    assert changed.content == first.content
    since = await gateway.client.get("/app.css", headers={"If-Modified-Since": modified})
    assert since.status_code == 304
    before = await gateway.client.get(
        "/app.css", headers={"If-Modified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"}
    )
    assert before.status_code == 200

    head = await gateway.client.head("/js/main.js")
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-type"] == JS
    assert head.headers["content-length"] == str(
        len((await gateway.client.get("/js/main.js")).content)
    )


async def test_client_side_routes_get_the_shell(gateway: Gateway) -> None:
    shell = (await gateway.client.get("/")).content
    for path in ("/orders", "/orders/c-1", "/js/", "/js", "/missing.js", "/a/b/c.css", "/apix"):
        response = await gateway.client.get(path)
        assert response.status_code == 200, path
        assert response.headers["content-type"] == HTML, path
        assert response.content == shell, path


async def test_api_and_docs_paths_are_never_the_shell(gateway: Gateway) -> None:
    for path in (
        "/api", "/api/", "/api/nope", "/api/orders/1", "/docs/nope", "/docs-assets/nope.js",
        "/redoc/x", "/metrics/x", "/health/x", "/openapi.json/x", "/ws", "/ws/stream",
    ):  # fmt: skip
        response = await gateway.client.get(path)
        assert response.status_code == 404, path
        assert response.json() == NOT_FOUND, path
        assert response.headers["content-type"] == "application/json", path
    for path, content_type in (
        ("/docs", HTML),
        ("/redoc", HTML),
        ("/openapi.json", "application/json"),
        ("/health", "application/json"),
        ("/metrics", "text/plain; version=1.0.0; charset=utf-8"),
    ):
        response = await gateway.client.get(path)
        assert response.status_code == 200, path
        assert response.headers["content-type"] == content_type, path
    # Only GET and HEAD reach the files.
    for method in ("POST", "DELETE"):
        response = await gateway.client.request(method, "/index.html")
        assert response.status_code == 404, method
        assert response.json() == NOT_FOUND, method


# --- path traversal, over a real socket so nothing normalises the path first -------------------


@contextlib.asynccontextmanager
async def served(settings: Settings) -> AsyncIterator[int]:
    config = uvicorn.Config(
        create_app(settings), host="127.0.0.1", port=0, log_config=None, log_level="warning"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(500):
            if server.started or task.done():
                break
            await asyncio.sleep(0.01)
        assert server.started, "uvicorn did not start"
        yield int(server.servers[0].sockets[0].getsockname()[1])
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


async def raw_get(port: int, target: str) -> tuple[int, bytes]:
    """GET with the request target sent byte for byte."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    answer = await reader.read()
    writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


TRAVERSALS = (
    "/../secret.txt",
    "/assets/../../secret.txt",
    "/%2e%2e/secret.txt",
    "/%2E%2E/secret.txt",
    "/assets/%2e%2e/%2e%2e/secret.txt",
    "/..%2fsecret.txt",
    "/%2e%2e%2fsecret.txt",
    "/assets/..%2F..%2Fsecret.txt",
    "/..%5csecret.txt",
    "/..\\secret.txt",
    "/.env",
    "/%2eenv",
    "/leak.txt",
    "/assets/app.js%00.html",
)


async def test_traversal_is_refused(make_settings: SettingsFactory, tmp_path: Path) -> None:
    settings = make_settings(static_dir=site(tmp_path))
    async with served(settings) as port:
        status, body = await raw_get(port, "/assets/app.js")
        assert status == 200
        assert body == b"console.log('operator');\n"
        for target in TRAVERSALS:
            status, body = await raw_get(port, target)
            assert status == 404, target
            assert body == b'{"error":"not_found"}', target
            assert SECRET.encode() not in body, target


async def test_builtin_ui_cannot_reach_the_package(make_settings: SettingsFactory) -> None:
    async with served(make_settings()) as port:
        for target in ("/../static.py", "/%2e%2e/static.py", "/js/%2e%2e%2f..%2f__init__.py"):
            status, body = await raw_get(port, target)
            assert status == 404, target
            assert body == b'{"error":"not_found"}', target


# --- VELOZ_STATIC_DIR ------------------------------------------------------------------------


async def test_static_dir_replaces_the_builtin_ui(
    make_settings: SettingsFactory, tmp_path: Path
) -> None:
    async with running_gateway(make_settings(static_dir=site(tmp_path))) as gateway:
        operator_index = b"<!doctype html><title>operator build</title>"
        for path in ("/", "/index.html", "/deep/client/route", "/js/main.js"):
            response = await gateway.client.get(path)
            assert response.status_code == 200, path
            assert response.headers["content-type"] == HTML, path
            assert response.content == operator_index, path
        asset = await gateway.client.get("/assets/app.js")
        assert asset.headers["content-type"] == JS
        assert asset.text == "console.log('operator');\n"
        # A file replaced on disk (a new build) is served at once, with a new ETag.
        (tmp_path / "site" / "assets" / "app.js").write_text("console.log('build 2');\n")
        again = await gateway.client.get(
            "/assets/app.js", headers={"If-None-Match": asset.headers["etag"]}
        )
        assert again.status_code == 200
        assert again.text == "console.log('build 2');\n"
        assert again.headers["etag"] != asset.headers["etag"]
        unknown = await gateway.client.get("/api/nope")
        assert unknown.status_code == 404
        assert unknown.json() == NOT_FOUND


def test_static_dir_must_hold_an_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "empty").mkdir()
    for value in (str(tmp_path / "empty"), str(tmp_path / "absent")):
        monkeypatch.setenv("VELOZ_STATIC_DIR", value)
        with pytest.raises(ValidationError) as caught:
            Settings()
        assert describe_settings_error(caught.value) == (
            f"invalid configuration: VELOZ_STATIC_DIR: {value!r} is not a directory holding "
            "index.html"
        )
    monkeypatch.setenv("VELOZ_STATIC_DIR", "")
    assert Settings().static_dir is None


# --- public with auth on (F17) ---------------------------------------------------------------


async def test_ui_is_public_when_auth_is_on(auth_settings: SettingsFactory) -> None:
    async with running_gateway(auth_settings(rate_limit_capacity=2)) as gateway:
        # More requests than the rate limit allows: the UI's files are not counted.
        for path in ("/", "/app.css", "/js/main.js", "/js/api.js", "/favicon.svg", "/trade"):
            response = await gateway.client.get(path)
            assert response.status_code == 200, path
            assert "x-ratelimit-limit" not in response.headers, path
        refused = await gateway.client.get("/api/account")
        assert refused.status_code == 401
        assert refused.json() == {"error": "authentication_required"}
        unknown = await gateway.client.get("/api/nope")
        assert unknown.status_code == 404
        assert unknown.json() == NOT_FOUND


async def test_files_changed_on_disk_are_checked_again(
    make_settings: SettingsFactory, tmp_path: Path
) -> None:
    root = site(tmp_path)
    (root / "gone.js").write_text("console.log('soon gone');\n")
    (root / "swapped.js").write_text("console.log('soon a link');\n")
    operator_index = b"<!doctype html><title>operator build</title>"
    async with running_gateway(make_settings(static_dir=root)) as gateway:
        for name in ("gone.js", "swapped.js"):
            assert (await gateway.client.get(f"/{name}")).status_code == 200
        (root / "gone.js").unlink()
        (root / "swapped.js").unlink()
        (root / "swapped.js").symlink_to(tmp_path / "secret.txt")
        for name in ("gone.js", "swapped.js"):
            response = await gateway.client.get(f"/{name}")
            assert response.status_code == 200, name
            assert response.content == operator_index, name
        refused = await gateway.client.get("/swapped.js")  # now known to lead outside
        assert refused.status_code == 404
        assert refused.json() == NOT_FOUND
