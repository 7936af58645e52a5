"""Reads and writes the gateway's durable state. Synchronous: called from the writer thread."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, Table, delete, func, insert, select
from sqlalchemy.dialects import postgresql, sqlite

from app.core.jsonutil import loads
from app.db.tables import BalanceRow, EventRow, MarketRow, MetaRow, OrderRow
from app.events.bus import Event
from app.events.history import ORDER_HISTORY_SIZE
from app.state.account import Balance
from app.state.market import Quote
from app.state.orders import OrderState, is_order_related

EVENTS: Table = EventRow.__table__  # type: ignore[attr-defined]
ORDERS: Table = OrderRow.__table__  # type: ignore[attr-defined]
BALANCES: Table = BalanceRow.__table__  # type: ignore[attr-defined]
MARKETS: Table = MarketRow.__table__  # type: ignore[attr-defined]
META: Table = MetaRow.__table__  # type: ignore[attr-defined]


@dataclass
class Snapshot:
    orders: list[OrderState] = field(default_factory=list)
    balances: list[Balance] = field(default_factory=list)
    account_ts_ns: int | None = None
    quotes: list[Quote] = field(default_factory=list)
    recent_events: list[Event] = field(default_factory=list)
    order_events: list[Event] = field(default_factory=list)
    last_event_id: int = 0


@dataclass
class Batch:
    """What changed since the last flush, captured on the event loop in one consistent step."""

    events: list[Event]
    orders: list[dict[str, Any]]
    balances: list[dict[str, Any]] | None
    account_ts_ns: int | None
    quotes: list[dict[str, Any]]

    @property
    def last_event_id(self) -> int:
        return self.events[-1].id if self.events else 0


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def order_row(order: OrderState) -> dict[str, Any]:
    return {
        "client_order_id": order.client_order_id,
        "seq": order.seq,
        "symbol": order.symbol,
        "side": order.side,
        "order_type": order.order_type,
        "time_in_force": order.time_in_force,
        "order_qty": _text(order.order_qty),
        "limit_price": _text(order.limit_price),
        "venue_order_id": order.venue_order_id,
        "status": order.status,
        "reason": order.reason,
        "executed_qty": str(order.executed_qty),
        "avg_price": _text(order.avg_price),
        "last_ts_ns": order.last_ts_ns,
        "request_fingerprint": order.request_fingerprint,
    }


def _decimal(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


def _order_from_row(row: Any) -> OrderState:
    return OrderState(
        client_order_id=row.client_order_id,
        symbol=row.symbol,
        side=row.side,
        order_type=row.order_type,
        order_qty=_decimal(row.order_qty),
        limit_price=_decimal(row.limit_price),
        venue_order_id=row.venue_order_id,
        status=row.status,
        reason=row.reason,
        executed_qty=Decimal(row.executed_qty),
        avg_price=_decimal(row.avg_price),
        last_ts_ns=row.last_ts_ns,
        time_in_force=row.time_in_force,
        request_fingerprint=row.request_fingerprint,
        seq=row.seq,
    )


def _event_from_row(row: Any) -> Event:
    return Event.build(int(row.id), loads(row.payload))


class StateRepository:
    def __init__(self, engine: Engine, keep_events: int) -> None:
        self.engine = engine
        self.keep_events = keep_events
        self._dialect = engine.dialect.name
        # Built once: constructing an upsert is a large part of a small batch's cost.
        self._upserts = {
            table.name: self._upsert_statement(table, keys)
            for table, keys in (
                (META, ["key"]),
                (ORDERS, ["client_order_id"]),
                (MARKETS, ["symbol"]),
            )
        }

    # --- reads (start-up) -------------------------------------------------------------------
    def load(self, ring_size: int) -> Snapshot:
        snapshot = Snapshot()
        # One consistent view while another replica may be writing (PostgreSQL).
        options = {"isolation_level": "REPEATABLE READ"} if self._dialect == "postgresql" else {}
        with self.engine.connect().execution_options(**options) as conn:
            snapshot.orders = [
                _order_from_row(r) for r in conn.execute(select(ORDERS).order_by(ORDERS.c.seq))
            ]
            snapshot.balances = [
                Balance(asset=r.asset, free=Decimal(r.free), locked=Decimal(r.locked))
                for r in conn.execute(select(BALANCES).order_by(BALANCES.c.position))
            ]
            snapshot.quotes = [
                Quote(symbol=r.symbol, price=_decimal(r.price), ts_ns=r.ts_ns)
                for r in conn.execute(select(MARKETS))
            ]
            meta = {r.key: r.value for r in conn.execute(select(META))}
            if meta.get("account_ts_ns"):
                snapshot.account_ts_ns = int(meta["account_ts_ns"])
            max_id = conn.execute(select(func.max(EVENTS.c.id))).scalar() or 0
            snapshot.last_event_id = max(int(meta.get("last_event_id", 0)), int(max_id))
            recent = conn.execute(select(EVENTS).order_by(EVENTS.c.id.desc()).limit(ring_size))
            snapshot.recent_events = [_event_from_row(r) for r in reversed(recent.all())]
            order_events = conn.execute(
                select(EVENTS)
                .where(EVENTS.c.order_related.is_(True))
                .order_by(EVENTS.c.id.desc())
                .limit(ORDER_HISTORY_SIZE)
            )
            snapshot.order_events = [_event_from_row(r) for r in reversed(order_events.all())]
        return snapshot

    def events_after(self, after: int, limit: int = 10_000) -> list[Event]:
        """Stored events with ids above `after`, oldest first (a replica catching up)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(EVENTS).where(EVENTS.c.id > after).order_by(EVENTS.c.id).limit(limit)
            )
            return [_event_from_row(r) for r in rows]

    # --- writes (the single writer) ---------------------------------------------------------
    def write(self, batch: Batch) -> None:
        with self.engine.begin() as conn:
            self.before_write(conn)
            if batch.events:
                conn.execute(
                    insert(EVENTS),
                    [
                        {
                            "id": e.id,
                            "type": e.type,
                            "order_related": is_order_related(e.type, e.data),
                            "payload": e.json,
                        }
                        for e in batch.events
                    ],
                )
                meta = [{"key": "last_event_id", "value": str(batch.last_event_id)}]
                self._upsert(conn, META, meta)
            if batch.orders:
                self._upsert(conn, ORDERS, batch.orders)
            if batch.balances is not None:
                # A snapshot replaces the map, so assets that vanished must go too.
                conn.execute(delete(BALANCES))
                if batch.balances:
                    conn.execute(insert(BALANCES), batch.balances)
            if batch.account_ts_ns is not None:
                meta = [{"key": "account_ts_ns", "value": str(batch.account_ts_ns)}]
                self._upsert(conn, META, meta)
            if batch.quotes:
                self._upsert(conn, MARKETS, batch.quotes)

    def before_write(self, conn: Any) -> None:
        """Runs first in every state write's transaction (replicas fence a stale leader here)."""

    def prune_events(self, last_id: int) -> int:
        """Drop events older than the kept window, except the newest order-history events."""
        cutoff = last_id - self.keep_events
        if cutoff <= 0:
            return 0
        with self.engine.begin() as conn:
            keep_from = conn.execute(
                select(EVENTS.c.id)
                .where(EVENTS.c.order_related.is_(True))
                .order_by(EVENTS.c.id.desc())
                .offset(ORDER_HISTORY_SIZE - 1)
                .limit(1)
            ).scalar()
            condition = EVENTS.c.id <= cutoff
            if keep_from is not None:
                condition = condition & ~(
                    (EVENTS.c.order_related.is_(True)) & (EVENTS.c.id >= keep_from)
                )
            result = conn.execute(delete(EVENTS).where(condition))
            return int(result.rowcount or 0)

    def _upsert(self, conn: Any, table: Table, rows: list[dict[str, Any]]) -> None:
        conn.execute(self._upserts[table.name], rows)

    def _upsert_statement(self, table: Table, keys: Sequence[str]) -> Any:
        if self._dialect == "sqlite":
            stmt: Any = sqlite.insert(table)
        elif self._dialect == "postgresql":
            stmt = postgresql.insert(table)
        else:
            raise RuntimeError(f"unsupported database dialect: {self._dialect}")
        updates = {c.name: stmt.excluded[c.name] for c in table.columns if c.name not in keys}
        return stmt.on_conflict_do_update(index_elements=list(keys), set_=updates)
