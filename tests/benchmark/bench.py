"""`python -m tests.benchmark.bench` (`make bench`): benchmark the real gateway process.

First times the identity layer in-process (`auth_micro`: JWT verification, API-key lookup, rate
limit, Principal.of). Then starts `python -m app` on a free port with a fresh data directory and
measures start-up time and idle memory, HTTP throughput and latency (GET /health, GET /api/market,
POST /api/order) and SSE fan-out latency (100 and 1000 clients). Right after GET /api/market it
starts a second gateway with auth on and measures GET /api/market again with a Bearer token and
with an API key, then stops that gateway. Right after POST /api/order (the main gateway keeps the
audit log on, its default) it starts a third gateway with VELOZ_AUDIT_LOG_ENABLED=false and
measures POST /api/order again, then stops that one too. Prints a table, compares with the
targets and writes bench-results/latest.json. It reports figures only: it never fails because of
them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import resource
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from dataclasses import replace
from pathlib import Path
from types import FrameType
from typing import Any

from tests.benchmark.auth_micro import DEFAULT_ITERATIONS, NEVER_REFUSE, measure
from tests.benchmark.loadgen import (
    LoadResult,
    LoadRun,
    Scenario,
    authenticated_market,
    request_once,
    scenarios,
)
from tests.benchmark.report import AUDIT_OFF_SCENARIO, BenchResults, render, write_json
from tests.benchmark.server import HOST, GatewayProcess, ServerError, free_port
from tests.benchmark.sse import run_fanout
from tests.benchmark.stats import LatencySummary

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OUTPUT = REPO_ROOT / "bench-results" / "latest.json"
HTTP_SCENARIOS = ("health", "market", "order")
MICRO_SCENARIO = "auth-micro"  # in-process, before the gateway starts
ALL_SCENARIOS = (MICRO_SCENARIO, *HTTP_SCENARIOS, "sse")
GATEWAY_SCENARIOS = (*HTTP_SCENARIOS, "sse")
BENCH_ADMIN_PASSWORD = "bench-admin-password"  # a throw-away data directory
# The auth-on gateway: a limiter so generous that it never refuses, so only its cost shows.
AUTH_GATEWAY_SETTINGS = {
    "VELOZ_AUTH_ENABLED": "true",
    "VELOZ_ADMIN_PASSWORD": BENCH_ADMIN_PASSWORD,
    "VELOZ_RATE_LIMIT_CAPACITY": str(NEVER_REFUSE),
    "VELOZ_RATE_LIMIT_REFILL": str(NEVER_REFUSE),
}
# The audit-off gateway: otherwise the main gateway's settings (auth off, audit on by default).
AUDIT_OFF_SETTINGS = {"VELOZ_AUDIT_LOG_ENABLED": "false"}
IDLE_SECONDS = 2.0  # between readiness and the idle RSS reading
FD_HEADROOM = 1024  # descriptors beyond the sockets we open: the server's own files, pipes

LoopFactory = Callable[[], asyncio.AbstractEventLoop]


def _loop_factory() -> tuple[LoopFactory | None, str]:
    try:
        import uvloop
    except ImportError:
        return None, "asyncio"
    return uvloop.new_event_loop, "uvloop"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tests.benchmark.bench",
        description="Benchmark veloz-gateway: start-up, memory, HTTP load, SSE fan-out.",
    )
    parser.add_argument(
        "--duration", type=float, default=5.0, help="measured seconds per HTTP scenario (5)"
    )
    parser.add_argument(
        "--warmup", type=float, default=1.0, help="warm-up seconds before each window (1)"
    )
    parser.add_argument(
        "--connections", type=int, default=64, help="concurrent keep-alive connections (64)"
    )
    parser.add_argument(
        "--scenarios",
        default=",".join(ALL_SCENARIOS),
        help=f"comma-separated subset of {','.join(ALL_SCENARIOS)} (all)",
    )
    parser.add_argument(
        "--sse-clients", default="100,1000", help="comma-separated SSE client counts (100,1000)"
    )
    parser.add_argument(
        "--sse-events", type=int, default=10, help="market events measured per SSE run (10)"
    )
    parser.add_argument(
        "--auth-compare",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also run GET /api/market on a second gateway with auth on, with a Bearer token "
        "and with an API key (on)",
    )
    parser.add_argument(
        "--audit-compare",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also run POST /api/order on another gateway with the audit log off "
        "(VELOZ_AUDIT_LOG_ENABLED=false), to compare with the main one, where it is on (on)",
    )
    parser.add_argument(
        "--micro-iterations",
        type=int,
        default=DEFAULT_ITERATIONS,
        help=f"timed calls per operation in {MICRO_SCENARIO} ({DEFAULT_ITERATIONS})",
    )
    parser.add_argument(
        "--output", type=Path, default=DEFAULT_OUTPUT, help="JSON results file (%(default)s)"
    )
    parser.add_argument(
        "--python", default=sys.executable, help="interpreter that runs the gateway (this one)"
    )
    args = parser.parse_args(argv)
    args.scenarios = _names(parser, args.scenarios)
    try:
        args.sse_clients = [int(n) for n in args.sse_clients.split(",") if n.strip()]
    except ValueError:
        parser.error("--sse-clients: expected numbers such as 100,1000")
    if args.duration <= 0 or args.warmup < 0 or args.connections < 1 or args.sse_events < 1:
        parser.error("--duration and --connections must be positive, --warmup not negative")
    if args.micro_iterations < 1:
        parser.error("--micro-iterations must be positive")
    args.auth_compare = args.auth_compare and "market" in args.scenarios
    args.audit_compare = args.audit_compare and "order" in args.scenarios
    if any(n < 1 for n in args.sse_clients):
        parser.error("--sse-clients: counts must be positive")
    return args


def _names(parser: argparse.ArgumentParser, text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = sorted(set(names) - set(ALL_SCENARIOS))
    if unknown or not names:
        parser.error(f"--scenarios: unknown {unknown}; choose from {','.join(ALL_SCENARIOS)}")
    return [name for name in ALL_SCENARIOS if name in names]  # always in the documented order


def raise_fd_limit(wanted: int) -> int:
    """Raise the soft descriptor limit; the gateway, spawned later, inherits it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return wanted
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft


def _commit() -> str | None:
    try:
        done = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None


def _uncommitted(paths: tuple[str, ...] = ("app", "migrations")) -> bool | None:
    """Whether the measured code differs from the commit (other work in the tree)."""
    try:
        done = subprocess.run(
            ["git", "status", "--porcelain", "--", *paths],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return bool(done.stdout.strip())


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


async def _bench(
    args: argparse.Namespace,
    server: GatewayProcess,
    auth_server: GatewayProcess | None,
    audit_server: GatewayProcess | None,
    results: BenchResults,
) -> None:
    # SIGTERM to the harness: unwind like Ctrl-C, so the gateway is still stopped properly.
    task = asyncio.current_task()
    if task is not None:
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)

    if MICRO_SCENARIO in args.scenarios:
        # Before the gateway exists, so nothing else of ours competes for the CPU.
        _progress(f"auth microbenchmark: {args.micro_iterations:,} calls per operation ...")
        results.auth_micro = await measure(args.micro_iterations)
        for name in ("jwt_verify", "authenticate_jwt", "authenticate_api_key", "rate_limit"):
            figure = results.auth_micro.get(name)
            if figure is not None:
                _progress(f"  {figure.label.strip()}: median {figure.median_us:.2f} us")
    if not any(name in GATEWAY_SCENARIOS for name in args.scenarios):
        return

    server.start()
    results.startup_seconds = await server.wait_ready()
    _progress(f"gateway ready on port {server.port} in {results.startup_seconds:.2f} s")
    await asyncio.sleep(IDLE_SECONDS)
    server.check_alive()
    results.idle_rss = server.rss_bytes()
    results.idle_peak_rss = server.peak_rss_bytes()

    run_tag = f"bench{os.getpid()}"  # client_order_id prefix: unique per run
    available = scenarios(run_tag)
    for name in args.scenarios:
        if name not in HTTP_SCENARIOS:
            continue
        results.http.append(await _load(args, server, available[name]))
        if name == "market" and auth_server is not None:
            await _auth_compare(args, auth_server, results)
        if name == "order" and audit_server is not None:
            unaudited = replace(
                available["order"],
                name=AUDIT_OFF_SCENARIO,
                label="POST /api/order (audit off)",
            )
            await _audit_compare(args, audit_server, unaudited, results)

    if "sse" in args.scenarios:
        for clients in args.sse_clients:
            _progress(f"SSE fan-out: {clients} clients, {args.sse_events} market events ...")
            fanout = await run_fanout(
                HOST,
                server.port,
                clients,
                args.sse_events,
                server_rss=server.rss_bytes,
                check_server=server.check_alive,
            )
            server.check_alive()
            results.sse.append(fanout)
            _progress(
                f"  {fanout.connected}/{clients} connected, all-clients delivery p50 "
                f"{fanout.all_clients_p50_ms or 0:.2f} ms, max {fanout.all_clients_max_ms or 0:.2f}"
                f" ms, {fanout.missing} missed"
            )


