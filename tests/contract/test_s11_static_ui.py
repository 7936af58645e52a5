"""§11.1: the UI shell and the single-page-app fallback, with auth off and on. F17: the shell
and its files are public (the original asked for `read:config`, so `/` answered 401 JSON);
every `/api/*` path stays JSON. Files carry validators and answer `304` when unchanged."""

from __future__ import annotations

import pytest

from tests.contract.conftest import SECURITY_HEADERS, Api, assert_error

pytestmark = pytest.mark.asyncio(loop_scope="module")

HTML = "text/html; charset=utf-8"


async def test_root_and_client_side_routes_answer_the_shell_without_credentials(api: Api) -> None:
    shell = await api.client.get("/")
    assert shell.status_code == 200, shell.text
    assert shell.headers["content-type"] == HTML
    assert shell.headers["content-length"] == str(len(shell.content))
    assert b"<html" in shell.content.lower()
    for name, value in SECURITY_HEADERS.items():
        assert shell.headers.get(name) == value, name
    for path in ("/some/spa/route", "/orders", "/index.html"):
        routed = await api.client.get(path)
        assert (routed.status_code, routed.headers["content-type"]) == (200, HTML), path
        assert routed.content == shell.content, path


async def test_files_are_served_with_their_type_and_revalidate(api: Api) -> None:
    sheet = await api.client.get("/app.css")
    assert sheet.status_code == 200
    assert sheet.headers["content-type"] == "text/css; charset=utf-8"
    unchanged = await api.client.get(
        "/app.css", headers={"If-Modified-Since": sheet.headers["last-modified"]}
    )
    assert (unchanged.status_code, unchanged.content) == (304, b"")
    head = await api.client.head("/")
    assert (head.status_code, head.content) == (200, b"")


async def test_api_paths_are_never_the_shell(api: Api) -> None:
    missing = await api.call("GET", "/api/no-such-route")
    assert_error(missing, 404, "not_found")
    if api.auth_on:
        refused = await api.client.get("/api/config")  # the shell is public, the API is not
        assert_error(refused, 401, "authentication_required")
