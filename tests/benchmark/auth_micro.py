"""`python -m tests.benchmark.auth_micro`: the per-request cost of the identity layer, in-process.

Builds the real pieces (an `AuthService` on a temporary SQLite database, migrated as the gateway
does it, with an admin, a user and an API key made through the service's own methods) and times
each step of a request's authentication on its own with `time.perf_counter_ns`, one call at a
time. No HTTP, no event-loop scheduling. The HTTP comparison in `bench.py` also counts the rest
of the request's path (FastAPI reading the credential headers, the rate-limit response headers)
and second-order effects such as more allocation, so its per-request cost is higher.

`bench.py` runs it as the `auth-micro` scenario and stores the figures in its JSON results.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import jwt
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import SecretStr
from starlette.requests import Request

from app.api.security import require
from app.auth.permissions import READ_MARKET, Principal
from app.auth.service import AuthService
from app.core.config import Settings
from app.db.database import make_engine, migrate
from app.db.identity import IdentityRepository
from tests.benchmark.stats import percentile

DEFAULT_ITERATIONS = 20_000
WARMUP_CALLS = 1_000  # untimed calls first: caches, lazily built state, the allocator
ADMIN_PASSWORD = "bench-admin-password"  # a throw-away database
USER_ID = "bench-user"
USER_PASSWORD = "bench-user-password"
USER_ROLES = ["trader"]
KEY_PERMISSIONS = ["read"]
NEVER_REFUSE = 1_000_000_000  # rate-limit capacity and refill: every check is allowed


@dataclass(frozen=True, slots=True)
class MicroResult:
    """One measured operation; times in microseconds per call."""

    name: str  # key in the JSON results
    label: str  # as shown in the table
    iterations: int
    median_us: float
    p99_us: float
    mean_us: float
    min_us: float

    @classmethod
    def from_ns(cls, name: str, label: str, samples_ns: list[int]) -> MicroResult:
        ordered = sorted(samples_ns)
        return cls(
            name=name,
            label=label,
            iterations=len(ordered),
            median_us=(percentile(ordered, 50) or 0.0) / 1e3,
            p99_us=(percentile(ordered, 99) or 0.0) / 1e3,
            mean_us=sum(ordered) / len(ordered) / 1e3,
            min_us=ordered[0] / 1e3,
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "iterations": self.iterations,
            "median_us": round(self.median_us, 3),
            "p99_us": round(self.p99_us, 3),
            "mean_us": round(self.mean_us, 3),
            "min_us": round(self.min_us, 3),
        }


@dataclass
class MicroResults:
    iterations: int
    meta: dict[str, Any]
    results: list[MicroResult] = field(default_factory=list)

    def get(self, name: str) -> MicroResult | None:
        return next((r for r in self.results if r.name == name), None)

    def as_dict(self) -> dict[str, Any]:
        return {
            "iterations": self.iterations,
            "meta": self.meta,
            "results": {r.name: r.as_dict() for r in self.results},
        }


@dataclass(frozen=True, slots=True)
class AuthFixture:
    service: AuthService
    access_token: str  # for USER_ID (role trader)
    api_key: str  # raw key of USER_ID, permissions ["read"]
    key_id: str


def bench_settings(data_dir: Path) -> Settings:
    """Every setting the measured code reads is given here, so no VELOZ_* variable leaks in."""
    return Settings(
        data_dir=data_dir,
        auth_enabled=True,
        admin_password=SecretStr(ADMIN_PASSWORD),
        jwt_secret=SecretStr(""),
        api_key_secret=SecretStr(""),
        token_expiry=3600,
        refresh_rotation=False,
        rate_limit_capacity=NEVER_REFUSE,
        rate_limit_refill=float(NEVER_REFUSE),
    )


@contextlib.asynccontextmanager
async def auth_fixture(data_dir: Path) -> AsyncIterator[AuthFixture]:
    """A started `AuthService` with a user and an API key, stopped and disposed afterwards."""
    engine = make_engine(f"sqlite:///{(data_dir / 'identity.db').as_posix()}")
    try:
        migrate(engine)
        service = AuthService(bench_settings(data_dir), IdentityRepository(engine))
        await service.start()
        try:
            await service.create_user(USER_ID, USER_PASSWORD, USER_ROLES, by="bench")
            key, raw = await service.create_key(USER_ID, "bench", KEY_PERMISSIONS, None)
            token = service.tokens.issue_access(USER_ID)
            yield AuthFixture(service, token, raw, key.key_id)
        finally:
            await service.stop()
            # AuthService.stop() swallows a cancellation (Ctrl-C, the harness's SIGTERM) that
            # arrives while it awaits its own task; raise it again here.
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise asyncio.CancelledError
    finally:
        engine.dispose()


def time_calls(call: Callable[[], object], iterations: int, warmup: int) -> list[int]:
    """Nanoseconds of each of `iterations` calls, after `warmup` untimed ones."""
    for _ in range(warmup):
        call()
    gc.collect()  # start each measurement from the same collector state; it stays enabled
    clock = time.perf_counter_ns
    samples = [0] * iterations
    for index in range(iterations):
        start = clock()
        call()
        samples[index] = clock() - start
    return samples


async def time_awaited(
    call: Callable[[], Awaitable[object]], iterations: int, warmup: int
) -> list[int]:
    """As `time_calls`, for a coroutine function; awaited in place, so unless it suspends no
    event-loop scheduling is included, only the coroutine's creation."""
    for _ in range(warmup):
        await call()
    gc.collect()
    clock = time.perf_counter_ns
    samples = [0] * iterations
    for index in range(iterations):
        start = clock()
        await call()
        samples[index] = clock() - start
    return samples


