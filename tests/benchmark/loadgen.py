"""A closed-loop HTTP/1.1 load generator on raw keep-alive connections (asyncio streams).

Each connection sends one request, reads the whole response (by Content-Length, or chunks), and
sends the next, so `connections` requests are in flight at any time. Only responses completed
inside the measured window count; the warm-up before it lets connections, caches and the
allocator settle.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tests.benchmark.stats import LatencySummary

# A request for (connection index, sequence number on that connection).
RequestFactory = Callable[[int, int], bytes]
# An error label for a response (status, body), or None when it is a success.
ResponseCheck = Callable[[int, bytes], str | None]

GRACE_SECONDS = 10.0  # how long in-flight requests may take after the window closes
RECONNECT_PAUSE = 0.01  # so a refusing server does not turn a worker into a busy loop


class ProtocolError(Exception):
    """The bytes on the wire are not an HTTP/1.x response we understand."""


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str  # as given to --scenarios
    label: str  # as shown in the report
    request: RequestFactory
    check: ResponseCheck


def _header_lines(headers: Mapping[str, str]) -> str:
    return "".join(f"{name}: {value}\r\n" for name, value in headers.items())


def get_request(path: str, headers: Mapping[str, str] | None = None) -> RequestFactory:
    extra = _header_lines(headers or {})
    raw = f"GET {path} HTTP/1.1\r\nHost: bench\r\n{extra}\r\n".encode()
    return lambda _connection, _seq: raw  # the same bytes every time: no per-request work


def order_request(run_tag: str) -> RequestFactory:
    """A resting limit buy far below the market; a unique client_order_id creates a new order."""
    prefix = b"POST /api/order HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"

    def build(connection: int, seq: int) -> bytes:
        body = (
            '{"side":"BUY","symbol":"BTCUSDT","qty":0.0001,"price":1000,'
            f'"client_order_id":"{run_tag}-{connection}-{seq}"}}'
        ).encode()
        return b"%sContent-Length: %d\r\n\r\n%s" % (prefix, len(body), body)

    return build


def status_ok(status: int, _body: bytes) -> str | None:
    return None if status == 200 else f"HTTP {status}"


def order_ok(status: int, body: bytes) -> str | None:
    """200 is not enough: a refused order answers 200 with ok: false."""
    if status != 200:
        return f"HTTP {status}"
    if b'"ok":true' in body:
        return None
    try:
        reason = json.loads(body).get("error", "unknown")
    except ValueError:
        reason = "unparsable body"
    return f"ok:false ({reason})"


def scenarios(run_tag: str) -> dict[str, Scenario]:
    return {
        "health": Scenario("health", "GET /health", get_request("/health"), status_ok),
        "market": Scenario("market", "GET /api/market", get_request("/api/market"), status_ok),
        "order": Scenario("order", "POST /api/order", order_request(run_tag), order_ok),
    }


def authenticated_market(name: str, label: str, header: str, value: str) -> Scenario:
    """GET /api/market carrying one credential header (Authorization or X-API-Key)."""
    return Scenario(name, label, get_request("/api/market", {header: value}), status_ok)


async def request_once(
    host: str,
    port: int,
    method: str,
    path: str,
    headers: Mapping[str, str] | None = None,
    json_body: Any = None,
    timeout: float = 30.0,
) -> tuple[int, bytes]:
    """One request on its own connection: (status, body). For set-up steps, not for load."""
    body = b"" if json_body is None else json.dumps(json_body).encode()
    head = f"{method} {path} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n"
    head += _header_lines(headers or {})
    if json_body is not None:
        head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation (our SIGTERM)
    # that arrives just as the answer does.
    async with asyncio.timeout(timeout):
        reader, writer = await asyncio.open_connection(host, port)
        try:
            writer.write(head.encode() + b"\r\n" + body)
            status, answer, _keep_alive = await read_response(reader)
            return status, answer
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """One response: (status, body, whether the connection may be reused)."""
    head = await reader.readuntil(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1."):
        raise ProtocolError(f"unexpected start of response: {head[:40]!r}")
    status = int(head[9:12])
    lower = head.lower()
    keep_alive = head.startswith(b"HTTP/1.1") and b"\r\nconnection: close" not in lower
    start = lower.find(b"\r\ncontent-length:")
    if start >= 0:
        start += len(b"\r\ncontent-length:")
        length = int(lower[start : lower.index(b"\r\n", start)])
        body = await reader.readexactly(length) if length else b""
    elif b"\r\ntransfer-encoding: chunked" in lower:
        body = await _read_chunked(reader)
    elif status in (204, 304) or status < 200:
        body = b""
    else:  # no length: the body runs to the end of the connection
        body = await reader.read()
        keep_alive = False
    return status, body, keep_alive


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts: list[bytes] = []
    while True:
        size_line = await reader.readuntil(b"\r\n")
        size = int(size_line.split(b";", 1)[0], 16)
        if size == 0:
            await reader.readuntil(b"\r\n")  # no trailers expected: just the final blank line
            return b"".join(parts)
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)


@dataclass
class LoadResult:
    scenario: str
    label: str
    connections: int
    window_seconds: float
    responses: int = 0  # completed inside the window, successes and error answers
    successes: int = 0
    errors: int = 0  # error answers, connection failures and stuck requests
    error_kinds: Counter[str] = field(default_factory=Counter)
    latencies_ns: list[int] = field(default_factory=list)
    client_cpu_seconds: float = 0.0
    server_cpu_seconds: float | None = None
    server_rss_after: int | None = None
    # Other busy processes on the machine skew the figures; this shows how busy it was.
    load_average_1m: float | None = None  # when the measured window opened

    @property
    def requests_per_second(self) -> float:
        return self.responses / self.window_seconds if self.window_seconds > 0 else 0.0

    @property
    def successes_per_second(self) -> float:
        return self.successes / self.window_seconds if self.window_seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        window = self.window_seconds
        server_cpu = self.server_cpu_seconds
        return {
            "scenario": self.scenario,
            "label": self.label,
            "connections": self.connections,
            "window_s": round(window, 3),
            "responses": self.responses,
            "successes": self.successes,
            "errors": self.errors,
            "error_kinds": dict(self.error_kinds),
            "requests_per_s": round(self.requests_per_second, 1),
            "successes_per_s": round(self.successes_per_second, 1),
            "latency": LatencySummary.from_ns(self.latencies_ns).as_dict(),
            "client_cpu_pct": round(100 * self.client_cpu_seconds / window, 1) if window else None,
            "server_cpu_pct": (
                round(100 * server_cpu / window, 1) if window and server_cpu is not None else None
            ),
            "server_rss_after_bytes": self.server_rss_after,
            "load_average_1m_at_start": self.load_average_1m,
        }


class LoadRun:
    """One scenario: `connections` workers, a warm-up, then a measured window."""

    def __init__(
        self,
        host: str,
        port: int,
        scenario: Scenario,
        connections: int,
        warmup: float,
        duration: float,
        server_cpu: Callable[[], float] | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.scenario = scenario
        self.connections = connections
        self.warmup = warmup
        self.duration = duration
        self.server_cpu = server_cpu
        self.result = LoadResult(scenario.name, scenario.label, connections, duration)
        self._window_start_ns = 0
        self._window_end_ns = 0

    async def run(self) -> LoadResult:
        now = time.perf_counter_ns()
        self._window_start_ns = now + int(self.warmup * 1e9)
        self._window_end_ns = self._window_start_ns + int(self.duration * 1e9)
        workers = [
            asyncio.create_task(self._worker(index), name=f"bench-conn-{index}")
            for index in range(self.connections)
        ]
        try:
            await self._sample_cpu()
            _done, pending = await asyncio.wait(workers, timeout=GRACE_SECONDS)
            # Still waiting for an answer long after the window: a stuck request is an error.
            for task in pending:
                task.cancel()
                self._record_error("timeout")
        finally:
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
        return self.result

    async def _sample_cpu(self) -> None:
        """Client and server CPU time over the measured window only (not the warm-up)."""
        await _sleep_until_ns(self._window_start_ns)
        self.result.load_average_1m = round(os.getloadavg()[0], 2)
        client_before = time.process_time()
        server_before = self.server_cpu() if self.server_cpu else None
        await _sleep_until_ns(self._window_end_ns)
        self.result.client_cpu_seconds = time.process_time() - client_before
        if self.server_cpu is not None and server_before is not None:
            self.result.server_cpu_seconds = self.server_cpu() - server_before

    def _in_window(self, when_ns: int) -> bool:
        return self._window_start_ns <= when_ns <= self._window_end_ns

    def _record_error(self, kind: str) -> None:
        self.result.errors += 1
        self.result.error_kinds[kind] += 1

    async def _worker(self, index: int) -> None:
        request, check = self.scenario.request, self.scenario.check
        result = self.result
        reader: asyncio.StreamReader | None = None
        writer: asyncio.StreamWriter | None = None
        seq = 0
        try:
            while time.perf_counter_ns() < self._window_end_ns:
                try:
                    if reader is None or writer is None:
                        reader, writer = await asyncio.open_connection(self.host, self.port)
                    payload = request(index, seq)
                    seq += 1
                    sent_ns = time.perf_counter_ns()
                    writer.write(payload)
                    status, body, keep_alive = await read_response(reader)
                    done_ns = time.perf_counter_ns()
                except (OSError, asyncio.IncompleteReadError, ProtocolError, ValueError) as exc:
                    if self._in_window(time.perf_counter_ns()):
                        self._record_error(type(exc).__name__)
                    if writer is not None:
                        writer.close()
                    reader = writer = None
                    await asyncio.sleep(RECONNECT_PAUSE)
                    continue
                if self._in_window(done_ns):
                    result.responses += 1
                    result.latencies_ns.append(done_ns - sent_ns)
                    error = check(status, body)
                    if error is None:
                        result.successes += 1
                    else:
                        self._record_error(error)
                if not keep_alive:
                    writer.close()
                    reader = writer = None
        finally:
            if writer is not None:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()


async def _sleep_until_ns(deadline_ns: int) -> None:
    delay = (deadline_ns - time.perf_counter_ns()) / 1e9
    if delay > 0:
        await asyncio.sleep(delay)
