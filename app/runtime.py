"""Builds the gateway's long-lived parts and starts and stops them in order."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.audit.entries import DEFAULT_POLICIES
from app.audit.logger import AuditLogger
from app.audit.retention import RetentionManager
from app.auth.service import AuthService
from app.core.config import Settings, split_symbol
from app.db.audit import AuditRepository
from app.db.config import ConfigRepository
from app.db.database import make_engine, migrate
from app.db.identity import IdentityRepository
from app.db.repository import StateRepository
from app.db.writer import StateWriter
from app.engine.sim import SimEngine
from app.engine.stdio import StdioEngine
from app.events.bus import Event, EventBus, now_ns
from app.events.history import OrderHistory
from app.execution.binance.engine import BinanceEngine
from app.execution.binance.market import MarketSource
from app.execution.router import build_engine, build_market_source
from app.middleware.edge import CorsPolicy
from app.observability.metrics import GatewayMetrics
from app.services.exchange_keys import ExchangeKeyService
from app.services.orders import OrderService
from app.services.runtime_config import RuntimeConfig
from app.services.settings import SettingsService
from app.state import GatewayState

if TYPE_CHECKING:
    from app.replication.cluster import Replication

log = logging.getLogger("veloz.runtime")

# Events kept in the database beyond the replay ring, so a restart can refill it.
MIN_KEPT_EVENTS = 1000
# While venue prices are this fresh (seconds), an external engine's own prices are dropped.
VENUE_PRICE_FRESH = 5.0


class Runtime:
    def __init__(
        self,
        settings: Settings,
        metrics: GatewayMetrics | None = None,
        cors: CorsPolicy | None = None,
        overrides: dict[str, Any] | None = None,
    ) -> None:
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
        self.metrics = metrics or GatewayMetrics()
        audit_repository = AuditRepository(self.db)
        self.audit = AuditLogger(
            audit_repository,
            queue_size=settings.audit_queue_size,
            on_backpressure=self.metrics.audit_backpressure.inc,
            enabled=settings.audit_log_enabled,
        )
        policies = {
            log_type: replace(policy, max_file_size_mb=settings.audit_archive_max_file_mb)
            for log_type, policy in DEFAULT_POLICIES.items()
        }
        for log_type, days in settings.audit_retention.items():
            base = policies.get(log_type, policies["default"])
            policies[log_type] = replace(base, retention_days=days)
        self.retention = RetentionManager(
            audit_repository, Path(settings.data_dir) / "audit" / "archive", policies
        )
        self._retention_task: asyncio.Task[None] | None = None
        self.market_source: MarketSource | None = build_market_source(
            settings, self._venue_price, self.bus.publish_many, now_ns
        )
        self.gui_settings = SettingsService(self.db)
        self.exchange_keys = ExchangeKeyService(self.db, settings)
        self.cors = cors or CorsPolicy(settings.cors_origins, settings.cors_credentials)
        self.config = RuntimeConfig(
            overrides or {}, save=ConfigRepository(self.db).save, apply_live=self.apply_live
        )
        # Several replicas: shared state in Redis, one leader runs the engine. Imported only
        # then: one gateway on its own never loads the Redis client.
        self.replication: Replication | None = None
        if settings.redis_url:
            from app.replication.cluster import Replication

            self.replication = Replication(self, settings.redis_url)

    async def start(self) -> None:
        if self.replication is not None:
            await self.replication.connect()
        await asyncio.to_thread(migrate, self.db)
        self.audit.start()
        await self.auth.start()
        await self.gui_settings.start()
        await self.exchange_keys.start()  # every replica serves /api/exchange-keys from the db
        snapshot = await asyncio.to_thread(self.repository.load, self.settings.event_buffer_size)
        state = self.state
        state.orders.restore(snapshot.orders)
        state.account.restore(snapshot.balances, snapshot.account_ts_ns)
        state.market.restore(snapshot.quotes)
        self.history.restore(snapshot.order_events)
        self.bus.restore(snapshot.recent_events, snapshot.last_event_id)
        self.bus.add_listener(self._fold)
        self.bus.add_release_listener(self.history.on_event)  # ids shown are never retracted
        self.bus.add_listener(self.metrics.on_event)
        self.bus.add_listener(self._position_metrics)
        self.metrics.watch(
            engine_running=lambda: self.engine_connected,
            sse_clients=lambda: self.bus.subscriber_count,
            active_orders=lambda: sum(1 for order in self.state.orders if order.is_open),
            audit_depth=lambda: self.audit.depth,
        )
        if self.replication is not None:
            await self.replication.start()  # leads, or follows the leader
        else:
            await self.lead(snapshot.last_event_id)
        log.info(
            "gateway started: %d orders recovered, events continue after id %d",
            len(state.orders),
            snapshot.last_event_id,
        )

    async def lead(self, durable_id: int) -> None:
        """Run the engine and write the state: the only replica, or the leader of several."""
        state = self.state
        if isinstance(self.engine, StdioEngine):
            self.engine.open_orders = lambda: [o for o in self.state.orders if o.is_open]
            self.engine.venue_prices_fresh = self._venue_prices_fresh
        if isinstance(self.engine, BinanceEngine):
            self._wire_venue(self.engine)
        if isinstance(self.engine, SimEngine):
            self.engine.restore(
                state.account.balances(),
                list(state.orders),
                {q.symbol: q.price for q in state.market.quotes() if q.price is not None},
            )
        self.bus.add_listener(self.writer.on_event)
        self.writer.start(durable_id)
        if isinstance(self.engine, BinanceEngine):
            await self.exchange_keys.attach_venue(self.engine)  # the stored key, before it starts
        await self.engine.start()
        # Leader only: venue prices become events (or feed the simulator), and events get their
        # ids on the leader alone; followers receive them through the shared stream.
        if self.market_source is not None:
            self.market_source.start()
        self._retention_task = asyncio.create_task(self._retention_loop(), name="veloz-retention")

    @property
    def engine_connected(self) -> bool:
        """The engine takes commands: ours, or on a follower the leader's."""
        if self.replication is not None and not self.replication.leading:
            return self.replication.leader_alive
        return self.engine.connected

    async def engine_ping(self) -> dict[str, Any]:
        if self.replication is not None and not self.replication.leading:
            return {"ok": self.replication.leader_alive}
        return await self.engine.ping()

    def _wire_venue(self, engine: BinanceEngine) -> None:
        """Venue mode: recovered open orders, the folded state and metrics reach the client."""
        engine.open_orders = lambda: [
            o for o in self.state.orders if o.is_open or o.status == "UNKNOWN"
        ]
        engine.tracker_lookup(self.state.orders.get)
        self.metrics.watch_venue(engine)

    def _venue_prices_fresh(self) -> bool:
        """A venue price arrived less than 5 s ago (contract §6.6)."""
        source = self.market_source
        last = source.last_price_at if source is not None else None
        return last is not None and time.monotonic() - last < VENUE_PRICE_FRESH

    def _venue_price(self, symbol: str, price: Decimal, ts_ns: int) -> None:
        """A venue price: the simulator matches against it; otherwise it is the market."""
        if isinstance(self.engine, SimEngine):
            self.engine.feed_price(symbol, price, ts_ns)
        else:
            self.bus.publish({"type": "market", "symbol": symbol, "ts_ns": ts_ns, "price": price})

    def _fold(self, event: Event) -> None:
        self.state.apply(event.data)

    def _position_metrics(self, event: Event) -> None:
        """veloz_position_value and veloz_risk_utilization_percent follow prices and balances."""
        if event.type not in ("market", "account"):
            return
        account, market = self.state.account, self.state.market
        quotes: set[str] = set()
        for symbol in self.settings.market_symbols:
            base, quote = split_symbol(symbol)
            quotes.add(quote)
            held, last = account.get(base), market.get(symbol)
            if held is not None and last is not None and last.price is not None:
                value = (held.free + held.locked) * last.price
                self.metrics.position_value.labels(symbol=symbol).set(float(value))
        reserved = total = Decimal(0)
        for asset in quotes:
            balance = account.get(asset)
            if balance is not None:
                reserved += balance.locked
                total += balance.free + balance.locked
        if total > 0:
            self.metrics.risk_utilization.set(float(reserved / total * 100))

    def apply_live(self, new: Settings, fields: set[str]) -> set[str]:
        """Apply changed settings to the running parts; returns those that need a restart."""
        waiting: set[str] = set()
        if fields & {"rate_limit_capacity", "rate_limit_refill"}:
            self.auth.limiter.capacity = new.rate_limit_capacity
            self.auth.limiter.refill = new.rate_limit_refill
        if fields & {"cors_origins", "cors_credentials"}:
            self.cors.update(new.cors_origins, new.cors_credentials)
        if "log_level" in fields:
            for name in ("veloz", "uvicorn"):
                logging.getLogger(name).setLevel(new.log_level.upper())
        if "sse_max_clients" in fields:
            self.bus.max_subscribers = new.sse_max_clients
        if "token_expiry" in fields:
            self.auth.tokens.access_lifetime = new.token_expiry
        if isinstance(self.engine, SimEngine):
            if fields & {"risk_max_order_qty", "risk_max_order_notional"}:
                self.engine.exchange.risk.max_order_qty = new.risk_max_order_qty
                self.engine.exchange.risk.max_order_notional = new.risk_max_order_notional
            if "market_symbols" in fields and not self.engine.add_markets(new):
                # Removing a market waits for a restart; until then every market stays served.
                waiting.add("market_symbols")
                current = list(self.engine.exchange.markets)
                new = new.model_copy(update={"market_symbols": current})
        else:
            waiting |= fields & {"risk_max_order_qty", "risk_max_order_notional", "market_symbols"}
        self.settings = new
        self.auth.settings = new
        return waiting

    async def _retention_loop(self) -> None:
        """Archive expired audit entries at start and then every cleanup interval."""
        while True:
            try:
                stats = await asyncio.to_thread(self.retention.run)
                if stats.deleted_entries or stats.errors:
                    log.info("audit retention: %s", stats.to_public())
            except Exception:
                log.exception("audit retention failed")
            await asyncio.sleep(self.settings.audit_cleanup_interval_hours * 3600)

    async def stop(self) -> None:
        if self._retention_task is not None:
            self._retention_task.cancel()
        if self.replication is not None:
            await self.replication.stop_following()
        if self.market_source is not None:
            await self.market_source.stop()
        await self.engine.stop()
        await self.exchange_keys.stop()
        self.bus.close()
        await self.writer.stop()
        await self.auth.stop()
        if self.replication is not None:
            await self.replication.stop()
        await self.audit.stop()  # last: everything above may still have recorded something
        self.db.dispose()
        log.info("gateway stopped; last event id %d", self.bus.last_id)
