"""§5: the event stream, public even with auth on, framed as the original frames it."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import pytest

from tests.api.conftest import RawResponse
from tests.contract.conftest import RATE_LIMIT_HEADERS, SECURITY_HEADERS, Api

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def asgi_call(app: Any, path: str, headers: dict[str, str] | None = None) -> RawResponse:
    """GET a stream in-process and hang up once the replayed events (the first body chunk)
    arrived, or half a second after the start when there is nothing to replay."""
    sent = False
    head: dict[str, Any] = {}
    chunks: list[bytes] = []
    started, replayed = asyncio.Event(), asyncio.Event()

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await started.wait()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(replayed.wait(), 0.5)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            head.update(message)
            started.set()
        elif message.get("body"):
            chunks.append(message["body"])
            replayed.set()

    raw_path, _, query = path.partition("?")
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
        "scheme": "http", "path": raw_path, "raw_path": raw_path.encode(),
        "query_string": query.encode(), "root_path": "", "client": ("127.0.0.1", 40_000),
        "server": ("gateway", 80), "state": {},
        "headers": [(b"host", b"gateway")]
        + [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
    }  # fmt: skip
    await asyncio.wait_for(app(scope, receive, send), 10)
    return RawResponse(
        status=int(head["status"]),
        headers=[(k.decode(), v.decode()) for k, v in head["headers"]],
        body=b"".join(chunks),
    )


async def test_stream_is_public_and_framed(api: Api) -> None:
    answer = await asgi_call(api.gateway.app, "/api/stream")  # no credentials, even with auth on
    assert answer.status == 200
    assert answer.header_values("content-type")[0].startswith("text/event-stream")
    assert "no-cache" in answer.header_values("cache-control")
    for name, value in SECURITY_HEADERS.items():
        assert answer.header_values(name) == [value]
    assert not any(answer.header_values(name) for name in RATE_LIMIT_HEADERS)  # §3

    frames = [block for block in answer.body.decode().split("\n\n") if block.startswith("id:")]
    assert frames, answer.body
    ids = []
    for frame in frames:
        lines = frame.split("\n")
        assert [line.split(":", 1)[0] for line in lines] == ["id", "event", "data"]
        event = lines[1].removeprefix("event: ")
        data = json.loads(lines[2].removeprefix("data: "))
        assert data["type"] == event  # the payload keeps its "type" (K6)
        ids.append(int(lines[0].removeprefix("id: ")))
    assert ids == sorted(ids)
    assert json.loads(frames[0].split("\n")[2].removeprefix("data: "))["type"] == "engine_started"

    resumed = await asgi_call(api.gateway.app, f"/api/stream?last_id={ids[0]}")
    assert f"id: {ids[0]}\n" not in resumed.body.decode()
    # F2: the standard Last-Event-ID header resumes too.
    by_header = await asgi_call(
        api.gateway.app, "/api/stream", headers={"Last-Event-ID": str(ids[0])}
    )
    assert f"id: {ids[0]}\n" not in by_header.body.decode()
