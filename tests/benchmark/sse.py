"""SSE fan-out: N raw-socket clients on /api/stream, and how long one event takes to reach all.

The simulator stamps every `market` event with `ts_ns` (UTC epoch ns, the same machine clock as
ours), so the delivery time of an event to a client is its receive time minus `ts_ns`. Clients
only timestamp and keep the bytes while the measurement runs; parsing happens afterwards, so one
client's parsing never delays the next client's timestamp.
"""

from __future__ import annotations

import asyncio
import bisect
import itertools
import json
import statistics
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

from tests.benchmark.stats import percentile, round_ms

CONNECT_CONCURRENCY = 100  # parallel connects, well inside the server's listen backlog
HEADERS_TIMEOUT = 30.0
SETTLE_SECONDS = 0.5  # after the last measured event, for the slowest clients to get it too
POLL_SECONDS = 0.05


@dataclass(frozen=True, slots=True)
class ReceivedEvent:
    id: int | None
    type: str
    data: str
    received_ns: int  # when the frame's last byte arrived (time.time_ns)


class SseClient(asyncio.Protocol):
    """One stream client: sends the request, then only records (arrival time, bytes)."""

    def __init__(self, request: bytes, loop: asyncio.AbstractEventLoop) -> None:
        self._request = request
        self._head = b""
        self.transport: asyncio.Transport | None = None
        self.status: asyncio.Future[int] = loop.create_future()
        self.chunked = False
        self.arrivals: list[tuple[int, bytes]] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream socket's transport; uvloop's does not subclass asyncio.Transport.
        self.transport = cast(asyncio.Transport, transport)
        self.transport.write(self._request)

    def data_received(self, data: bytes) -> None:
        now = time.time_ns()  # first thing: the receive time is what is being measured
        if self.status.done():
            self.arrivals.append((now, data))
            return
        self._head += data
        end = self._head.find(b"\r\n\r\n")
        if end < 0:
            return
        head, rest = self._head[:end], self._head[end + 4 :]
        self._head = b""
        self.chunked = b"\r\ntransfer-encoding: chunked" in head.lower()
        if rest:
            self.arrivals.append((now, rest))
        try:
            self.status.set_result(int(head[9:12]))
        except ValueError:
            self.status.set_exception(ConnectionError(f"not an HTTP response: {head[:40]!r}"))

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.status.done():
            self.status.set_exception(exc or ConnectionError("closed before the headers"))

    def events(self) -> list[ReceivedEvent]:
        return decode_stream(self.arrivals, self.chunked)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


def decode_stream(arrivals: list[tuple[int, bytes]], chunked: bool) -> list[ReceivedEvent]:
    """The complete SSE frames in a recorded body, each with the arrival time of its end."""
    raw = b"".join(part for _, part in arrivals)
    raw_ends = list(itertools.accumulate(len(part) for _, part in arrivals))
    if chunked:
        body, decoded_starts, raw_starts = _dechunk(raw)
    else:
        body, decoded_starts, raw_starts = raw, [0], [0]

    def arrival_ns(decoded_offset: int) -> int:
        segment = bisect.bisect_right(decoded_starts, decoded_offset) - 1
        raw_offset = raw_starts[segment] + decoded_offset - decoded_starts[segment]
        return arrivals[bisect.bisect_right(raw_ends, raw_offset)][0]

    events: list[ReceivedEvent] = []
    pos = 0
    while (end := body.find(b"\n\n", pos)) >= 0:
        event = _parse_frame(body[pos:end], arrival_ns(end + 1))
        if event is not None:
            events.append(event)
        pos = end + 2
    return events


def _dechunk(raw: bytes) -> tuple[bytes, list[int], list[int]]:
    """Chunked transfer coding removed, plus where each chunk's data sits in decoded and raw."""
    parts: list[bytes] = []
    decoded_starts: list[int] = []
    raw_starts: list[int] = []
    pos = decoded = 0
    while (line_end := raw.find(b"\r\n", pos)) >= 0:
        size = int(raw[pos:line_end].split(b";", 1)[0], 16)
        if size == 0:
            break
        start = line_end + 2
        data = raw[start : start + size]  # shorter when the chunk is still arriving
        decoded_starts.append(decoded)
        raw_starts.append(start)
        parts.append(data)
        decoded += len(data)
        if len(data) < size:
            break
        pos = start + size + 2
    if not parts:
        return b"", [0], [0]
    return b"".join(parts), decoded_starts, raw_starts


def _parse_frame(block: bytes, received_ns: int) -> ReceivedEvent | None:
    event_id: int | None = None
    kind = "message"
    data: list[str] = []
    for line in block.decode().split("\n"):
        if not line or line.startswith(":"):  # comments: the server's keep-alives
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "id" and value.isdigit():
            event_id = int(value)
        elif name == "event":
            kind = value
        elif name == "data":
            data.append(value)
    if event_id is None and not data:
        return None
    return ReceivedEvent(event_id, kind, "\n".join(data), received_ns)


@dataclass(frozen=True, slots=True)
class EventDelivery:
    """One market event: delivery times (receive - ts_ns) over the clients that got it."""

    event_id: int
    ts_ns: int
    all_clients_ms: float  # the slowest client: the time to reach all of them
    median_ms: float
    missing: int  # connected clients that never received it

    def as_dict(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "all_clients_ms": round_ms(self.all_clients_ms),
            "median_ms": round_ms(self.median_ms),
            "missing": self.missing,
        }


