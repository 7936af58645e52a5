"""Several `python -m app` replicas sharing one PostgreSQL database and one Redis (real servers
on loopback): one leader runs the engine, followers forward orders to it and stream its events
with the same ids; the leader's death loses nothing acknowledged."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from tests.binance_standin.server import serve_standin
from tests.conftest import PostgresServer, RedisServer
from tests.integration.conftest import GatewayServer, StartGateway, get_json
from tests.integration.sse_client import SseEvent, SseStream
from tests.servers import NginxBalancer

ROOT = Path(__file__).resolve().parents[2]
LEASE_MS = 2000  # short for quick takeovers, long enough for a busy machine's pauses
TAKEOVER_LIMIT = 10.0  # seconds: the lease, a renewal interval and the takeover itself, roomy

Replicas = Callable[..., Awaitable[list[GatewayServer]]]


@pytest.fixture
def start_replicas(
    start_gateway: StartGateway, postgres_server: PostgresServer, redis_url: str
) -> Replicas:
    """`await start_replicas(n, env)`: n gateways on one fresh database; the first leads."""

    async def start(count: int = 2, env: dict[str, str] | None = None) -> list[GatewayServer]:
        shared = {
            "VELOZ_DATABASE_URL": postgres_server.create_database(),
            "VELOZ_REDIS_URL": redis_url,
            "VELOZ_MASTER_KEY": "m" * 40,
            "VELOZ_LEADER_LEASE_MS": str(LEASE_MS),
            "VELOZ_SIM_TICK_MS": "50",
            **(env or {}),
        }
        servers = [await start_gateway(env=shared)]
        servers += await asyncio.gather(*(start_gateway(env=shared) for _ in range(count - 1)))
        return servers

    return start


async def leader_pid(redis_url: str) -> int | None:
    """The process id inside the lease holder's replica id (`<host>-<pid>-<random>`)."""
    redis = Redis.from_url(redis_url)
    try:
        holder = await redis.get("veloz:leader")
    finally:
        await redis.aclose()
    return None if holder is None else int(holder.decode().rsplit("-", 2)[1])


async def place(client: httpx.AsyncClient, cid: str, **fields: Any) -> httpx.Response:
    body = {"side": "BUY", "qty": 0.01, "price": 1000, "client_order_id": cid, **fields}
    return await client.post("/api/order", json=body)


def order_events(events: list[SseEvent], cid: str) -> list[tuple[int, str]]:
    return [(e.id, e.event) for e in events if e.data.get("client_order_id") == cid]


