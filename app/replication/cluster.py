"""One replica's part in a group of gateways sharing PostgreSQL and Redis (VELOZ_REDIS_URL).

Exactly one replica, the holder of the leader lease, runs the engine and writes the state;
the others follow its event stream and forward orders and cancels to it. When the leader
stops renewing its lease, another replica takes the lease, catches up from the stream and the
database, and leads from there.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from typing import TYPE_CHECKING, Any

from redis.asyncio import Redis

from app.core.errors import ApiError
from app.db.config import ConfigRepository
from app.events.bus import Event
from app.replication.changes import ChangeFeed
from app.replication.commands import CommandConsumer, CommandForwarder, LeaderUnreachable
from app.replication.event_stream import EventFollower, EventPublisher
from app.replication.fencing import FENCED_EXIT_STATUS, fence_writes, take_epoch
from app.replication.forwarding import ReplicatedOrders
from app.replication.lease import LeaderLease
from app.replication.login_failures import RedisLoginFailures
from app.replication.shared_auth import RedisSharedAuth
from app.replication.tasks import cancel_and_wait
from app.services.runtime_config import live_changes, with_overrides

if TYPE_CHECKING:
    from app.runtime import Runtime

log = logging.getLogger("veloz.replication")

CATCH_UP_SECONDS = 2.0  # a follower's answer waits this long for the events it caused


def new_replica_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


class Replication:
    def __init__(self, runtime: Runtime, redis_url: str) -> None:
        self.runtime = runtime
        self.replica_id = new_replica_id()
        self.redis = Redis.from_url(redis_url, health_check_interval=10)
        self.changes = ChangeFeed(self.redis, self.replica_id)
        runtime.auth.shared = RedisSharedAuth(self.redis, self.changes)
        runtime.auth.login_failures = RedisLoginFailures(redis_url)
        runtime.gui_settings.shared = True
        runtime.gui_settings.on_saved = lambda: self.changes.publish("settings")
        runtime.config.on_saved = lambda: self.changes.publish("config")
        runtime.exchange_keys.on_changed = lambda: self.changes.publish("exchange_keys")

        lease_ms = runtime.settings.leader_lease_ms
        self.lease = LeaderLease(self.redis, self.replica_id, lease_ms)
        self._renew_every = lease_ms / 3000
        self._forward_timeout = max(5.0, 3 * lease_ms / 1000)
        self.leading = False  # the engine runs here
        self.leader_alive = False  # some replica holds the lease
        self._holds_lease = False
        self.publisher = EventPublisher(
            self.redis, on_stale=lambda: self._fence("another replica streams the same ids")
        )
        self.follower = EventFollower(
            self.redis, lambda: runtime.bus.last_id, self._deliver, self._stored_between
        )
        self.forwarder = CommandForwarder(self.redis, self.replica_id)
        self.consumer: CommandConsumer | None = None
        self.orders = ReplicatedOrders(
            runtime.engine, runtime.state.orders, runtime.writer, lambda: self.leading,
            self._forward,
        )  # fmt: skip
        runtime.orders = self.orders
        self._campaign_task: asyncio.Task[None] | None = None
        self._promotion: asyncio.Task[None] | None = None
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._stopping_follower: asyncio.Task[None] | None = None

    async def connect(self) -> None:
        """Before anything else starts: Redis must answer."""
        await self.redis.ping()

    async def start(self) -> None:
        """Lead at once if nobody does (the first replica serves with its engine running),
        otherwise follow; then keep campaigning."""
        self.changes.subscribe("settings", self.runtime.gui_settings.reload)
        self.changes.subscribe("config", self._reload_config)
        self.changes.subscribe("exchange_keys", self.runtime.exchange_keys.reload)
        self.forwarder.start()
        if await self.lease.acquire():
            self._holds_lease = self.leader_alive = True
            await self._promote()
        else:
            self.leader_alive = await self.lease.holder() is not None
            self.follower.start()
            log.info("replica %s follows", self.replica_id)
        self._campaign_task = asyncio.create_task(self._campaign(), name="veloz-leader-lease")

    # --- leadership -------------------------------------------------------------------------
    async def _campaign(self) -> None:
        last_renewed = time.monotonic()
        while True:
            await asyncio.sleep(self._renew_every)
            try:
                if self._holds_lease:
                    if not await self.lease.renew():
                        self._fence("the leader lease now belongs to another replica")
                    last_renewed = time.monotonic()
                elif await self.lease.acquire():
                    self._holds_lease = self.leader_alive = True
                    last_renewed = time.monotonic()
                    self._promotion = asyncio.create_task(
                        self._promote_or_exit(), name="veloz-promote"
                    )
                else:
                    self.leader_alive = await self.lease.holder() is not None
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("leader lease check failed")
                lease_seconds = self.lease.lease_ms / 1000
                if self._holds_lease and time.monotonic() - last_renewed > lease_seconds * 0.8:
                    self._fence("the leader lease could not be renewed in time")

    async def _promote_or_exit(self) -> None:
        try:
            async with asyncio.timeout(max(10.0, 5 * self.lease.lease_ms / 1000)):
                await self._promote()
        except asyncio.CancelledError:
            raise
        except Exception:
            # Holding the lease without leading would stop every replica's orders.
            log.exception("taking over as leader failed")
            self._fence("taking over as leader failed")

    async def _promote(self) -> None:
        """Take over: every event the old leader made durable, then the engine."""
        runtime, state = self.runtime, self.runtime.state
        started = time.monotonic()
        log.info("replica %s holds the lease; taking over", self.replica_id)
        # Stopped aside, not awaited: its blocking read may take a moment to give way, and
        # whatever it still delivers is taken only once (events are kept by id).
        self._stopping_follower = asyncio.create_task(self.follower.stop())
        epoch = await asyncio.to_thread(take_epoch, runtime.db)
        fence_writes(runtime.repository, epoch)
        log.info("replica %s: epoch %d; catching up", self.replica_id, epoch)
        await self.follower.catch_up()
        snapshot = await asyncio.to_thread(
            runtime.repository.load, runtime.settings.event_buffer_size
        )
        unseen = await asyncio.to_thread(runtime.repository.events_after, runtime.bus.last_id)
        self.publisher.published_id = await self.publisher.last_published()
        runtime.bus.add_release_listener(self.publisher.on_release)
        self.publisher.start()
        # Durable but never streamed (the old leader died first): shown, and streamed now.
        self._deliver(unseen)
        # The database is the authority on what events do not carry (idempotency keys).
        state.orders.restore(snapshot.orders)
        state.account.restore(snapshot.balances, snapshot.account_ts_ns)
        state.market.restore(snapshot.quotes)
        state.orders.dirty.clear()
        state.account.dirty = False
        state.market.dirty.clear()
        runtime.bus.restore([], snapshot.last_event_id)
        await runtime.lead(snapshot.last_event_id)
        self.consumer = CommandConsumer(self.redis, self.replica_id, self._run_forwarded)
        await self.consumer.start()
        self.leading = True
        log.info(
            "replica %s leads (epoch %d) from event %d, took over in %.0f ms",
            self.replica_id, epoch, snapshot.last_event_id, (time.monotonic() - started) * 1000,
        )  # fmt: skip

    def _fence(self, reason: str) -> None:
        """A leader that may have been replaced must not write another byte: exit now, and
        let the supervisor start a fresh follower. Acknowledged orders are already durable."""
        log.critical("replica %s stops leading: %s; exiting", self.replica_id, reason)
        logging.shutdown()
        os._exit(FENCED_EXIT_STATUS)

    async def _reload_config(self) -> None:
        """Another replica changed the run-time configuration: apply it here too."""
        runtime = self.runtime
        stored = await asyncio.to_thread(ConfigRepository(runtime.db).load)
        updated = with_overrides(runtime.settings, stored)
        runtime.config.overrides = stored
        runtime.apply_live(updated, live_changes(runtime.settings, updated))

    # --- following --------------------------------------------------------------------------
    def _deliver(self, events: list[Event]) -> None:
        self.runtime.bus.replicate(events)
        if self._waiters:
            last = self.runtime.bus.last_id
            keep = []
            for wanted, future in self._waiters:
                if wanted <= last:
                    if not future.done():
                        future.set_result(None)
                else:
                    keep.append((wanted, future))
            self._waiters = keep

    def _stored_between(self, after: int, before: int) -> list[Event]:
        return [e for e in self.runtime.repository.events_after(after) if e.id < before]

    async def _caught_up(self, event_id: int) -> None:
        """Read-your-writes: the events the leader made for us are here before we answer."""
        if self.leading or self.runtime.bus.last_id >= event_id:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((event_id, future))
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(CATCH_UP_SECONDS):
                await future

    # --- commands ---------------------------------------------------------------------------
    async def _forward(self, kind: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            reply = await self.forwarder.call(kind, body, self._forward_timeout)
        except LeaderUnreachable as exc:
            raise ApiError(
                503, "engine_unavailable", str(exc), headers={"Retry-After": "1"}
            ) from exc
        await self._caught_up(int(reply.get("last_event_id", 0)))
        return reply

    async def _run_forwarded(self, kind: str, body: dict[str, Any]) -> dict[str, Any]:
        reply = await self.orders.run_forwarded(kind, body)
        reply["last_event_id"] = self.runtime.writer.durable_id
        return reply

    # --- shutdown ---------------------------------------------------------------------------
    async def stop_following(self) -> None:
        """First step of a shutdown: no more campaigning, commands or stream reading."""
        for task in (self._campaign_task, self._promotion):
            await cancel_and_wait(task)
        await self.follower.stop()
        if self.consumer is not None:
            await self.consumer.stop()
        await self.forwarder.stop()

    async def stop(self) -> None:
        """Last step: stream what the writer flushed, hand the lease over, disconnect."""
        await self.publisher.stop()
        if self._holds_lease:
            with contextlib.suppress(Exception):
                await self.lease.release()
        await self.changes.stop()
        await self.redis.aclose()