async def _load(args: argparse.Namespace, server: GatewayProcess, scenario: Scenario) -> LoadResult:
    """One HTTP scenario against `server`: warm-up, measured window, progress line."""
    _progress(f"{scenario.label}: {args.warmup:g} s warm-up + {args.duration:g} s ...")
    load = LoadRun(
        HOST,
        server.port,
        scenario,
        args.connections,
        args.warmup,
        args.duration,
        server.cpu_seconds,
    )
    result = await load.run()
    server.check_alive()
    result.server_rss_after = server.rss_bytes()
    latency = LatencySummary.from_ns(result.latencies_ns)
    _progress(
        f"  {result.successes_per_second:,.0f} req/s, p50 {latency.p50_ms or 0:.2f} ms, "
        f"p99 {latency.p99_ms or 0:.2f} ms, {result.errors} errors"
    )
    return result


async def _auth_compare(
    args: argparse.Namespace, auth_server: GatewayProcess, results: BenchResults
) -> None:
    """GET /api/market on a gateway with auth on: with a Bearer token, then with an API key.

    Measured right after the auth-off run, so both see the same state of the machine. The
    auth-on gateway is stopped afterwards (SIGTERM, as the main one), before the next scenario.
    """
    # Chosen now, not at start: the load runs since have used many ephemeral ports.
    auth_server.port = free_port()
    auth_server.start()
    results.auth_startup_seconds = await auth_server.wait_ready()
    _progress(
        f"auth-on gateway ready on port {auth_server.port} in {results.auth_startup_seconds:.2f} s"
    )
    token, api_key = await _credentials(auth_server.port)
    for scenario in (
        authenticated_market(
            "market-jwt", "GET /api/market (JWT)", "Authorization", f"Bearer {token}"
        ),
        authenticated_market("market-apikey", "GET /api/market (API key)", "X-API-Key", api_key),
    ):
        results.http.append(await _load(args, auth_server, scenario))
    _progress("stopping the auth-on gateway (SIGTERM) ...")
    results.auth_shutdown = auth_server.stop()


async def _audit_compare(
    args: argparse.Namespace,
    audit_server: GatewayProcess,
    scenario: Scenario,
    results: BenchResults,
) -> None:
    """POST /api/order on a gateway with the audit log off (auth off, like the main one).

    Measured right after the main gateway's order run, which had the audit log on, so both
    see the same state of the machine; then this gateway is stopped (SIGTERM).
    """
    audit_server.port = free_port()
    audit_server.start()
    results.audit_startup_seconds = await audit_server.wait_ready()
    _progress(
        f"audit-off gateway ready on port {audit_server.port} in "
        f"{results.audit_startup_seconds:.2f} s"
    )
    results.http.append(await _load(args, audit_server, scenario))
    _progress("stopping the audit-off gateway (SIGTERM) ...")
    results.audit_shutdown = audit_server.stop()


async def _credentials(port: int) -> tuple[str, str]:
    """An access token from POST /api/auth/login and an API key made with it, both checked."""
    status, body = await request_once(
        HOST,
        port,
        "POST",
        "/api/auth/login",
        json_body={"user_id": "admin", "password": BENCH_ADMIN_PASSWORD},
    )
    token = _field(status, body, 200, "access_token", "POST /api/auth/login")
    bearer = {"Authorization": f"Bearer {token}"}
    status, body = await request_once(
        HOST,
        port,
        "POST",
        "/api/auth/keys",
        bearer,
        json_body={"name": "bench", "permissions": ["read"]},
    )
    api_key = _field(status, body, 201, "api_key", "POST /api/auth/keys")
    # The load runs would count every refusal as an error; fail clearly before them instead.
    for headers in (bearer, {"X-API-Key": api_key}):
        status, body = await request_once(HOST, port, "GET", "/api/market", headers)
        if status != 200:
            raise ServerError(f"GET /api/market with {next(iter(headers))}: {status} {body!r}")
    return token, api_key