class _Ignored:
    """Any attribute, any call: the runtime's other parts (metrics, ...) that the guard may
    touch; on the measured path (allowed, not limited) it only looks them up."""

    def __getattr__(self, _name: str) -> _Ignored:
        return self

    def __call__(self, *_args: object, **_kwargs: object) -> _Ignored:
        return self


class _StubRuntime(_Ignored):
    def __init__(self, auth: AuthService) -> None:
        self.auth = auth


def _request_for(service: AuthService) -> Request:
    """A request scope with what the guard reads: app.state.runtime.auth and scope state."""
    app = SimpleNamespace(state=SimpleNamespace(runtime=_StubRuntime(service)))
    scope: dict[str, Any] = {
        "type": "http",
        "method": "GET",
        "path": "/api/market",
        "headers": [],
        "app": app,
        "client": ("127.0.0.1", 50000),
        "state": {"client_ip": "127.0.0.1"},
    }
    return Request(scope)


def operations(fixture: AuthFixture) -> list[tuple[str, str, Callable[[], object]]]:
    """(name, label, call) for every measured operation, in table order."""
    service, token, raw_key = fixture.service, fixture.access_token, fixture.api_key
    codec = service.tokens
    claims = codec.verify_access(token)
    user_roles = service.roles_of(USER_ID)
    # Sanity: each call must succeed, or we would be timing the error path.
    assert service.authenticate(token, None).auth_method == "jwt"
    assert service.authenticate(None, raw_key).key_id == fixture.key_id
    assert service.limiter.check(f"user:{USER_ID}").allowed
    return [
        ("timer_overhead", "timer + empty call (subtract)", lambda: None),
        ("jwt_verify", "(a) TokenCodec.verify_access", lambda: codec.verify_access(token)),
        (
            "authenticate_jwt",
            "(b) authenticate, Bearer JWT",
            lambda: service.authenticate(token, None),
        ),
        (
            "authenticate_api_key",
            "(c) authenticate, X-API-Key",
            lambda: service.authenticate(None, raw_key),
        ),
        ("api_key_hmac", "    of which HMAC-SHA256 of the key", lambda: service._hash_key(raw_key)),
        (
            "rate_limit",
            "(d) rate_limit (RateLimiter.check)",
            lambda: service.limiter.check(f"user:{USER_ID}"),
        ),
        (
            "principal_of_roles",
            "(f) Principal.of, roles [trader]",
            lambda: Principal.of(
                USER_ID, user_roles, "jwt", token_jti=claims.jti, token_exp=claims.exp
            ),
        ),
        (
            "principal_of_legacy",
            "(f) Principal.of, legacy [read]",
            lambda: Principal.of(USER_ID, KEY_PERMISSIONS, "api_key", key_id=fixture.key_id),
        ),
    ]


