"""Shared fixtures: settings isolated from the environment, and an app running its lifespan."""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.core.config import Settings
from app.engine.sim import SimEngine
from app.main import create_app
from app.runtime import Runtime
from tests.servers import PostgresServer, RedisServer


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never see the developer's VELOZ_* variables."""
    for name in list(os.environ):
        if name.startswith("VELOZ_"):
            monkeypatch.delenv(name)


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    def build(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "data_dir": tmp_path / "data",
            "sim_seed": 7,
            "sim_tick_ms": 60_000,  # tests move the market by hand
        }
        values.update(overrides)
        return Settings(**values)

    return build


@dataclass
class Gateway:
    """An app with its lifespan running, and an HTTP client speaking to it in-process."""

    app: FastAPI
    client: httpx.AsyncClient

    @property
    def runtime(self) -> Runtime:
        runtime: Runtime = self.app.state.runtime
        return runtime

    def move_market(self, price: str, symbol: str = "BTCUSDT") -> None:
        """Set the simulated price, as a market tick would, and match what it reaches."""
        engine = self.runtime.engine
        assert isinstance(engine, SimEngine)
        events = engine.exchange.on_price(symbol, Decimal(price), time.time_ns())
        self.runtime.bus.publish_many(events)


@asynccontextmanager
async def running_gateway(settings: Settings) -> AsyncIterator[Gateway]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            yield Gateway(app, client)


@pytest.fixture
async def gateway(make_settings: Callable[..., Settings]) -> AsyncIterator[Gateway]:
    async with running_gateway(make_settings()) as running:
        yield running


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the whole run; each test asks it for a fresh database."""
    server = PostgresServer()
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One redis-server for the whole run; `redis_url` empties it for each test."""
    server = RedisServer()
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    redis_server.flush()
    return redis_server.url


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """A new, empty PostgreSQL database."""
    return postgres_server.create_database()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The same test on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'stores.db'}"
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return server.create_database()