def _field(status: int, body: bytes, wanted: int, name: str, what: str) -> str:
    if status != wanted:
        raise ServerError(f"{what}: HTTP {status} {body[:200]!r}, expected {wanted}")
    try:
        value = json.loads(body)[name]
    except (ValueError, KeyError, TypeError) as exc:
        raise ServerError(f"{what}: no {name} in {body[:200]!r}") from exc
    if not isinstance(value, str) or not value:
        raise ServerError(f"{what}: {name} is not a non-empty string")
    return value


def _run(coro: Coroutine[Any, Any, None]) -> None:
    factory, _name = _loop_factory()
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(coro)


def _shown(path: Path) -> Path:
    """The path relative to the working directory when it lies below it."""
    with contextlib.suppress(ValueError):
        return path.resolve().relative_to(Path.cwd())
    return path


def _raise_interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    wanted_fds = max(args.sse_clients, default=0) + args.connections + FD_HEADROOM
    fd_limit = raise_fd_limit(wanted_fds)
    if fd_limit < wanted_fds:
        _progress(f"warning: descriptor limit {fd_limit} < {wanted_fds}; SSE runs may fail")
    # Outside the event loop (start-up, shutdown) SIGTERM unwinds like Ctrl-C as well.
    signal.signal(signal.SIGTERM, _raise_interrupt)

    results = BenchResults(
        meta={
            "started_at": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
            "commit": _commit(),
            "uncommitted_app_changes": _uncommitted(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            # Other work on the machine skews every figure; this shows whether there was any.
            "load_average_1m_at_start": round(os.getloadavg()[0], 2),
            "client_loop": _loop_factory()[1],
            "load_generator": "asyncio streams, closed loop (wrk is not used)",
            "connections": args.connections,
            "warmup_s": args.warmup,
            "duration_s": args.duration,
            "scenarios": args.scenarios,
            "sse_clients": args.sse_clients,
            "sse_events": args.sse_events,
            "auth_compare": args.auth_compare,
            "audit_compare": args.audit_compare,
            "micro_iterations": args.micro_iterations,
            "fd_limit": fd_limit,
        }
    )
    with (
        tempfile.TemporaryDirectory(prefix="veloz-bench-") as data_dir,
        tempfile.TemporaryDirectory(prefix="veloz-bench-auth-") as auth_data_dir,
        tempfile.TemporaryDirectory(prefix="veloz-bench-noaudit-") as audit_data_dir,
    ):
        server = GatewayProcess(args.python, REPO_ROOT, Path(data_dir), free_port())
        # Its port (0 until then) is chosen just before it starts, in _auth_compare.
        auth_server = (
            GatewayProcess(args.python, REPO_ROOT, Path(auth_data_dir), 0, AUTH_GATEWAY_SETTINGS)
            if args.auth_compare
            else None
        )
        audit_server = (
            GatewayProcess(args.python, REPO_ROOT, Path(audit_data_dir), 0, AUDIT_OFF_SETTINGS)
            if args.audit_compare
            else None
        )
        try:
            _run(_bench(args, server, auth_server, audit_server, results))
        except (KeyboardInterrupt, asyncio.CancelledError):
            results.error = "interrupted"
        except (ServerError, OSError, TimeoutError) as exc:
            results.error = f"{type(exc).__name__}: {exc}"
        finally:
            if server.started:
                _progress("stopping the gateway (SIGTERM) ...")
            results.shutdown = server.stop()
            if auth_server is not None and results.auth_shutdown is None:
                results.auth_shutdown = auth_server.stop()  # interrupted while it ran
            if audit_server is not None and results.audit_shutdown is None:
                results.audit_shutdown = audit_server.stop()
            results.meta["load_average_1m_at_end"] = round(os.getloadavg()[0], 2)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
        if results.shutdown is not None and not results.shutdown.clean:
            _progress(f"gateway log tail:\n{server.log_tail()}")
        auth_stop = results.auth_shutdown
        if auth_server is not None and auth_stop is not None and not auth_stop.clean:
            _progress(f"auth-on gateway log tail:\n{auth_server.log_tail()}")
        audit_stop = results.audit_shutdown
        if audit_server is not None and audit_stop is not None and not audit_stop.clean:
            _progress(f"audit-off gateway log tail:\n{audit_server.log_tail()}")

    print(render(results))
    write_json(results, args.output)
    print(f"\nResults written to {_shown(args.output)}")
    return 1 if results.error else 0


if __name__ == "__main__":
    sys.exit(main())
