"""GET /api/stream against the real server: framing, resume, keep-alive, client cap."""

from __future__ import annotations

import asyncio
import json
import time

from tests.integration.conftest import StartGateway
from tests.integration.sse_client import KEEPALIVE_BLOCK, SseEvent, SseStream, parse_event_block


def balances_of(data: dict[str, object]) -> dict[str, tuple[float, float]]:
    balances = data["balances"]
    assert isinstance(balances, list)
    return {b["asset"]: (b["free"], b["locked"]) for b in balances}


async def read_events(stream: SseStream, count: int, timeout: float = 5.0) -> list[SseEvent]:
    """`count` blocks, each of which must be an event (no comment in between)."""
    events = []
    for _ in range(count):
        events.append(parse_event_block(await stream.next_block(timeout)))
    return events


async def test_stream_framing_and_first_events_of_a_fresh_server(
    start_gateway: StartGateway,
) -> None:
    server = await start_gateway(env={"VELOZ_SIM_TICK_MS": "20"})
    stream = await SseStream.open(server.port)
    try:
        assert stream.status == 200
        content_type = stream.headers.get("content-type", "")
        assert content_type.split(";")[0].strip() == "text/event-stream", content_type
        cache_control = [v for n, v in stream.header_list if n == "cache-control"]
        assert any("no-cache" in value for value in cache_control), cache_control

        events = await read_events(stream, 8)
    finally:
        await stream.close()

    # Ids start at 1 on a fresh server and increase by exactly 1.
    assert [e.id for e in events] == list(range(1, 9))
    for event in events:
        assert event.data["type"] == event.event, event.raw
        # `data:` is one line of JSON that round-trips (no embedded newline, nothing after).
        line = event.raw.split(b"\n")[2]
        assert json.loads(line.removeprefix(b"data: ")) == event.data

    started, account, *markets = events
    assert started.event == "engine_started"
    assert set(started.data) == {"type", "version"}
    assert isinstance(started.data["version"], str)
    assert started.data["version"]

    assert account.event == "account"
    assert isinstance(account.data["ts_ns"], int)
    assert balances_of(account.data) == {"USDT": (100000, 0), "BTC": (0, 0)}

    previous_ts = 0
    for market in markets:
        assert market.event == "market"
        assert set(market.data) == {"type", "symbol", "ts_ns", "price"}
        assert market.data["symbol"] == "BTCUSDT"
        price = market.data["price"]
        assert isinstance(price, float | int)
        assert abs(price - 42000) < 42000 * 0.02, price
        ts_ns = market.data["ts_ns"]
        assert isinstance(ts_ns, int)
        assert ts_ns > 1_600_000_000 * 10**9
        assert ts_ns >= previous_ts
        previous_ts = ts_ns


async def test_stream_resume_by_query_header_or_full_replay(start_gateway: StartGateway) -> None:
    server = await start_gateway(env={"VELOZ_SIM_TICK_MS": "20"})
    first = await SseStream.open(server.port)
    try:
        seen = await first.events_until(lambda e: e.id >= 12, timeout=10)
    finally:
        await first.close()
    latest = seen[-1].id

    async def first_ids(path: str, headers: dict[str, str] | None = None) -> list[int]:
        stream = await SseStream.open(server.port, path, headers)
        try:
            assert stream.status == 200
            events = await read_events(stream, 4)
        finally:
            await stream.close()
        ids = [e.id for e in events]
        assert ids == list(range(ids[0], ids[0] + 4)), ids
        return ids

    # ?last_id=N: events after N, starting right after it.
    assert (await first_ids("/api/stream?last_id=5"))[0] == 6
    # Last-Event-ID: N (what a browser's EventSource sends when it reconnects), no query.
    assert (await first_ids("/api/stream", {"Last-Event-ID": "5"}))[0] == 6
    # Resuming from the newest id seen: only newer events, the next one first.
    assert (await first_ids(f"/api/stream?last_id={latest}"))[0] == latest + 1
    assert (await first_ids("/api/stream", {"Last-Event-ID": str(latest)}))[0] == latest + 1
    # Neither: the whole replay buffer, from id 1 on a fresh server.
    assert (await first_ids("/api/stream"))[0] == 1
    # A non-integer last_id also replays the whole buffer.
    assert (await first_ids("/api/stream?last_id=abc"))[0] == 1


async def test_stream_sends_keepalive_comment_when_idle(start_gateway: StartGateway) -> None:
    server = await start_gateway(
        env={"VELOZ_SIM_TICK_MS": "60000", "VELOZ_SSE_KEEPALIVE_SECONDS": "0.5"}
    )
    stream = await SseStream.open(server.port)
    try:
        assert stream.status == 200
        events = await read_events(stream, 2)
        assert [e.event for e in events] == ["engine_started", "account"]
        started = time.monotonic()
        # Nothing happens in the market for a minute: the next blocks are comments only.
        assert await stream.next_block(timeout=3) == KEEPALIVE_BLOCK
        first_after = time.monotonic() - started
        assert await stream.next_block(timeout=3) == KEEPALIVE_BLOCK
        second_after = time.monotonic() - started
    finally:
        await stream.close()
    assert first_after < 2.0, first_after
    assert 0.25 < second_after - first_after < 2.0, (first_after, second_after)


async def test_stream_client_cap_answers_503_then_frees_the_slot(
    start_gateway: StartGateway,
) -> None:
    server = await start_gateway(env={"VELOZ_SSE_MAX_CLIENTS": "2"})
    one = await SseStream.open(server.port)
    two = await SseStream.open(server.port)
    try:
        for stream in (one, two):
            assert stream.status == 200
            assert (await stream.next_event()).id == 1

        third = await SseStream.open(server.port)
        try:
            assert third.status == 503
            assert third.headers.get("content-type", "").startswith("application/json")
            retry_after = third.headers.get("retry-after")
            assert retry_after is not None
            assert retry_after.isdigit()
            assert int(retry_after) > 0
            body = await third.read_body_json()
        finally:
            await third.close()
        assert body["error"] == "too_many_streams"
        assert set(body) <= {"error", "message", "details"}
        assert isinstance(body.get("message"), str)

        await one.close()
        # The server notices the disconnect and frees the slot: a new client gets in.
        deadline = time.monotonic() + 5
        while True:
            retry = await SseStream.open(server.port, "/api/stream?last_id=0")
            if retry.status == 200:
                break
            assert retry.status == 503
            await retry.close()
            assert time.monotonic() < deadline, "the slot of a closed client was never freed"
            await asyncio.sleep(0.05)
        try:
            assert (await retry.next_event()).id == 1
        finally:
            await retry.close()
        # The client that stayed is unaffected.
        await two.events_until(lambda e: e.event == "market", timeout=5)
    finally:
        await one.close()
        await two.close()