async def test_an_order_on_a_follower_is_everywhere_with_the_same_ids(
    start_replicas: Replicas, redis_url: str
) -> None:
    leader, follower = await start_replicas(2)
    assert await leader_pid(redis_url) == leader.pid
    on_leader = await SseStream.open(leader.port, "/api/stream?last_id=0")
    on_follower = await SseStream.open(follower.port, "/api/stream?last_id=0")
    try:
        async with follower.client() as client:
            placed = await place(client, "via-follower")
            assert placed.status_code == 200, placed.text
            assert placed.json() == {
                "ok": True,
                "client_order_id": "via-follower",
                "venue_order_id": "sim-1",
                "status": "ACCEPTED",
            }
            # Read-your-writes: the follower shows it as soon as it answered.
            state = await get_json(client, "/api/order_state", client_order_id="via-follower")
            assert (state["status"], state["order_qty"]) == ("ACCEPTED", 0.01)
            retry = await place(client, "via-follower")
            assert retry.json() == placed.json()
            clash = await place(client, "via-follower", qty=0.02)
            assert (clash.status_code, clash.json()["error"]) == (409, "duplicate_client_order_id")
        async with leader.client() as client:
            state = await get_json(client, "/api/order_state", client_order_id="via-follower")
            assert state["status"] == "ACCEPTED"
            assert (await place(client, "via-leader", price=900)).status_code == 200

        def wanted(event: SseEvent) -> bool:
            return event.event == "order_state" and event.data["client_order_id"] == "via-leader"

        seen_leader = await on_leader.events_until(wanted, timeout=10)
        seen_follower = await on_follower.events_until(wanted, timeout=10)
    finally:
        await on_leader.close()
        await on_follower.close()
    for cid in ("via-follower", "via-leader"):
        assert order_events(seen_leader, cid) == order_events(seen_follower, cid)
        assert order_events(seen_leader, cid), cid
    assert [e.raw for e in seen_leader] == [e.raw for e in seen_follower]
    async with follower.client() as client, leader.client() as lead:
        assert await get_json(client, "/api/orders_state") == await get_json(
            lead, "/api/orders_state"
        )
        history = await get_json(client, "/api/orders")
        assert history == await get_json(lead, "/api/orders")
        cancel = await client.post("/api/cancel", json={"client_order_id": "via-leader"})
        assert cancel.json() == {"ok": True, "client_order_id": "via-leader", "status": "CANCELLED"}
        again = await client.post("/api/cancel", json={"client_order_id": "via-leader"})
        assert (again.status_code, again.json()["error"]) == (409, "order_not_open")
        missing = await client.post("/api/cancel", json={"client_order_id": "nope"})
        assert (missing.status_code, missing.json()["error"]) == (404, "not_found")
        health = await get_json(client, "/api/health")
        assert health == {"ok": True, "engine": {"connected": True}}