def guard_calls(fixture: AuthFixture) -> list[tuple[str, str, Callable[[], Awaitable[object]]]]:
    """The route guard `require(read:market)` itself, awaited without FastAPI: authenticate,
    permission, rate limit and its headers. FastAPI's part (solving the dependencies, HTTPBearer
    and APIKeyHeader reading the headers) is not included."""
    guard = require(READ_MARKET)
    request = _request_for(fixture.service)
    bearer = HTTPAuthorizationCredentials(scheme="Bearer", credentials=fixture.access_token)
    return [
        ("guard_jwt", "guard awaited directly, JWT", lambda: guard(request, bearer, None)),
        (
            "guard_api_key",
            "guard awaited directly, API key",
            lambda: guard(request, None, fixture.api_key),
        ),
    ]


async def measure(iterations: int = DEFAULT_ITERATIONS, warmup: int = WARMUP_CALLS) -> MicroResults:
    results = MicroResults(
        iterations=iterations,
        meta={
            "python": platform.python_version(),
            "pyjwt": jwt.__version__,
            "load_average_1m_at_start": round(os.getloadavg()[0], 2),
            "warmup_calls": warmup,
            "clock": "time.perf_counter_ns around each call (a lambda), GC enabled",
        },
    )
    with tempfile.TemporaryDirectory(prefix="veloz-auth-micro-") as tmp:
        async with auth_fixture(Path(tmp)) as fixture:
            for name, label, call in operations(fixture):
                await asyncio.sleep(0)  # between operations, a pending cancellation can land
                samples = time_calls(call, iterations, warmup)
                results.results.append(MicroResult.from_ns(name, label, samples))
            guards = guard_calls(fixture)
            try:  # it reaches into the runtime, which changes more often than the service
                for _name, _label, guard in guards:
                    await guard()
            except Exception as exc:
                results.meta["guard_skipped"] = f"{type(exc).__name__}: {exc}"
                guards = []
            for name, label, guard in guards:
                await asyncio.sleep(0)
                samples = await time_awaited(guard, iterations, warmup)
                results.results.append(MicroResult.from_ns(name, label, samples))
    return results


def render(micro: MicroResults) -> list[str]:
    lines = [
        f"{'Auth microbenchmark (in-process)':<38} {'median us':>9} {'p99 us':>8} "
        f"{'mean us':>8} {'min us':>7}"
    ]
    for result in micro.results:
        lines.append(
            f"{result.label:<38} {result.median_us:>9.2f} {result.p99_us:>8.2f} "
            f"{result.mean_us:>8.2f} {result.min_us:>7.2f}"
        )
    lines.append(
        f"  {micro.iterations:,} timed calls each, after {micro.meta['warmup_calls']:,} untimed; "
        f"PyJWT {micro.meta['pyjwt']}, load average at start "
        f"{micro.meta['load_average_1m_at_start']:.2f}"
    )
    lines.append(
        "  guard = require(read:market) awaited directly: authenticate + permission + "
        "rate limit + headers, without FastAPI's dependency solving"
    )
    if "guard_skipped" in micro.meta:
        lines.append(f"  guard not measured: {micro.meta['guard_skipped']}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.benchmark.auth_micro",
        description="Time JWT verification, API-key lookup, rate limiting and Principal.of.",
    )
    parser.add_argument(
        "--iterations", type=int, default=DEFAULT_ITERATIONS, help="timed calls per operation"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    if args.iterations < 1:
        parser.error("--iterations must be positive")
    try:
        micro = asyncio.run(measure(args.iterations))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    print("\n".join(render(micro)))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(micro.as_dict(), indent=2) + "\n", encoding="utf-8")
        print(f"\nResults written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
