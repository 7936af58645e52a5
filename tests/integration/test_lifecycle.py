"""Process lifecycle: graceful shutdown with a live stream, refusal of bad configuration, --help."""

from __future__ import annotations

import time
from pathlib import Path

from tests.integration.conftest import StartGateway, free_port, gateway_env, run_app
from tests.integration.sse_client import SseStream, events_in


async def test_sigterm_ends_streams_and_exits_zero(start_gateway: StartGateway) -> None:
    server = await start_gateway(env={"VELOZ_SIM_TICK_MS": "20"})
    stream = await SseStream.open(server.port)
    try:
        assert stream.status == 200
        seen = await stream.events_until(lambda e: e.event == "market", timeout=5)

        stopped_at = time.monotonic()
        server.terminate()
        tail = await stream.read_to_eof(timeout=8)  # the stream ends: the client sees EOF
        eof_after = time.monotonic() - stopped_at
        code = await server.wait_exit(timeout=8)
        exit_after = time.monotonic() - stopped_at
    finally:
        await stream.close()

    # Whatever arrived before the end is still well-formed and in order.
    ids = [e.id for e in seen + events_in(tail)]
    assert ids == list(range(ids[0], ids[0] + len(ids)))
    assert eof_after < 5, f"the stream stayed open {eof_after:.1f}s after SIGTERM"
    assert exit_after < 8
    assert code == 0, f"exit code {code} after SIGTERM (negative: killed by that signal)"


def test_non_integer_port_is_refused_with_one_line(tmp_path: Path) -> None:
    env = gateway_env(tmp_path / "data", {"VELOZ_PORT": "abc"})
    result = run_app([], env)
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "VELOZ_PORT" in lines[0]
    assert "Traceback" not in result.stderr


def test_public_host_without_auth_is_refused(tmp_path: Path) -> None:
    env = gateway_env(
        tmp_path / "data",
        {"VELOZ_HOST": "0.0.0.0", "VELOZ_PORT": str(free_port())},
    )
    result = run_app([], env)
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "VELOZ_HOST" in lines[0]
    assert "VELOZ_ALLOW_INSECURE" in lines[0]


def test_help_prints_usage_and_exits_zero(tmp_path: Path) -> None:
    result = run_app(["--help"], gateway_env(tmp_path / "data"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.lower().startswith("usage:")
    assert "--port" in result.stdout
    assert "--host" in result.stdout
