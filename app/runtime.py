"""Builds the gateway's long-lived parts and starts and stops them in order."""

from __future__ import annotations

import asyncio
import logging

from app.auth.service import AuthService
from app.core.config import Settings
from app.db.database import make_engine, migrate
from app.db.identity import IdentityRepository
from app.db.repository import StateRepository
from app.db.writer import StateWriter
from app.engine.sim import SimEngine
from app.events.bus import Event, EventBus, now_ns
from app.events.history import OrderHistory
from app.execution.router import build_engine
from app.services.orders import OrderService
from app.state import GatewayState

log = logging.getLogger("veloz.runtime")

# Events kept in the database beyond the replay ring, so a restart can refill it.
MIN_KEPT_EVENTS = 1000


class Runtime:
    def __init__(self, settings: Settings) -> None:
        problems = settings.unavailable_features()
        if problems:
            raise ValueError("; ".join(problems))
        self.settings = settings
        self.started_at = now_ns()
        self.state = GatewayState()
        self.history = OrderHistory()
        # Stream clients see an event only once it is committed (see EventBus).
        self.bus = EventBus(settings.event_buffer_size, settings.sse_max_clients, gated=True)
        self.db = make_engine(settings.effective_database_url)
        self.repository = StateRepository(
            self.db, keep_events=max(settings.event_buffer_size, MIN_KEPT_EVENTS)
        )
        self.writer = StateWriter(self.repository, self.state, on_durable=self.bus.release)
        self.engine = build_engine(settings, self.bus.publish_many, now_ns)
        self.orders = OrderService(self.engine, self.state.orders, self.writer)
        self.auth = AuthService(settings, IdentityRepository(self.db))

    async def start(self) -> None:
        await asyncio.to_thread(migrate, self.db)
        await self.auth.start()
        snapshot = await asyncio.to_thread(self.repository.load, self.settings.event_buffer_size)
        state = self.state
        state.orders.restore(snapshot.orders)
        state.account.restore(snapshot.balances, snapshot.account_ts_ns)
        state.market.restore(snapshot.quotes)
        self.history.restore(snapshot.order_events)
        self.bus.restore(snapshot.recent_events, snapshot.last_event_id)
        if isinstance(self.engine, SimEngine):
            self.engine.restore(
                state.account.balances(),
                list(state.orders),
                {q.symbol: q.price for q in state.market.quotes() if q.price is not None},
            )
        self.bus.add_listener(self._fold)
        self.bus.add_release_listener(self.history.on_event)  # ids shown are never retracted
        self.bus.add_listener(self.writer.on_event)
        self.writer.start(snapshot.last_event_id)
        await self.engine.start()
        log.info(
            "gateway started: %d orders recovered, events continue after id %d",
            len(state.orders),
            snapshot.last_event_id,
        )

    def _fold(self, event: Event) -> None:
        self.state.apply(event.data)

    async def stop(self) -> None:
        await self.engine.stop()
        self.bus.close()
        await self.writer.stop()
        await self.auth.stop()
        self.db.dispose()
        log.info("gateway stopped; last event id %d", self.bus.last_id)
