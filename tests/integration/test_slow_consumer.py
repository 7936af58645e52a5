"""A stream client that stops reading is cut off; the others and the server carry on.

The server can only notice a stalled client once its socket buffers are full: the kernel send
buffer of a loopback connection grows to `tcp_wmem` max (4 MiB here), so the market has to
produce megabytes within a few seconds. A resting order that fills a sliver every tick does it:
each tick then publishes `market`, `fill`, `order_state` and an `account` event, and the account
event lists every asset of a wallet seeded with a few hundred assets (about 17 KB each).

The queue is sized so that a healthy reader has over half a second of slack: on a busy two-core
machine the test process and the server compete for the CPU, and a reader that is merely late
must not be mistaken for one that stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.integration.conftest import GatewayServer, StartGateway, get_json
from tests.integration.sse_client import SseEvent, SseStream, StreamEnded, build_request, events_in

ASSETS = [f"TKN{i:03d}" for i in range(400)]
QUEUE_SIZE = 512  # 4 events a tick: 128 ticks of slack for a reader that is merely late
SLOW_ENV = {
    "VELOZ_SIM_TICK_MS": "5",
    "VELOZ_SSE_QUEUE_SIZE": str(QUEUE_SIZE),
    "VELOZ_SIM_LIQUIDITY": "0.01",  # a resting order fills 0.00000023 BTC per tick
    "VELOZ_SIM_BALANCES": "USDT:100000,BTC:0," + ",".join(f"{a}:1" for a in ASSETS),
}
SLOW_RCVBUF = 4096


def kernel_send_buffer_max() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/tcp_wmem").read_text().split()[2])
    except (OSError, IndexError, ValueError):
        return 4 * 1024 * 1024


def stall_bytes(reader: Reader) -> int:
    """Bytes the market must produce after the stalled client connected before the server has,
    for certain, had its send to that client block and its queue overflow: the kernel send
    buffer, the transport's write buffer and the client's receive buffer (1 MiB covers both),
    and a full queue of events of the size seen so far, with margin."""
    per_event = reader.stream.bytes_read / max(len(reader.events), 1)
    return kernel_send_buffer_max() + 1024 * 1024 + int(QUEUE_SIZE * per_event * 1.5)


@dataclass
class Reader:
    """A client that reads the stream as fast as it comes and checks every id."""

    stream: SseStream
    events: list[SseEvent] = field(default_factory=list)
    ended: bool = False
    error: BaseException | None = None

    @property
    def last_id(self) -> int:
        return self.events[-1].id if self.events else 0

    async def run(self) -> None:
        try:
            while True:
                event = await self.stream.next_event(timeout=5)
                if self.events:
                    assert event.id == self.last_id + 1, (self.last_id, event.id)
                self.events.append(event)
        except StreamEnded:
            self.ended = True
        except BaseException as exc:
            self.error = exc
            raise


async def start_flooding_market(start_gateway: StartGateway, **env: str) -> GatewayServer:
    server = await start_gateway(env={**SLOW_ENV, **env})
    async with server.client() as client:
        response = await client.post(
            "/api/order",
            json={"client_order_id": "flood-1", "side": "BUY", "qty": 0.01, "price": 100000},
        )
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "PARTIALLY_FILLED", response.text
    return server


async def connect_stalled_client(server: GatewayServer) -> socket.socket:
    """Connect with a tiny receive buffer, send the request, then read nothing."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SLOW_RCVBUF)
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    await loop.sock_connect(sock, ("127.0.0.1", server.port))
    await loop.sock_sendall(sock, build_request(server.port, "/api/stream", close=True))
    return sock


async def probe_status(server: GatewayServer) -> int:
    """The status a new stream client gets (it disconnects at once)."""
    probe = await SseStream.open(server.port, "/api/stream?last_id=1000000000")
    await probe.close()
    return probe.status


