"""The gateway under test: a real `python -m app` subprocess, its readiness, memory and CPU."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

HOST = "127.0.0.1"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class ServerError(RuntimeError):
    """The gateway did not start, or died while the benchmark needed it."""


def free_port() -> int:
    """A port the kernel just handed out; the gateway binds it a moment later."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True, slots=True)
class StopResult:
    exit_code: int | None
    seconds: float
    killed: bool  # SIGTERM was not enough and SIGKILL had to follow
    already_exited: bool  # it had died before we asked it to stop

    @property
    def clean(self) -> bool:
        # uvicorn re-raises the captured SIGTERM after a graceful shutdown, hence -SIGTERM.
        return (
            not self.killed and not self.already_exited and self.exit_code in (0, -signal.SIGTERM)
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "exit_code": self.exit_code,
            "seconds": round(self.seconds, 3),
            "killed": self.killed,
            "already_exited": self.already_exited,
            "clean": self.clean,
        }


class GatewayProcess:
    """Starts the gateway with a fresh data directory and stops it with SIGTERM.

    `settings` are extra VELOZ_* variables (e.g. auth on), applied over the benchmark's own.
    """

    def __init__(
        self,
        python: str,
        repo_root: Path,
        data_dir: Path,
        port: int,
        settings: Mapping[str, str] | None = None,
    ) -> None:
        self.python = python
        self.repo_root = repo_root
        self.data_dir = data_dir
        self.port = port
        self.settings = dict(settings or {})
        self.log_path = data_dir / "gateway.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None
        self._started_at = 0.0

    @property
    def started(self) -> bool:
        return self._process is not None

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def process(self) -> subprocess.Popen[bytes]:
        if self._process is None:
            raise ServerError("the gateway has not been started")
        return self._process

    def start(self) -> None:
        # Only the benchmark's own VELOZ_* settings: a developer's config must not leak in.
        env = {k: v for k, v in os.environ.items() if not k.startswith("VELOZ_")}
        env.update(
            VELOZ_DATA_DIR=str(self.data_dir),
            VELOZ_LOG_LEVEL="warning",
            VELOZ_SIM_SEED="1",
        )
        env.update(self.settings)
        self._log_file = self.log_path.open("wb")
        self._started_at = time.perf_counter()
        self._process = subprocess.Popen(
            [self.python, "-m", "app", "--port", str(self.port)],
            cwd=self.repo_root,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            # Its own session: Ctrl-C in the terminal reaches only the harness, which then
            # stops the gateway the orderly way (SIGTERM).
            start_new_session=True,
        )

    def check_alive(self) -> None:
        code = self.process.poll()
        if code is not None:
            raise ServerError(f"the gateway exited with code {code}; log:\n{self.log_tail()}")

    async def wait_ready(self, timeout: float = 60.0) -> float:
        """Seconds from process start to the first 200 on GET /health."""
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            self.check_alive()
            if await _health_ok(self.port):
                return time.perf_counter() - self._started_at
            await asyncio.sleep(0.005)
        raise ServerError(f"no 200 on /health within {timeout:.0f} s; log:\n{self.log_tail()}")

    def rss_bytes(self) -> int:
        return _status_kib(self.pid, "VmRSS") * 1024

    def peak_rss_bytes(self) -> int:
        return _status_kib(self.pid, "VmHWM") * 1024

    def cpu_seconds(self) -> float:
        """User + system CPU time of the whole process (all threads) so far."""
        stat = Path(f"/proc/{self.pid}/stat").read_text()
        fields = stat.rsplit(")", 1)[1].split()  # the name in parentheses may hold spaces
        utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5)
        return (utime + stime) / CLOCK_TICKS

    def stop(self, timeout: float = 15.0) -> StopResult | None:
        """SIGTERM, wait for the graceful shutdown, SIGKILL only if it hangs."""
        process = self._process
        if process is None:
            return None
        began = time.perf_counter()
        killed = False
        already_exited = process.poll() is not None
        if not already_exited:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                killed = True
                process.kill()
                process.wait()
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        return StopResult(process.returncode, time.perf_counter() - began, killed, already_exited)

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:]) or "(empty log)"


async def _health_ok(port: int) -> bool:
    try:
        reader, writer = await asyncio.open_connection(HOST, port)
    except OSError:
        return False
    try:
        writer.write(b"GET /health HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
        async with asyncio.timeout(5):  # not wait_for, which can swallow a cancellation on 3.11
            status_line = await reader.readline()
        return status_line.startswith(b"HTTP/1.1 200")
    except (OSError, TimeoutError):
        return False
    finally:
        writer.close()


def _status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])  # "VmRSS:   12345 kB"
    raise ServerError(f"/proc/{pid}/status has no {field}")
