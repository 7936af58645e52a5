"""The collected results, the end-of-run table, the targets, and latest.json."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.benchmark.auth_micro import MicroResults
from tests.benchmark.auth_micro import render as render_micro
from tests.benchmark.loadgen import LoadResult
from tests.benchmark.server import StopResult
from tests.benchmark.sse import FanoutResult
from tests.benchmark.stats import LatencySummary, round_ms

MB = 1024 * 1024

# The product's targets. They are compared and printed, never enforced.
TARGET_HTTP_RPS = 10_000
TARGET_ORDERS_PER_S = 1_000
TARGET_SSE_CLIENTS = 1_000
TARGET_IDLE_RSS_MB = 50.0

# Above this share of one core the load generator itself may be what limits the figures.
CLIENT_SATURATION_PCT = 90.0
LABEL_WIDTH = 25  # "GET /api/market (API key)"; wider labels widen the column

# GET /api/market with auth off (the main gateway) and on (the second one): (key, scenario, label)
AUTH_MODES = (
    ("off", "market", "auth off"),
    ("jwt", "market-jwt", "Bearer JWT"),
    ("api_key", "market-apikey", "X-API-Key"),
)
# POST /api/order with the audit log on (the main gateway, the default) and off (a third one).
AUDIT_OFF_SCENARIO = "order-noaudit"
AUDIT_MODES = (
    ("on", "order", "audit on"),
    ("off", AUDIT_OFF_SCENARIO, "audit off"),
)


@dataclass
class Target:
    name: str
    target: str
    measured: str
    met: bool | None  # None: not measured in this run

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "target": self.target,
            "measured": self.measured,
            "met": self.met,
        }


@dataclass
class BenchResults:
    meta: dict[str, Any]
    startup_seconds: float | None = None
    idle_rss: int | None = None
    idle_peak_rss: int | None = None
    http: list[LoadResult] = field(default_factory=list)
    sse: list[FanoutResult] = field(default_factory=list)
    shutdown: StopResult | None = None
    error: str | None = None
    auth_micro: MicroResults | None = None
    auth_startup_seconds: float | None = None  # the second gateway, started with auth on
    auth_shutdown: StopResult | None = None
    audit_startup_seconds: float | None = None  # the third gateway, started with audit off
    audit_shutdown: StopResult | None = None

    def targets(self) -> list[Target]:
        return [self._http_target(), self._orders_target(), self._sse_target(), self._rss_target()]

    def _http(self, name: str) -> LoadResult | None:
        return next((r for r in self.http if r.scenario == name), None)

    def _http_target(self) -> Target:
        # "Total" throughput: all connections together, on the cheapest endpoint (GET /health),
        # which is the gateway's HTTP ceiling. The other endpoints are in the table above.
        name = "HTTP throughput, GET /health"
        result = self._http("health")
        if result is None:
            return Target(name, f"> {TARGET_HTTP_RPS:,} req/s", "not run", None)
        rps = result.successes_per_second
        return Target(
            name, f"> {TARGET_HTTP_RPS:,} req/s", f"{rps:,.0f} req/s", rps > TARGET_HTTP_RPS
        )

    def _orders_target(self) -> Target:
        name = "Orders, POST /api/order"
        result = self._http("order")
        if result is None:
            return Target(name, f"> {TARGET_ORDERS_PER_S:,} orders/s", "not run", None)
        rate = result.successes_per_second
        return Target(
            name,
            f"> {TARGET_ORDERS_PER_S:,} orders/s",
            f"{rate:,.0f} orders/s",
            rate > TARGET_ORDERS_PER_S,
        )

    def _sse_target(self) -> Target:
        name = "SSE clients served"
        wanted = f"{TARGET_SSE_CLIENTS:,} clients"
        runs = [r for r in self.sse if r.clients >= TARGET_SSE_CLIENTS]
        if not runs:
            return Target(name, wanted, "not run", None)
        best = max(runs, key=lambda r: r.clients)
        measured = f"{best.connected:,}/{best.clients:,} connected, {best.missing} missed"
        return Target(name, wanted, measured, best.complete)

    def _rss_target(self) -> Target:
        name = "Idle RSS"
        if self.idle_rss is None:
            return Target(name, f"< {TARGET_IDLE_RSS_MB:.0f} MB", "not measured", None)
        mb = self.idle_rss / MB
        return Target(
            name, f"< {TARGET_IDLE_RSS_MB:.0f} MB", f"{mb:.1f} MB", mb < TARGET_IDLE_RSS_MB
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "meta": self.meta,
            "startup": {
                "ready_s": _round(self.startup_seconds, 3),
                "idle_rss_bytes": self.idle_rss,
                "idle_peak_rss_bytes": self.idle_peak_rss,
            },
            "http": [r.as_dict() for r in self.http],
            "sse": [r.as_dict() for r in self.sse],
            "targets": [t.as_dict() for t in self.targets()],
            "shutdown": self.shutdown.as_dict() if self.shutdown else None,
            "auth_compare": self.auth_compare(),
            "audit_compare": self.audit_compare(),
            "auth_micro": self.auth_micro.as_dict() if self.auth_micro else None,
            "error": self.error,
        }

    def _runs(self, modes: Sequence[tuple[str, str, str]]) -> list[tuple[str, str, LoadResult]]:
        """(key, label, run) for each mode of a comparison that was measured."""
        runs = []
        for key, scenario, label in modes:
            run = self._http(scenario)
            if run is not None:
                runs.append((key, label, run))
        return runs

    def auth_runs(self) -> list[tuple[str, str, LoadResult]]:
        """GET /api/market for each auth mode that was measured."""
        return self._runs(AUTH_MODES)

    def audit_runs(self) -> list[tuple[str, str, LoadResult]]:
        """POST /api/order with the audit log on and off, as far as measured."""
        return self._runs(AUDIT_MODES)

    def auth_compare(self) -> dict[str, Any] | None:
        runs = self.auth_runs()
        if not any(key != "off" for key, _, _ in runs):
            return None
        market, relative = _comparison(runs, "off")
        return {
            "gateway": {
                "ready_s": _round(self.auth_startup_seconds, 3),
                "shutdown": self.auth_shutdown.as_dict() if self.auth_shutdown else None,
            },
            "market": market,
            "relative_to_off": relative,
        }

    def audit_compare(self) -> dict[str, Any] | None:
        runs = self.audit_runs()
        if not any(key == "off" for key, _, _ in runs):
            return None
        order, relative = _comparison(runs, "off")
        return {
            "gateway": {
                "settings": {"VELOZ_AUDIT_LOG_ENABLED": "false"},
                "ready_s": _round(self.audit_startup_seconds, 3),
                "shutdown": self.audit_shutdown.as_dict() if self.audit_shutdown else None,
            },
            "order": order,
            "relative_to_off": relative,
        }


def _comparison(
    runs: Sequence[tuple[str, str, LoadResult]], base_key: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Each mode's figures, and every other mode relative to `base_key`."""
    base = next((run for key, _, run in runs if key == base_key), None)
    figures: dict[str, Any] = {}
    relative: dict[str, Any] = {}
    for key, label, run in runs:
        latency = LatencySummary.from_ns(run.latencies_ns)
        figures[key] = {
            "label": label,
            "successes_per_s": round(run.successes_per_second, 1),
            "p50_ms": round_ms(latency.p50_ms),
            "p99_ms": round_ms(latency.p99_ms),
            "errors": run.errors,
            "server_cpu_us_per_request": _round(server_cpu_us(run), 1),
            "load_average_1m_at_start": run.load_average_1m,
        }
        if key != base_key and base is not None:
            relative[key] = _relative(run, base)
    return figures, relative