async def test_last_event_id_resumes_on_another_replica(start_replicas: Replicas) -> None:
    first, second = await start_replicas(2)
    stream = await SseStream.open(first.port, "/api/stream?last_id=0")
    try:
        before = await stream.events_until(lambda e: e.id >= 30, timeout=10)
    finally:
        await stream.close()
    resume_at = before[-1].id
    stream = await SseStream.open(second.port, headers={"Last-Event-ID": str(resume_at)})
    try:
        after = await stream.events_until(lambda e: e.id >= resume_at + 20, timeout=10)
    finally:
        await stream.close()

    assert after[0].id == resume_at + 1  # no gap, no duplicate; contiguous is checked on read
    replay = await SseStream.open(second.port, "/api/stream?last_id=0")
    try:
        again = await replay.events_until(lambda e: e.id >= resume_at, timeout=10)
    finally:
        await replay.close()
    assert [e.raw for e in again if e.id > before[0].id - 1] == [e.raw for e in before]


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 5.0) -> bool:
    """True once `check()` is; False if it never was within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


async def test_settings_and_configuration_saved_on_one_replica_apply_on_all(
    start_replicas: Replicas,
) -> None:
    a, b = await start_replicas(2)
    async with a.client() as on_a, b.client() as on_b:
        saved = await on_a.post(
            "/api/settings", json={"section": "general", "data": {"language": "zh"}}
        )
        assert saved.status_code == 200, saved.text
        changed = await on_b.post("/api/config", json={"sse_max_clients": 7})
        assert changed.json()["applied"] == ["sse_max_clients"]

        async def b_has_settings() -> bool:
            return (await get_json(on_b, "/api/settings"))["general"]["language"] == "zh"

        async def a_has_config() -> bool:
            config = await get_json(on_a, "/api/config")
            return bool(config["effective"]["sse_max_clients"] == 7)

        assert await eventually(b_has_settings)
        assert await eventually(a_has_config)
        # A section merged on B keeps what A saved, and reaches A.
        merged = await on_b.post(
            "/api/settings", json={"section": "general", "data": {"theme": "dark"}}
        )
        assert merged.status_code == 200, merged.text

        async def a_has_both() -> bool:
            general = (await get_json(on_a, "/api/settings"))["general"]
            return bool((general["language"], general["theme"]) == ("zh", "dark"))

        assert await eventually(a_has_both)


async def test_exchange_keys_stored_through_a_follower_open_on_the_leader(
    start_replicas: Replicas,
) -> None:
    key, secret = "replica-venue-key", "replica-venue-secret-3c9d"
    async with serve_standin() as standin:
        standin.venue.add_account(key, secret, USDT="250", BTC="0")
        a, b = await start_replicas(2, {"VELOZ_BINANCE_TRADE_BASE_URL": standin.base_url})
        async with a.client() as on_a, b.client() as on_b:
            body = {"exchange": "binance", "apiKey": key, "apiSecret": secret}
            stored = await on_b.post("/api/exchange-keys", json=body)
            assert stored.status_code == 201, stored.text
            key_id = stored.json()["keyId"]

            listed = await get_json(on_a, "/api/exchange-keys")
            assert [(k["id"], k["exchange"]) for k in listed["keys"]] == [(key_id, "binance")]
            # The leader opens what the follower sealed: both have the same master key.
            tested = await on_a.post("/api/exchange-keys/test", json={"keyId": key_id})
            assert tested.status_code == 200, tested.text
            assert (tested.json()["success"], tested.json()["balance"]) == (True, {"USDT": 250.0})

            removed = await on_a.delete("/api/exchange-keys", params={"keyId": key_id})
            assert removed.status_code == 200, removed.text
            assert (await get_json(on_b, "/api/exchange-keys")) == {"keys": []}


async def test_a_key_changed_through_a_follower_trades_on_the_leader_at_once(
    start_replicas: Replicas,
) -> None:
    env_key, env_secret = "replica-env-key", "replica-env-secret-7a1f"
    new_key, new_secret = "replica-new-key", "replica-new-secret-5e2b"
    async with serve_standin() as standin:
        standin.venue.add_account(env_key, env_secret, USDT="1000", BTC="0")
        standin.venue.add_account(new_key, new_secret, USDT="1000", BTC="0")
        a, b = await start_replicas(2, {
            "VELOZ_EXECUTION_MODE": "binance_testnet_spot",
            "VELOZ_BINANCE_TRADE_BASE_URL": standin.base_url,
            "VELOZ_BINANCE_WS_API_URL": standin.ws_api_url,
            "VELOZ_BINANCE_API_KEY": env_key,
            "VELOZ_BINANCE_API_SECRET": env_secret,
        })  # fmt: skip

        def trading_as(key: str) -> Callable[[], Awaitable[bool]]:
            async def check() -> bool:  # the leader's stream follows its REST credentials
                return standin.subscribed(key) and len(standin.subscriptions) == 1

            return check

        async def signed_with(client: httpx.AsyncClient, cid: str) -> str:
            placed = await place(client, cid, symbol="BTCUSDT", qty=0.001, price=100)
            assert placed.status_code == 200, placed.text
            assert placed.json()["ok"] is True, placed.text
            return next(key for key, order_cid in standin.venue.orders if order_cid == cid)

        async with a.client() as on_a, b.client() as on_b:
            assert await eventually(trading_as(env_key), TAKEOVER_LIMIT)
            assert await signed_with(on_b, "env-1") == env_key

            body = {"exchange": "binance", "apiKey": new_key, "apiSecret": new_secret}
            created = await on_b.post("/api/exchange-keys", json=body)
            assert created.status_code == 201, created.text
            assert await eventually(trading_as(new_key))
            assert await signed_with(on_b, "new-1") == new_key
            assert await signed_with(on_a, "new-2") == new_key

            removed = await on_b.delete(
                "/api/exchange-keys", params={"keyId": created.json()["keyId"]}
            )
            assert removed.status_code == 200, removed.text
            assert await eventually(trading_as(env_key))
            assert await signed_with(on_b, "env-2") == env_key


async def test_identity_is_shared_by_replicas(start_replicas: Replicas) -> None:
    admin_password = "admin-password-1"
    a, b = await start_replicas(
        2,
        {
            "VELOZ_AUTH_ENABLED": "true",
            "VELOZ_ADMIN_PASSWORD": admin_password,
            "VELOZ_JWT_SECRET": "s" * 40,
            "VELOZ_API_KEY_SECRET": "k" * 40,
            "VELOZ_RATE_LIMIT_CAPACITY": "6",
            "VELOZ_RATE_LIMIT_REFILL": "0.001",
        },
    )
    async with a.client() as on_a, b.client() as on_b:
        login = await on_a.post(
            "/api/auth/login", json={"user_id": "admin", "password": admin_password}
        )
        admin = {"Authorization": f"Bearer {login.json()['access_token']}"}
        created = await on_a.post(
            "/api/auth/users",
            json={"user_id": "carol", "password": "carol-password", "roles": ["trader"]},
            headers=admin,
        )
        assert created.status_code == 201, created.text
        # B learns of the new user from the database once A announced the change.
        carol: list[httpx.Response] = []

        async def b_lets_carol_in() -> bool:
            carol.append(
                await on_b.post(
                    "/api/auth/login", json={"user_id": "carol", "password": "carol-password"}
                )
            )
            return carol[-1].status_code == 200

        assert await eventually(b_lets_carol_in), carol[-1].text
        tokens = carol[-1].json()
        headers = {"Authorization": f"Bearer {tokens['access_token']}"}

        statuses = [
            (await client.get("/api/account", headers=headers)).status_code
            for client in itertools.islice(itertools.cycle((on_a, on_b)), 8)
        ]
        assert statuses == [200] * 6 + [429] * 2  # one budget of 6 for carol, not 6 each

        logout = await on_b.post(
            "/api/auth/logout", json={"refresh_token": tokens["refresh_token"]}, headers=headers
        )
        assert logout.status_code == 200, logout.text
        refused = await on_a.get("/api/account", headers=headers)
        assert (refused.status_code, refused.json()["error"]) == (401, "invalid_token")


async def test_killing_the_leader_under_load_loses_no_acknowledged_order(
    start_replicas: Replicas, redis_url: str
) -> None:
    leader, follower = await start_replicas(2, {"VELOZ_LOG_LEVEL": "info"})
    acknowledged: set[str] = set()
    refused: list[int] = []
    numbers = itertools.count()
    stop = asyncio.Event()
    killed = asyncio.Event()
    goal = {"acknowledged": 40}
    reached = asyncio.Event()

    async def trader(server: GatewayServer) -> None:
        async with server.client(timeout=15) as client:
            while not stop.is_set():
                cid = f"load-{next(numbers)}"
                try:
                    response = await place(client, cid, price=10 + next(numbers) % 50)
                except httpx.TransportError:
                    if server is leader and killed.is_set():
                        return  # the process is gone
                    raise
                if response.status_code == 200:
                    acknowledged.add(cid)
                    if len(acknowledged) >= goal["acknowledged"]:
                        reached.set()
                else:
                    assert response.status_code == 503, response.text
                    assert response.json()["error"] == "engine_unavailable"
                    refused.append(response.status_code)

    traders = [asyncio.create_task(trader(s)) for s in (leader, follower, leader, follower)]

    async def until_reached() -> None:
        """Wait for the goal; a trader's failure is raised at once, not after a timeout."""
        waiter = asyncio.create_task(reached.wait())
        pending = {waiter, *traders}
        while waiter in pending:
            done, pending = await asyncio.wait(pending, timeout=30, return_when="FIRST_COMPLETED")
            assert done, (
                f"{len(acknowledged)} acknowledged, goal {goal['acknowledged']}; logs:\n"
                f"{leader.log_text()[-3000:]}\n---\n{follower.log_text()[-3000:]}"
            )
            for task in done - {waiter}:
                task.result()

    await until_reached()
    leader.kill()  # SIGKILL: no goodbye, the lease simply stops being renewed
    killed.set()
    killed_at = time.monotonic()
    acknowledged_before_kill = len(acknowledged)
    while await leader_pid(redis_url) != follower.pid:
        assert time.monotonic() - killed_at < TAKEOVER_LIMIT, "no replica took over"
        await asyncio.sleep(0.05)
    took_over = time.monotonic() - killed_at
    reached.clear()
    goal["acknowledged"] = len(acknowledged) + 20
    await until_reached()
    stop.set()
    await asyncio.gather(*traders)

    async with follower.client() as client:
        states = {
            o["client_order_id"]: o for o in (await get_json(client, "/api/orders_state"))["items"]
        }
        health = await get_json(client, "/api/health")
    lost = sorted(acknowledged - set(states))
    assert lost == [], f"acknowledged but lost: {lost}"
    assert all(states[cid]["status"] == "ACCEPTED" for cid in acknowledged)
    assert health["engine"] == {"connected": True}
    assert acknowledged_before_kill >= 40
    print(f"takeover after {took_over:.2f}s; {len(refused)} orders refused meanwhile")


