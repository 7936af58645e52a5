from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, cast

import anyio
from fastapi import APIRouter, Depends, Header, Query
from sse_starlette import EventSourceResponse

from app.api.deps import RuntimeDep
from app.api.security import stream_rate_limited
from app.core.errors import ApiError
from app.events.bus import EventBus, Subscription, TooManySubscribers
from app.schemas.stream import STREAM_EVENT_SCHEMA

router = APIRouter(tags=["stream"])

KEEPALIVE = b": keep-alive\n\n"
SEND_TIMEOUT_SECONDS = 5.0

STREAM_DOC = """Server-Sent Events: every engine event, live.

Each event is sent as
```
id: <n>
event: <type>
data: <one-line JSON including "type">
```
Types: `engine_started`, `market`, `order_update`, `fill`, `order_state`, `account`, `error`.
Ids increase forever, also across restarts. To resume, pass `?last_id=<n>` or the standard
`Last-Event-ID` header: every event after `n` still in the replay buffer is sent first. With
neither, the whole buffer is replayed. `: keep-alive` comments are sent after 10 s of quiet.
A client that falls too far behind is disconnected; it resumes with its last id.
"""


def _resume_id(last_id: str | None, last_event_id: str | None) -> int | None:
    for value in (last_id, last_event_id):
        if value is not None and value.strip().lstrip("-").isdigit():
            return int(value.strip())
    return None


class _EndOnShutdown:
    """Given to sse-starlette as its shutdown event: when the server stops, `set()` ends the
    stream, so it closes with a final chunk instead of being cut. No task per client."""

    def __init__(self, subscription: Subscription) -> None:
        self._subscription = subscription

    def set(self) -> None:
        self._subscription.close()


async def _frames(
    bus: EventBus, subscription: Subscription, backlog: list[bytes], keepalive: float
) -> AsyncIterator[bytes]:
    try:
        if backlog:
            yield b"".join(backlog)
        while True:
            batch = await subscription.next_batch(keepalive)
            if batch is None:
                yield KEEPALIVE
                continue
            if batch:
                yield b"".join(event.frame for event in batch)
            if subscription.closed:
                return
    finally:
        bus.unsubscribe(subscription)


@router.get(
    "/api/stream",
    summary="Live event stream (SSE)",
    description=STREAM_DOC,
    response_class=EventSourceResponse,
    dependencies=[Depends(stream_rate_limited)],
    responses={
        200: {
            "description": "An endless `text/event-stream`.",
            "content": {
                "text/event-stream": {
                    "schema": STREAM_EVENT_SCHEMA,
                    "example": 'id: 2\nevent: market\ndata: {"type":"market","symbol":"BTCUSDT",'
                    '"ts_ns":1795490821174999712,"price":42000.5}\n\n',
                }
            },
        },
        503: {
            "description": "Too many stream clients (`too_many_streams`); retry later.",
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}
            },
        },
    },
)
async def stream_events(
    runtime: RuntimeDep,
    last_id: Annotated[str | None, Query(description="Resume after this event id.")] = None,
    last_event_id: Annotated[
        str | None, Header(alias="Last-Event-ID", description="Resume after this event id.")
    ] = None,
) -> EventSourceResponse:
    bus = runtime.bus
    try:
        subscription, backlog = bus.subscribe(
            _resume_id(last_id, last_event_id), runtime.settings.sse_queue_size
        )
    except TooManySubscribers as exc:
        raise ApiError(503, "too_many_streams", str(exc), headers={"Retry-After": "5"}) from exc
    frames = _frames(
        bus, subscription, [e.frame for e in backlog], runtime.settings.sse_keepalive_seconds
    )
    return EventSourceResponse(
        frames,
        # sse-starlette only calls set() on it; an anyio.Event would need a task to watch it.
        shutdown_event=cast(anyio.Event, _EndOnShutdown(subscription)),
        shutdown_grace_period=2.0,
        # A client that accepts nothing for this long is gone: free its slot and task.
        send_timeout=SEND_TIMEOUT_SECONDS,
        ping=0,
        sep="\n",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