def server_cpu_us(run: LoadResult) -> float | None:
    """Gateway CPU time per answered request over the window, in microseconds.

    Less sensitive than req/s to other load on the machine: it counts only the gateway's work.
    """
    if run.server_cpu_seconds is None or not run.responses:
        return None
    return 1e6 * run.server_cpu_seconds / run.responses


def _relative(run: LoadResult, base: LoadResult) -> dict[str, Any]:
    latency, base_latency = (
        LatencySummary.from_ns(run.latencies_ns),
        LatencySummary.from_ns(base.latencies_ns),
    )
    rps, base_rps = run.successes_per_second, base.successes_per_second
    cpu, base_cpu = server_cpu_us(run), server_cpu_us(base)
    return {
        "throughput_ratio": round(rps / base_rps, 3) if base_rps else None,
        "throughput_change_pct": round(100 * (rps / base_rps - 1), 1) if base_rps else None,
        "p50_delta_ms": _delta(latency.p50_ms, base_latency.p50_ms),
        "p99_delta_ms": _delta(latency.p99_ms, base_latency.p99_ms),
        "server_cpu_delta_us_per_request": (
            round(cpu - base_cpu, 1) if cpu is not None and base_cpu is not None else None
        ),
    }


def _delta(value: float | None, base: float | None) -> float | None:
    return None if value is None or base is None else round(value - base, 3)


def write_json(results: BenchResults, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results.as_dict(), indent=2) + "\n", encoding="utf-8")


def render(results: BenchResults) -> str:
    meta = results.meta
    lines = [
        "",
        f"veloz-gateway benchmark  {meta['started_at']}  commit {meta.get('commit') or '?'}"
        + (
            " + uncommitted changes in app/ or migrations/"
            if meta.get("uncommitted_app_changes")
            else ""
        ),
        f"  {meta['cpus']} CPUs, Python {meta['python']}, client loop {meta['client_loop']}, "
        f"{meta['connections']} connections, {meta['warmup_s']:g} s warm-up + "
        f"{meta['duration_s']:g} s per HTTP scenario",
        f"  load average at start {meta['load_average_1m_at_start']:.2f}"
        + (
            f", at end {meta['load_average_1m_at_end']:.2f}"
            if meta.get("load_average_1m_at_end") is not None
            else ""
        )
        + " (other busy processes make every figure worse)",
        "",
        "Startup",
        f"  first 200 on /health  {_fmt(results.startup_seconds, '{:.2f} s')}",
        f"  idle RSS (after 2 s)  {_mb(results.idle_rss)}",
    ]
    if results.auth_startup_seconds is not None:
        lines.append(
            f"  auth-on gateway       {_fmt(results.auth_startup_seconds, '{:.2f} s')} "
            "(second process, for the auth comparison)"
        )
    if results.audit_startup_seconds is not None:
        lines.append(
            f"  audit-off gateway     {_fmt(results.audit_startup_seconds, '{:.2f} s')} "
            "(third process, for the audit comparison)"
        )
    if results.http:
        lines += ["", *_http_table(results.http)]
    if results.auth_compare() is not None:
        lines += ["", *_auth_table(results.auth_runs())]
    if results.audit_compare() is not None:
        lines += ["", *_audit_table(results.audit_runs())]
    if results.sse:
        lines += ["", *_sse_table(results.sse)]
    if results.auth_micro is not None:
        lines += ["", *render_micro(results.auth_micro)]
    lines += ["", *_targets_table(results.targets())]
    lines += _shutdown_lines("Shutdown", results.shutdown)
    lines += _shutdown_lines("Shutdown of the auth-on gateway", results.auth_shutdown)
    lines += _shutdown_lines("Shutdown of the audit-off gateway", results.audit_shutdown)
    if results.error:
        lines += ["", f"Run stopped early: {results.error}"]
    return "\n".join(lines)


def _shutdown_lines(title: str, stop: StopResult | None) -> list[str]:
    if stop is None:
        return []
    if stop.already_exited:
        return ["", f"{title}: the gateway had already exited (code {stop.exit_code})"]
    verdict = "clean" if stop.clean else "NOT clean"
    return [
        "",
        f"{title} (SIGTERM): {verdict}, exit code {stop.exit_code}, {stop.seconds:.2f} s"
        + (", had to SIGKILL" if stop.killed else ""),
    ]


def _compare_table(
    title: str,
    rate: str,
    runs: Sequence[tuple[str, str, LoadResult]],
    base_key: str,
    base_label: str,
) -> list[str]:
    """One row per mode: rate, latency, errors, gateway CPU per request, load, delta to base."""
    lines = [
        f"{title:<16} {rate:>8} {'p50 ms':>7} {'p99 ms':>7} {'errors':>7} "
        f"{'srv CPU us/req':>14} {'load 1m':>7}  vs {base_label}"
    ]
    base = next((run for key, _, run in runs if key == base_key), None)
    for key, label, run in runs:
        latency = LatencySummary.from_ns(run.latencies_ns)
        versus = "-"
        if key != base_key and base is not None:
            rel = _relative(run, base)
            versus = (
                f"{_fmt(rel['throughput_change_pct'], '{:+.1f}')}% {rate}, "
                f"p50 {_fmt(rel['p50_delta_ms'], '{:+.2f}')} ms, "
                f"p99 {_fmt(rel['p99_delta_ms'], '{:+.2f}')} ms, "
                f"CPU {_fmt(rel['server_cpu_delta_us_per_request'], '{:+.0f}')} us/req"
            )
        lines.append(
            f"{label:<16} {run.successes_per_second:>8,.0f} "
            f"{_fmt(latency.p50_ms, '{:.2f}'):>7} {_fmt(latency.p99_ms, '{:.2f}'):>7} "
            f"{run.errors:>7,} {_fmt(server_cpu_us(run), '{:.0f}'):>14} "
            f"{_fmt(run.load_average_1m, '{:.2f}'):>7}  {versus}"
        )
    return lines