async def test_replicas_recover_when_redis_restarts_empty(
    start_replicas: Replicas, redis_server: RedisServer
) -> None:
    leader, follower = await start_replicas(2)
    async with follower.client() as client:
        assert (await place(client, "before")).json()["ok"] is True
    redis_server.flush()  # as a restart without persistence: no lease, queue or stream

    # One replica leads again (the old leader, or the follower with a new epoch while the old
    # one stops itself), and a follower's or leader's order goes through.
    async def follower_takes_orders() -> bool:
        async with follower.client() as client:
            response = await place(client, f"after-{time.monotonic_ns()}")
        return response.status_code == 200 and response.json()["ok"] is True

    assert await eventually(follower_takes_orders, timeout=15)
    async with follower.client() as client:
        state = await get_json(client, "/api/order_state", client_order_id="before")
    assert state["status"] == "ACCEPTED"
    if not leader.running():
        assert await leader.wait_exit(1) == 70  # fenced, as documented


@pytest.fixture
async def balancer() -> AsyncIterator[Callable[[list[GatewayServer]], NginxBalancer]]:
    """nginx with deploy/nginx/replicas.conf in front of the given replicas."""
    started: list[NginxBalancer] = []

    def start(servers: list[GatewayServer]) -> NginxBalancer:
        nginx = NginxBalancer(
            ROOT / "deploy" / "nginx" / "replicas.conf", [s.port for s in servers]
        )
        started.append(nginx)
        nginx.start()
        return nginx

    yield start
    for nginx in started:
        nginx.stop()


