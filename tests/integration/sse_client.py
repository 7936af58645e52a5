"""A deliberately strict SSE client over a raw asyncio socket.

It speaks HTTP/1.1 by hand so the tests see the bytes the server really sends: the status line,
the headers, the chunked framing and every SSE block, including comments. Nothing is lenient:
a block that is not exactly `id: <n>\\nevent: <type>\\ndata: <one line>\\n\\n` fails the test.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

EVENT_BLOCK = re.compile(rb"id: (\d+)\nevent: ([a-z_]+)\ndata: ([^\n]+)\n\n")
KEEPALIVE_BLOCK = b": keep-alive\n\n"


class StreamEnded(Exception):
    """The response body ended (terminal chunk, or the connection closed)."""


@dataclass(frozen=True)
class SseEvent:
    id: int
    event: str
    data: dict[str, Any]
    raw: bytes


def parse_event_block(block: bytes) -> SseEvent:
    """One SSE event block, checked byte for byte against the contract's framing."""
    match = EVENT_BLOCK.fullmatch(block)
    assert match is not None, f"malformed SSE event block: {block!r}"
    data = json.loads(match.group(3))
    assert isinstance(data, dict), f"SSE data is not a JSON object: {block!r}"
    return SseEvent(int(match.group(1)), match.group(2).decode(), data, block)


def build_request(
    port: int, path: str, headers: Mapping[str, str] | None = None, *, close: bool = False
) -> bytes:
    lines = [f"GET {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Accept: text/event-stream"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


class SseStream:
    """One `GET /api/stream` (or any GET) with its response read incrementally."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self.status = 0
        self.headers: dict[str, str] = {}
        self.header_list: list[tuple[str, str]] = []
        self._buffer = b""
        self._chunked = False
        self._remaining: int | None = None  # Content-Length bodies
        self.body_ended = False  # terminal chunk or end of a Content-Length body
        self.eof = False  # the server closed the connection
        self.bytes_read = 0  # body bytes after de-chunking

    # --- opening ----------------------------------------------------------------------------
    @classmethod
    async def open(
        cls,
        port: int,
        path: str = "/api/stream",
        headers: Mapping[str, str] | None = None,
        *,
        close: bool = False,
        timeout: float = 5.0,
    ) -> SseStream:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            stream = cls(reader, writer)
            writer.write(build_request(port, path, headers, close=close))
            await writer.drain()
            await stream._read_head()
        return stream

    @classmethod
    async def open_on_socket(cls, sock: socket.socket, timeout: float = 5.0) -> SseStream:
        """Attach to a socket whose request was already sent (nothing read yet)."""
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(sock=sock)
            stream = cls(reader, writer)
            await stream._read_head()
        return stream

    async def _read_head(self) -> None:
        head = await self._reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        version, status, *_ = lines[0].split(" ", 2)
        assert version.startswith("HTTP/1."), f"bad status line: {lines[0]!r}"
        self.status = int(status)
        for line in lines[1:]:
            if not line:
                continue
            name, _, value = line.partition(":")
            self.header_list.append((name.strip().lower(), value.strip()))
            self.headers[name.strip().lower()] = value.strip()
        self._chunked = "chunked" in self.headers.get("transfer-encoding", "").lower()
        if not self._chunked and "content-length" in self.headers:
            self._remaining = int(self.headers["content-length"])

    # --- body -------------------------------------------------------------------------------
    async def _read_more(self) -> None:
        """Append the next piece of body to the buffer; StreamEnded when there is none."""
        if self.body_ended or self.eof:
            raise StreamEnded
        try:
            if self._chunked:
                size_line = await self._reader.readuntil(b"\r\n")
                size = int(size_line.split(b";", 1)[0].strip(), 16)
                if size == 0:
                    await self._reader.readuntil(b"\r\n")  # no trailers are expected
                    self.body_ended = True
                    raise StreamEnded
                data = await self._reader.readexactly(size)
                crlf = await self._reader.readexactly(2)
                assert crlf == b"\r\n", f"bad chunk terminator {crlf!r}"
            elif self._remaining is not None:
                if self._remaining == 0:
                    self.body_ended = True
                    raise StreamEnded
                data = await self._reader.read(self._remaining)
                if not data:
                    raise asyncio.IncompleteReadError(b"", self._remaining)
                self._remaining -= len(data)
            else:
                data = await self._reader.read(65536)
                if not data:
                    raise asyncio.IncompleteReadError(b"", None)
        except (asyncio.IncompleteReadError, ConnectionResetError) as exc:
            self.eof = True
            raise StreamEnded from exc
        self.bytes_read += len(data)
        self._buffer += data

    async def next_block(self, timeout: float = 5.0) -> bytes:
        """The next SSE block (an event or a comment), up to and including its blank line."""
        async with asyncio.timeout(timeout):
            while True:
                end = self._buffer.find(b"\n\n")
                if end >= 0:
                    block, self._buffer = self._buffer[: end + 2], self._buffer[end + 2 :]
                    return block
                await self._read_more()

    async def next_event(self, timeout: float = 5.0) -> SseEvent:
        """The next event block, skipping `: keep-alive` comments."""
        async with asyncio.timeout(timeout):
            while True:
                block = await self.next_block(timeout)
                if block == KEEPALIVE_BLOCK:
                    continue
                return parse_event_block(block)

    async def events_until(
        self,
        predicate: Callable[[SseEvent], bool],
        timeout: float = 5.0,
        *,
        check_contiguous: bool = True,
    ) -> list[SseEvent]:
        """Read events until `predicate(event)` is true; returns them all, that one last."""
        events: list[SseEvent] = []
        async with asyncio.timeout(timeout):
            while True:
                event = await self.next_event(timeout)
                if check_contiguous and events:
                    assert event.id == events[-1].id + 1, (
                        f"ids not contiguous: {events[-1].id} then {event.id}"
                    )
                events.append(event)
                if predicate(event):
                    return events

    async def read_body_json(self, timeout: float = 5.0) -> Any:
        """The whole body of a non-streaming answer, as JSON."""
        async with asyncio.timeout(timeout):
            while True:
                try:
                    await self._read_more()
                except StreamEnded:
                    break
        return json.loads(self._buffer)

    async def read_to_eof(self, timeout: float) -> bytes:
        """Everything until the server closes the connection (the body may end first)."""
        async with asyncio.timeout(timeout):
            while not self.eof:
                try:
                    await self._read_more()
                except StreamEnded:
                    if not self.eof:  # body done; wait for the close itself
                        rest = await self._reader.read(65536)
                        if not rest:
                            self.eof = True
                        else:
                            raise AssertionError(
                                f"data after the end of the body: {rest!r}"
                            ) from None
        data, self._buffer = self._buffer, b""
        return data

    async def close(self) -> None:
        self._writer.close()
        with contextlib.suppress(TimeoutError, ConnectionError):
            await asyncio.wait_for(self._writer.wait_closed(), 2.0)


def events_in(data: bytes) -> list[SseEvent]:
    """Every event in a run of complete blocks (keep-alive comments skipped)."""
    events = []
    for block in re.findall(rb".*?\n\n", data, flags=re.DOTALL):
        if block != KEEPALIVE_BLOCK:
            events.append(parse_event_block(block))
    return events