def _auth_table(runs: Sequence[tuple[str, str, LoadResult]]) -> list[str]:
    lines = _compare_table("GET /api/market", "req/s", runs, "off", "auth off")
    lines.append(
        "  auth off = the main gateway; JWT and API key = a second gateway with "
        "VELOZ_AUTH_ENABLED=true and a limiter that never refuses, measured right after"
    )
    return lines


def _audit_table(runs: Sequence[tuple[str, str, LoadResult]]) -> list[str]:
    lines = _compare_table("POST /api/order", "orders/s", runs, "off", "audit off")
    lines.append(
        "  audit on = the main gateway (the default); audit off = a third gateway with "
        "VELOZ_AUDIT_LOG_ENABLED=false, measured right after; auth off in both"
    )
    return lines


def _http_table(runs: Sequence[LoadResult]) -> list[str]:
    width = max(LABEL_WIDTH, *(len(run.label) for run in runs))
    header = (
        f"{'HTTP':<{width}} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'p99.9 ms':>8} "
        f"{'errors':>7} {'srv CPU':>7} {'cli CPU':>7} {'srv RSS':>9}"
    )
    lines = [header]
    notes = []
    for run in runs:
        latency = LatencySummary.from_ns(run.latencies_ns)
        window = run.window_seconds
        client_pct = 100 * run.client_cpu_seconds / window if window else 0.0
        server_pct = (
            100 * run.server_cpu_seconds / window
            if window and run.server_cpu_seconds is not None
            else None
        )
        lines.append(
            f"{run.label:<{width}} {run.successes_per_second:>8,.0f} "
            f"{_fmt(latency.p50_ms, '{:.2f}'):>7} {_fmt(latency.p99_ms, '{:.2f}'):>7} "
            f"{_fmt(latency.p999_ms, '{:.2f}'):>8} "
            f"{run.errors:>7,} {_fmt(server_pct, '{:.0f}%'):>7} {client_pct:>6.0f}% "
            f"{_mb(run.server_rss_after):>9}"
        )
        if run.error_kinds:
            kinds = ", ".join(f"{kind} x{n}" for kind, n in run.error_kinds.most_common(4))
            notes.append(f"  {run.label} errors: {kinds}")
        if client_pct >= CLIENT_SATURATION_PCT:
            notes.append(
                f"  {run.label}: the load generator used {client_pct:.0f}% of a core; "
                "it may be the bottleneck"
            )
    lines.append(
        "  req/s counts successful responses; latency is per request under closed-loop load "
        f"({runs[0].connections} in flight)"
    )
    return lines + notes


def _sse_table(runs: Sequence[FanoutResult]) -> list[str]:
    header = (
        f"{'SSE fan-out':<12} {'connected':>11} {'connect s':>9} {'events':>6} "
        f"{'all p50 ms':>10} {'all max ms':>10} {'median ms':>9} {'missed':>6} {'srv RSS':>9}"
    )
    lines = [header]
    for run in runs:
        lines.append(
            f"{f'{run.clients:,} clients':<12} {f'{run.connected:,}/{run.clients:,}':>11} "
            f"{run.connect_seconds:>9.2f} {len(run.deliveries):>6} "
            f"{_fmt(run.all_clients_p50_ms, '{:.2f}'):>10} "
            f"{_fmt(run.all_clients_max_ms, '{:.2f}'):>10} "
            f"{_fmt(run.median_client_p50_ms, '{:.2f}'):>9} {run.missing:>6} "
            f"{_mb(run.server_rss_connected):>9}"
        )
        for kind, count in run.failure_kinds.most_common(3):
            lines.append(f"  {run.clients} clients, failed to connect: {kind} x{count}")
    lines.append(
        "  all = time for one market event to reach every client (receive - ts_ns), over the "
        "events; median = the median client"
    )
    return lines


def _targets_table(targets: Sequence[Target]) -> list[str]:
    lines = [f"{'Target':<30} {'wanted':<20} {'measured':<34} result"]
    for target in targets:
        verdict = {True: "met", False: "MISSED", None: "-"}[target.met]
        lines.append(f"{target.name:<30} {target.target:<20} {target.measured:<34} {verdict}")
    return lines


def _fmt(value: float | None, pattern: str) -> str:
    return "-" if value is None else pattern.format(value)


def _mb(value: int | None) -> str:
    return "-" if value is None else f"{value / MB:.1f} MB"


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)
