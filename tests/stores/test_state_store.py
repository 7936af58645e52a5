"""The state repository: events, orders, balances, quotes and meta round-trip exactly."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import Engine

from app.db.repository import Batch, StateRepository, order_row
from app.events.bus import Event
from app.state.orders import OrderState


def _order(cid: str, seq: int, status: str = "ACCEPTED") -> OrderState:
    return OrderState(
        client_order_id=cid,
        symbol="BTCUSDT",
        side="BUY",
        order_type="limit",
        order_qty=Decimal("0.123456789012345678"),
        limit_price=Decimal("42000.01"),
        venue_order_id=f"sim-{seq}",
        status=status,
        executed_qty=Decimal("0.1"),
        avg_price=Decimal("41999.5"),
        last_ts_ns=1_795_490_821_174_999_712,
        time_in_force="GTC",
        request_fingerprint="BUY|BTCUSDT|0.1|42000.01|limit|GTC",
        seq=seq,
    )


def _batch(first_id: int, count: int, **changes: object) -> Batch:
    events = [
        Event.build(i, {"type": "order_update" if i % 2 else "market", "n": i})
        for i in range(first_id, first_id + count)
    ]
    values: dict[str, object] = {
        "events": events,
        "orders": [],
        "balances": None,
        "account_ts_ns": None,
        "quotes": [],
    }
    values.update(changes)
    return Batch(**values)  # type: ignore[arg-type]


def test_a_written_batch_loads_back_exactly(db: Engine) -> None:
    repository = StateRepository(db, keep_events=1000)
    balances = [
        {"asset": "USDT", "position": 0, "free": "99000.000000000001", "locked": "1000"},
        {"asset": "BTC", "position": 1, "free": "0.5", "locked": "0"},
    ]
    quotes = [{"symbol": "BTCUSDT", "price": "42000.5", "ts_ns": 1_795_490_821_174_999_712}]
    repository.write(
        _batch(
            1,
            3,
            orders=[order_row(_order("a", 1)), order_row(_order("b", 2, "FILLED"))],
            balances=balances,
            account_ts_ns=1_795_490_821_174_999_713,
            quotes=quotes,
        )
    )

    snapshot = repository.load(ring_size=500)

    assert [o.client_order_id for o in snapshot.orders] == ["a", "b"]
    assert snapshot.orders[0] == _order("a", 1)
    assert [(b.asset, b.free, b.locked) for b in snapshot.balances] == [
        ("USDT", Decimal("99000.000000000001"), Decimal("1000")),
        ("BTC", Decimal("0.5"), Decimal("0")),
    ]
    assert snapshot.account_ts_ns == 1_795_490_821_174_999_713
    assert [(q.symbol, q.price, q.ts_ns) for q in snapshot.quotes] == [
        ("BTCUSDT", Decimal("42000.5"), 1_795_490_821_174_999_712)
    ]
    assert [e.id for e in snapshot.recent_events] == [1, 2, 3]
    assert [e.id for e in snapshot.order_events] == [1, 3]  # only order-related types
    assert snapshot.recent_events[1].data == {"type": "market", "n": 2}
    assert snapshot.last_event_id == 3


def test_upserts_replace_rows_and_balances_are_a_snapshot(db: Engine) -> None:
    repository = StateRepository(db, keep_events=1000)
    repository.write(
        _batch(
            1,
            1,
            orders=[order_row(_order("a", 1))],
            balances=[{"asset": "ETH", "position": 0, "free": "1", "locked": "0"}],
            quotes=[{"symbol": "BTCUSDT", "price": "1", "ts_ns": 1}],
        )
    )
    changed = _order("a", 1, "CANCELLED")
    repository.write(
        _batch(
            2,
            1,
            orders=[order_row(changed)],
            balances=[{"asset": "USDT", "position": 0, "free": "5", "locked": "0"}],
            quotes=[{"symbol": "BTCUSDT", "price": None, "ts_ns": 2}],
        )
    )

    snapshot = repository.load(ring_size=500)

    assert [o.status for o in snapshot.orders] == ["CANCELLED"]
    assert [b.asset for b in snapshot.balances] == ["USDT"]  # ETH vanished with the snapshot
    assert [(q.price, q.ts_ns) for q in snapshot.quotes] == [(None, 2)]
    assert snapshot.last_event_id == 2


def test_the_ring_size_limits_what_is_loaded(db: Engine) -> None:
    repository = StateRepository(db, keep_events=1000)
    repository.write(_batch(1, 10))

    snapshot = repository.load(ring_size=4)

    assert [e.id for e in snapshot.recent_events] == [7, 8, 9, 10]
    assert snapshot.last_event_id == 10


def test_pruning_keeps_the_window_and_the_newest_order_history(db: Engine) -> None:
    repository = StateRepository(db, keep_events=5)
    repository.write(_batch(1, 20))

    deleted = repository.prune_events(20)

    snapshot = repository.load(ring_size=500)
    kept = [e.id for e in snapshot.recent_events]
    assert deleted == 20 - len(kept)
    assert kept[-5:] == [16, 17, 18, 19, 20]
    # Order-related events older than the window stay (up to the /api/orders history size).
    assert all(i % 2 for i in kept[:-5])
    assert snapshot.last_event_id == 20


def test_the_last_event_id_survives_pruning_every_event(db: Engine) -> None:
    repository = StateRepository(db, keep_events=1000)
    repository.write(_batch(1, 3))
    with db.begin() as conn:
        conn.exec_driver_sql("DELETE FROM events")

    assert repository.load(ring_size=500).last_event_id == 3