async def wait_for_flood(reader: Reader, since_bytes: int, timeout: float = 30.0) -> None:
    """Until the reader got `stall_bytes` more body bytes (the stalled client was sent as many)."""
    deadline = time.monotonic() + timeout
    while reader.stream.bytes_read - since_bytes < stall_bytes(reader):
        assert reader.error is None, reader.error
        assert not reader.ended, "the healthy reader was cut off"
        assert time.monotonic() < deadline, (
            f"market produced only {reader.stream.bytes_read - since_bytes} bytes in {timeout}s"
        )
        await asyncio.sleep(0.05)


async def test_stalled_client_is_cut_off_while_others_keep_streaming(
    start_gateway: StartGateway,
) -> None:
    server = await start_flooding_market(start_gateway)
    stream = await SseStream.open(server.port, "/api/stream?last_id=1000000000")
    assert stream.status == 200
    reader = Reader(stream)
    task = asyncio.create_task(reader.run())
    slow: socket.socket | None = None
    try:
        rss_before = server.rss_kib()
        base = reader.stream.bytes_read
        slow = await connect_stalled_client(server)
        await wait_for_flood(reader, base)
        cut_at = reader.last_id

        # The stalled client now reads what is left for it: its stream must end (EOF), after a
        # run of contiguous events that stops well before the live position.
        slow_stream = await SseStream.open_on_socket(slow)
        slow = None  # owned by slow_stream now
        try:
            assert slow_stream.status == 200
            try:
                data = await slow_stream.read_to_eof(timeout=10)
            except TimeoutError:
                raise AssertionError("the stalled client's stream never ended") from None
        finally:
            await slow_stream.close()
        got = events_in(data)
        assert got, "the stalled client got no event at all"
        ids = [e.id for e in got]
        assert ids == list(range(ids[0], ids[0] + len(ids))), "gap inside the delivered events"
        assert ids[-1] < cut_at, (
            f"the stalled client was never cut off: it got up to id {ids[-1]}, "
            f"the live stream was at {cut_at} when it started reading"
        )

        # The healthy reader never missed an event and is still live.
        live_from = reader.last_id
        deadline = time.monotonic() + 5
        while reader.last_id < live_from + 20:
            assert reader.error is None, reader.error
            assert not reader.ended, "the healthy reader was cut off"
            assert time.monotonic() < deadline, "the healthy reader stopped receiving"
            await asyncio.sleep(0.02)

        async with server.client() as client:
            assert (await client.get("/health")).status_code == 200
            assert (await get_json(client, "/api/health"))["engine"]["connected"] is True
        growth_mib = (server.rss_kib() - rss_before) / 1024
        assert growth_mib < 200, f"server RSS grew by {growth_mib:.0f} MiB"
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        await stream.close()
        if slow is not None:
            slow.close()


async def test_stalled_client_that_was_cut_off_frees_its_stream_slot(
    start_gateway: StartGateway,
) -> None:
    server = await start_flooding_market(start_gateway, VELOZ_SSE_MAX_CLIENTS="2")
    stream = await SseStream.open(server.port, "/api/stream?last_id=1000000000")
    assert stream.status == 200
    reader = Reader(stream)
    task = asyncio.create_task(reader.run())
    slow: socket.socket | None = None
    try:
        base = reader.stream.bytes_read
        slow = await connect_stalled_client(server)
        # Both slots are taken: the reader and the stalled client.
        deadline = time.monotonic() + 5
        while await probe_status(server) != 503:
            assert time.monotonic() < deadline, "the stalled client never took a slot"
            await asyncio.sleep(0.05)
        await wait_for_flood(reader, base)

        # The stalled client has been cut off: it no longer holds a slot, even though it
        # still has not read a byte.
        deadline = time.monotonic() + 5
        while True:
            status = await probe_status(server)
            if status == 200:
                break
            assert status == 503
            assert time.monotonic() < deadline, (
                "a stream client that was cut off for falling behind still holds its slot "
                "(new clients get 503 too_many_streams)"
            )
            await asyncio.sleep(0.1)
        assert reader.error is None, reader.error
        assert not reader.ended, "the healthy reader was cut off"
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        await stream.close()
        if slow is not None:
            slow.close()
