"""A loopback TCP relay the test can cut: the browser talks to the gateway through it.

`cut()` drops every open connection and refuses new ones (as a network outage would) while
the gateway itself keeps running; `restore()` lets connections through again. The upstream
port can be changed, so a restarted gateway can be put behind the same address.
"""

from __future__ import annotations

import asyncio
import contextlib

from tests.integration.conftest import free_port

CHUNK = 65536


class CutProxy:
    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = 0
        self.connected = True
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self.port = free_port()
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)

    async def stop(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def cut(self) -> None:
        self.connected = False
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    def restore(self, upstream_port: int | None = None) -> None:
        if upstream_port is not None:
            self.upstream_port = upstream_port
        self.connected = True

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.connected:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, up_writer))
        pipes = [
            asyncio.create_task(_pipe(reader, up_writer)),
            asyncio.create_task(_pipe(up_reader, writer)),
        ]
        try:
            # Either side closing ends the relay: the other side is then cut too.
            await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in pipes:
                task.cancel()
            for end in (writer, up_writer):
                self._writers.discard(end)
                end.transport.abort()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError, asyncio.IncompleteReadError):
        while chunk := await reader.read(CHUNK):
            writer.write(chunk)
            await writer.drain()