@dataclass
class FanoutResult:
    clients: int
    connected: int = 0
    failure_kinds: Counter[str] = field(default_factory=Counter)
    connect_seconds: float = 0.0
    start_last_id: int | None = None
    deliveries: list[EventDelivery] = field(default_factory=list)
    server_rss_connected: int | None = None

    @property
    def missing(self) -> int:
        return sum(d.missing for d in self.deliveries)

    def _pct(self, values: list[float], pct: float) -> float | None:
        return percentile(sorted(values), pct)

    @property
    def all_clients_p50_ms(self) -> float | None:
        return self._pct([d.all_clients_ms for d in self.deliveries], 50)

    @property
    def all_clients_max_ms(self) -> float | None:
        return self._pct([d.all_clients_ms for d in self.deliveries], 100)

    @property
    def median_client_p50_ms(self) -> float | None:
        return self._pct([d.median_ms for d in self.deliveries], 50)

    @property
    def complete(self) -> bool:
        """Every client connected and got every measured event."""
        return self.connected == self.clients and bool(self.deliveries) and self.missing == 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "clients": self.clients,
            "connected": self.connected,
            "failures": dict(self.failure_kinds),
            "connect_s": round(self.connect_seconds, 3),
            "start_last_id": self.start_last_id,
            "events_measured": len(self.deliveries),
            "missing_deliveries": self.missing,
            "all_clients_p50_ms": round_ms(self.all_clients_p50_ms),
            "all_clients_max_ms": round_ms(self.all_clients_max_ms),
            "median_client_p50_ms": round_ms(self.median_client_p50_ms),
            "server_rss_connected_bytes": self.server_rss_connected,
            "events": [d.as_dict() for d in self.deliveries],
        }


def _stream_request(last_id: int | None) -> bytes:
    query = "" if last_id is None else f"?last_id={last_id}"
    return (
        f"GET /api/stream{query} HTTP/1.1\r\nHost: bench\r\nAccept: text/event-stream\r\n\r\n"
    ).encode()


async def _open(host: str, port: int, request: bytes) -> SseClient:
    loop = asyncio.get_running_loop()
    _transport, client = await loop.create_connection(lambda: SseClient(request, loop), host, port)
    try:
        status = await asyncio.wait_for(asyncio.shield(client.status), HEADERS_TIMEOUT)
    except BaseException:
        client.close()
        raise
    if status != 200:
        client.close()
        raise ConnectionError(f"HTTP {status}")
    return client


async def current_last_id(host: str, port: int, timeout: float = 10.0) -> int:
    """The newest event id: the largest id in the replay a client without last_id gets."""
    client = await _open(host, port, _stream_request(None))
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ids = [e.id for e in client.events() if e.id is not None]
            if ids:
                return max(ids)
            await asyncio.sleep(POLL_SECONDS)
        raise TimeoutError("the stream sent no event with an id")
    finally:
        client.close()


async def run_fanout(
    host: str,
    port: int,
    clients: int,
    events: int,
    server_rss: Callable[[], int] | None = None,
    check_server: Callable[[], None] | None = None,
) -> FanoutResult:
    result = FanoutResult(clients)
    last_id = await current_last_id(host, port)
    result.start_last_id = last_id
    request = _stream_request(last_id)
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

    async def connect() -> SseClient:
        async with gate:
            return await _open(host, port, request)

    began = time.perf_counter()
    outcomes = await asyncio.gather(*(connect() for _ in range(clients)), return_exceptions=True)
    result.connect_seconds = time.perf_counter() - began
    connected = [c for c in outcomes if isinstance(c, SseClient)]
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            result.failure_kinds[f"{type(outcome).__name__}: {outcome}"[:80]] += 1
    result.connected = len(connected)
    try:
        if not connected:
            return result
        # Every client is subscribed now: events stamped after this reach all of them.
        ready_ns = time.time_ns()
        wanted = await _await_market_events(connected[0], ready_ns, events, check_server)
        await asyncio.sleep(SETTLE_SECONDS)
        if server_rss is not None:
            result.server_rss_connected = server_rss()
    finally:
        for client in connected:
            client.close()
    result.deliveries = _deliveries(connected, wanted)
    await asyncio.sleep(SETTLE_SECONDS)  # let the server see the disconnects before what's next
    return result


async def _await_market_events(
    reference: SseClient,
    after_ns: int,
    count: int,
    check_server: Callable[[], None] | None,
) -> list[tuple[int, int]]:
    """(id, ts_ns) of the first `count` market events stamped after `after_ns`."""
    deadline = time.monotonic() + 10.0 + count  # generous: ticks come every 200 ms by default
    found: list[tuple[int, int]] = []
    while time.monotonic() < deadline:
        found = _market_events(reference.events(), after_ns)[:count]
        if len(found) >= count:
            break
        if check_server is not None:
            check_server()
        await asyncio.sleep(POLL_SECONDS)
    return found


def _market_events(received: list[ReceivedEvent], after_ns: int) -> list[tuple[int, int]]:
    found = []
    for event in received:
        if event.type != "market" or event.id is None:
            continue
        ts_ns = int(json.loads(event.data)["ts_ns"])
        if ts_ns > after_ns:
            found.append((event.id, ts_ns))
    return found


def _deliveries(clients: list[SseClient], wanted: list[tuple[int, int]]) -> list[EventDelivery]:
    received_at: dict[int, list[int]] = {event_id: [] for event_id, _ in wanted}
    for client in clients:
        for event in client.events():
            if event.id is not None and event.id in received_at:
                received_at[event.id].append(event.received_ns)
    deliveries = []
    for event_id, ts_ns in wanted:
        delays = [received - ts_ns for received in received_at[event_id]]
        if not delays:
            continue
        deliveries.append(
            EventDelivery(
                event_id=event_id,
                ts_ns=ts_ns,
                all_clients_ms=max(delays) / 1e6,
                median_ms=statistics.median(delays) / 1e6,
                missing=len(clients) - len(delays),
            )
        )
    return deliveries
