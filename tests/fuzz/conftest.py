"""Gateways for schema fuzzing, run in-process through schemathesis' ASGI transport.

Every fuzzed gateway starts from a copy of one template data directory that already holds the
admin and a viewer user, so a new gateway costs no password hashing, and both roles' tokens
(signed with one shared secret) are valid on each of them. schemathesis starts an app's lifespan
on its own event-loop thread the first time the app is called and keeps it running;
`shutdown_lifespans` ends them when the module is done.
"""

from __future__ import annotations

import asyncio
import itertools
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from schemathesis.python import asgi

from app.core.config import Settings
from app.main import create_app

ADMIN_PASSWORD = "fuzz-admin-password"
VIEWER_PASSWORD = "fuzz-viewer-password"
JWT_SECRET = "fuzz-signing-secret-0123456789abcdef"


@dataclass(frozen=True)
class Callers:
    """Authorization headers per role, valid on every fuzzed gateway."""

    admin: dict[str, str]
    viewer: dict[str, str]

    def headers(self, role: str) -> dict[str, str]:
        headers: dict[str, str] = getattr(self, role)
        return headers


def fuzz_settings(data_dir: Path, tick_ms: int = 100) -> Settings:
    return Settings(
        data_dir=data_dir,
        auth_enabled=True,
        admin_password=ADMIN_PASSWORD,
        jwt_secret=JWT_SECRET,
        rate_limit_capacity=1_000_000_000,
        sim_seed=7,
        sim_tick_ms=tick_ms,  # 100 ms: the stream always has a next event to hand out
        log_level="critical",
        audit_queue_size=100_000,
    )


async def _make_template(data_dir: Path) -> Callers:
    """Run a gateway once: the admin exists, a viewer user is created, both log in."""
    app = create_app(fuzz_settings(data_dir))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            admin = await client.post(
                "/api/auth/login", json={"user_id": "admin", "password": ADMIN_PASSWORD}
            )
            assert admin.status_code == 200, admin.text
            admin_headers = {"Authorization": f"Bearer {admin.json()['access_token']}"}
            created = await client.post(
                "/api/auth/users",
                json={"user_id": "viewer", "password": VIEWER_PASSWORD, "roles": ["viewer"]},
                headers=admin_headers,
            )
            assert created.status_code == 201, created.text
            viewer = await client.post(
                "/api/auth/login", json={"user_id": "viewer", "password": VIEWER_PASSWORD}
            )
            assert viewer.status_code == 200, viewer.text
    return Callers(
        admin=admin_headers,
        viewer={"Authorization": f"Bearer {viewer.json()['access_token']}"},
    )


GatewayFactory = Callable[..., FastAPI]


@dataclass(frozen=True)
class FuzzGateways:
    """`shared` takes most operations; `scratch` takes those that change the gateway's own
    configuration or the caller's session (a fuzzed rate limit of 1, a logout of the caller's
    token), so they cannot starve the others; `new()` makes a fresh one (`quiet`: no market
    ticks, for call sequences that leave the stream out)."""

    shared: FastAPI
    scratch: FastAPI
    callers: Callers
    new: GatewayFactory


@pytest.fixture(scope="module")
def fuzz_gateways(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FuzzGateways]:
    root = tmp_path_factory.mktemp("fuzz")
    template = root / "template"
    callers = asyncio.run(_make_template(template))
    numbers = itertools.count()

    def new(quiet: bool = False) -> FastAPI:
        data_dir = root / f"gateway{next(numbers)}"
        shutil.copytree(template, data_dir)
        return create_app(fuzz_settings(data_dir, tick_ms=60_000 if quiet else 100))

    try:
        yield FuzzGateways(shared=new(), scratch=new(), callers=callers, new=new)
    finally:
        asgi.shutdown_lifespans()


@pytest.fixture(autouse=True)
def _node_id_for_schemathesis(request: pytest.FixtureRequest) -> None:
    """schemathesis' lazy-schema tests rename their node through `_nodeid`, an attribute pytest
    9 no longer has; give it one (the test id itself is unchanged)."""
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid
