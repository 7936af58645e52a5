"""Run the real gateway (`python -m app`) as a subprocess on a free loopback port.

Every test gets a factory that starts servers with a clean `VELOZ_*` environment and its own
data directory; whatever a test leaves running is killed (by its own process handle) at the end.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]
VENV_PYTHON = PROJECT_ROOT / ".venv" / "bin" / "python"
PYTHON = str(VENV_PYTHON) if VENV_PYTHON.exists() else sys.executable

# Fast, deterministic defaults; each test overrides what it needs.
BASE_ENV: dict[str, str] = {
    "VELOZ_SIM_SEED": "7",
    "VELOZ_SIM_TICK_MS": "20",
    "VELOZ_LOG_LEVEL": "warning",
}
START_TIMEOUT = 20.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def gateway_env(data_dir: Path, overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """The parent's environment without any VELOZ_* variable, plus the test's settings."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("VELOZ_")}
    env.update(BASE_ENV)
    env["VELOZ_DATA_DIR"] = str(data_dir)
    env.update(overrides or {})
    return env


def run_app(
    args: list[str], env: Mapping[str, str], timeout: float = 20.0
) -> subprocess.CompletedProcess[str]:
    """`python -m app <args>` to completion (for start-up failures and --help)."""
    return subprocess.run(
        [PYTHON, "-m", "app", *args],
        cwd=PROJECT_ROOT,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


class GatewayServer:
    """One `python -m app --port <port>` process."""

    def __init__(self, data_dir: Path, env: Mapping[str, str], log_path: Path) -> None:
        self.data_dir = data_dir
        self.env = dict(env)
        self.log_path = log_path
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def client(self, timeout: float = 10.0) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, timeout=timeout)

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def _spawn(self) -> None:
        """Launch the process (returns at once; nothing here waits on it)."""
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [PYTHON, "-m", "app", "--port", str(self.port)],
                cwd=PROJECT_ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    async def start(self, timeout: float = START_TIMEOUT) -> None:
        """Start on a free port and wait until GET /health answers 200."""
        for _attempt in range(3):  # another process may grab the port first
            self.port = free_port()
            self._spawn()
            if await self._wait_healthy(timeout):
                return
            if "address already in use" not in self.log_text().lower():
                break
        raise AssertionError(f"gateway did not become healthy; log:\n{self.log_text()}")

    async def _wait_healthy(self, timeout: float) -> bool:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(base_url=self.url, timeout=1.0) as client:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    return False
                try:
                    response = await client.get("/health")
                    if response.status_code == 200:
                        return True
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.05)
        self.kill()
        return False

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def send_signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL (a crash) and reap the process."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
        if self.proc is not None:
            self.proc.wait(10)

    async def wait_exit(self, timeout: float) -> int:
        """The exit code (negative: killed by that signal); AssertionError if still running."""
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            code = self.proc.poll()
            if code is not None:
                return code
            await asyncio.sleep(0.02)
        raise AssertionError(f"gateway still running {timeout}s later; log:\n{self.log_text()}")

    def rss_kib(self) -> int:
        status = Path(f"/proc/{self.pid}/status").read_text()
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS in /proc status")


StartGateway = Callable[..., Awaitable[GatewayServer]]


@pytest.fixture
async def start_gateway(tmp_path: Path) -> AsyncIterator[StartGateway]:
    """`await start_gateway(env={...}, data_dir=...)` → a running, healthy GatewayServer."""
    servers: list[GatewayServer] = []

    async def start(
        env: Mapping[str, str] | None = None, data_dir: Path | None = None
    ) -> GatewayServer:
        directory = data_dir or tmp_path / f"data{len(servers)}"
        directory.mkdir(parents=True, exist_ok=True)
        server = GatewayServer(
            directory, gateway_env(directory, env), tmp_path / f"server{len(servers)}.log"
        )
        servers.append(server)
        await server.start()
        return server

    yield start
    for server in servers:
        server.kill()


async def get_json(client: httpx.AsyncClient, path: str, **params: Any) -> Any:
    response = await client.get(path, params=params or None)
    assert response.status_code == 200, response.text
    return response.json()
