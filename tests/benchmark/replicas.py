"""`python -m tests.benchmark.replicas`: one replica against two, on PostgreSQL and Redis.

Starts a PostgreSQL and a Redis server on loopback (tests/servers.py), then measures:
GET /api/market and POST /api/order throughput on one replica, and the aggregate over two
replicas loaded at the same time (half the connections each; orders on the follower are
forwarded to the leader); and the latency one order adds when it is forwarded (one connection,
leader and follower in turn). Prints a table and writes bench-results/replicas.json. Figures
only: it never fails because of them. On a small machine the load generator and both replicas
share the same cores, which caps what a second replica can add.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.benchmark.loadgen import LoadResult, LoadRun, Scenario, scenarios
from tests.benchmark.server import HOST, GatewayProcess, free_port
from tests.benchmark.stats import LatencySummary
from tests.servers import PostgresServer, RedisServer

REPO_ROOT = Path(__file__).resolve().parents[2]
OUTPUT = REPO_ROOT / "bench-results" / "replicas.json"
PYTHON = str(REPO_ROOT / ".venv" / "bin" / "python")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmark.replicas")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--duration", type=float, default=8.0)
    return parser.parse_args()


async def _start(root: Path, name: str, env: dict[str, str]) -> GatewayProcess:
    data = root / name
    data.mkdir()
    server = GatewayProcess(PYTHON, REPO_ROOT, data, free_port(), env)
    server.start()
    await server.wait_ready()
    return server


async def _load(
    servers: list[GatewayProcess], scenario: Scenario, connections: int, args: argparse.Namespace
) -> dict[str, Any]:
    """Every server loaded at once, `connections` split evenly; successes summed."""
    each = max(1, connections // len(servers))
    runs = [
        LoadRun(HOST, s.port, scenario, each, args.warmup, args.duration, s.cpu_seconds)
        for s in servers
    ]
    results: list[LoadResult] = await asyncio.gather(*(run.run() for run in runs))
    latencies = [ns for result in results for ns in result.latencies_ns]
    summary = LatencySummary.from_ns(latencies)
    return {
        "replicas": len(servers),
        "connections": each * len(servers),
        "successes_per_s": round(sum(r.successes_per_second for r in results), 1),
        "errors": sum(r.errors for r in results),
        "error_kinds": {k: v for r in results for k, v in r.error_kinds.items()},
        "p50_ms": summary.p50_ms,
        "p99_ms": summary.p99_ms,
        "server_cpu_pct": [r.as_dict()["server_cpu_pct"] for r in results],
    }


async def _forwarding(
    leader: GatewayProcess, follower: GatewayProcess, args: argparse.Namespace, tag: str
) -> dict[str, Any]:
    """One connection, no other load: the order latency on the leader and on a follower."""
    figures: dict[str, Any] = {}
    for name, server in (("leader", leader), ("follower", follower)):
        scenario = scenarios(f"{tag}-{name}")["order"]
        run = LoadRun(HOST, server.port, scenario, 1, args.warmup / 2, args.duration / 2)
        result = await run.run()
        summary = LatencySummary.from_ns(result.latencies_ns)
        figures[name] = {"p50_ms": summary.p50_ms, "p99_ms": summary.p99_ms,
                         "errors": result.errors}  # fmt: skip
    figures["added_p50_ms"] = round(
        (figures["follower"]["p50_ms"] or 0) - (figures["leader"]["p50_ms"] or 0), 3
    )
    return figures


async def main() -> None:
    args = parse_args()
    postgres, redis = PostgresServer(), RedisServer()
    postgres.start()
    redis.start()
    results: dict[str, Any] = {"connections": args.connections, "duration_s": args.duration}
    try:
        with tempfile.TemporaryDirectory(prefix="veloz-bench-replicas-") as tmp:
            root = Path(tmp)
            env = {
                "VELOZ_DATABASE_URL": postgres.create_database(),
                "VELOZ_REDIS_URL": redis.url,
                "VELOZ_MASTER_KEY": "m" * 40,
            }
            leader = await _start(root, "a", env)
            tag = f"r{int(time.time())}"
            market = scenarios(tag)["market"]
            results["one"] = {
                "market": await _load([leader], market, args.connections, args),
                "order": await _load([leader], scenarios(tag + "-1")["order"], args.connections,
                                     args),
            }  # fmt: skip
            follower = await _start(root, "b", env)
            both = [leader, follower]
            results["two"] = {
                "market": await _load(both, market, args.connections, args),
                "order": await _load(both, scenarios(tag + "-2")["order"], args.connections, args),
            }
            results["forwarding"] = await _forwarding(leader, follower, args, tag)
            for server in both:
                server.stop()
    finally:
        redis.stop()
        postgres.stop()
    for scenario in ("market", "order"):
        one, two = results["one"][scenario], results["two"][scenario]
        print(
            f"{scenario:7} 1 replica {one['successes_per_s']:>8,.0f}/s (p50 {one['p50_ms']:.2f} ms)"
            f"   2 replicas {two['successes_per_s']:>8,.0f}/s (p50 {two['p50_ms']:.2f} ms)"
            f"   errors {one['errors']}/{two['errors']}"
        )
    forwarding = results["forwarding"]
    print(
        f"order latency, one connection: leader p50 {forwarding['leader']['p50_ms']:.2f} ms, "
        f"follower p50 {forwarding['follower']['p50_ms']:.2f} ms "
        f"(forwarding adds {forwarding['added_p50_ms']:.2f} ms)"
    )
    OUTPUT.parent.mkdir(exist_ok=True)
    OUTPUT.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