async def test_through_the_profile_load_balancer(
    start_replicas: Replicas, balancer: Callable[[list[GatewayServer]], NginxBalancer]
) -> None:
    servers = await start_replicas(2)
    nginx = balancer(servers)
    stream = await SseStream.open(nginx.port, "/api/stream?last_id=0")
    try:
        assert stream.status == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        async with httpx.AsyncClient(base_url=nginx.url, timeout=10) as client:
            for n in range(4):  # round robin: both replicas take orders
                placed = await place(client, f"lb-{n}")
                assert placed.status_code == 200, placed.text
        seen = await stream.events_until(
            lambda e: e.data.get("client_order_id") == "lb-3" and e.event == "order_state",
            timeout=10,
        )
    finally:
        await stream.close()
    assert {e.data.get("client_order_id") for e in seen} >= {"lb-0", "lb-1", "lb-2", "lb-3"}
    # Reconnecting through the balancer lands on either replica and continues exactly.
    for _ in range(2):
        resumed = await SseStream.open(nginx.port, headers={"Last-Event-ID": str(seen[-1].id)})
        try:
            after = await resumed.events_until(lambda e: e.id >= seen[-1].id + 5, timeout=10)
        finally:
            await resumed.close()
        assert after[0].id == seen[-1].id + 1
