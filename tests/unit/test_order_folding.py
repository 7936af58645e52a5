"""Folding rules of contract §6.4, with F12 (avg_price is the VWAP of fills)."""

from __future__ import annotations

from decimal import Decimal

from app.state.account import AccountStore
from app.state.market import MarketStore
from app.state.orders import OrderStore


def test_note_order_params_never_sets_status() -> None:
    store = OrderStore()
    order = store.note_order_params(
        "c1", symbol="BTCUSDT", side="BUY", qty=Decimal("0.002"), price=Decimal("50000")
    )
    assert order.status is None
    assert order.to_public() == {
        "client_order_id": "c1",
        "symbol": "BTCUSDT",
        "side": "BUY",
        "order_type": None,
        "order_qty": 0.002,
        "limit_price": 50000.0,
        "venue_order_id": None,
        "status": None,
        "reason": None,
        "executed_qty": 0.0,
        "avg_price": None,
        "last_ts_ns": None,
    }


def test_order_received_sets_pending_and_lowercase_side() -> None:
    store = OrderStore()
    store.apply(
        {
            "type": "order_received",
            "command_id": 1,
            "client_order_id": "web-1",
            "symbol": "BTCUSDT",
            "side": "buy",
            "order_type": "limit",
            "quantity": 0.001,
            "price": 0,
        }
    )
    order = store.get("web-1")
    assert order is not None
    assert order.status == "PENDING"
    assert order.side == "buy"
    assert order.limit_price == Decimal(0)  # "not null" keeps a zero price


def test_update_sets_truthy_fields_only() -> None:
    store = OrderStore()
    store.apply(
        {
            "type": "order_update",
            "client_order_id": "c1",
            "status": "ACCEPTED",
            "venue_order_id": "sim-1",
            "symbol": "BTCUSDT",
            "ts_ns": 5,
        }
    )
    store.apply(
        {
            "type": "order_update",
            "client_order_id": "c1",
            "status": "",
            "reason": None,
            "venue_order_id": "",
            "ts_ns": 0,
        }
    )
    order = store.get("c1")
    assert order is not None
    assert (order.status, order.venue_order_id, order.last_ts_ns) == ("ACCEPTED", "sim-1", 5)


def test_fill_average_is_volume_weighted() -> None:
    store = OrderStore()
    store.note_order_params("c1", symbol="BTCUSDT", side="BUY", qty=Decimal(3), price=None)
    store.apply({"type": "fill", "client_order_id": "c1", "qty": 1, "price": 100, "ts_ns": 1})
    order = store.get("c1")
    assert order is not None
    assert order.status == "PARTIALLY_FILLED"
    assert order.avg_price == Decimal(100)
    store.apply({"type": "fill", "client_order_id": "c1", "qty": 2, "price": 130, "ts_ns": 2})
    assert order.status == "FILLED"
    assert order.executed_qty == Decimal(3)
    assert order.avg_price == Decimal(120)  # (1*100 + 2*130) / 3; the last price would be 130
    assert order.last_ts_ns == 2


def test_fill_without_known_quantity_leaves_status() -> None:
    store = OrderStore()
    store.apply({"type": "order_update", "client_order_id": "c1", "status": "ACCEPTED"})
    store.apply({"type": "fill", "client_order_id": "c1", "qty": 1, "price": 10})
    order = store.get("c1")
    assert order is not None
    assert order.status == "ACCEPTED"
    assert order.executed_qty == Decimal(1)


def test_fill_does_not_reopen_a_cancelled_order() -> None:
    store = OrderStore()
    store.note_order_params("c1", symbol="X", side="BUY", qty=Decimal(2), price=Decimal(1))
    store.apply({"type": "order_update", "client_order_id": "c1", "status": "CANCELLED"})
    store.apply({"type": "fill", "client_order_id": "c1", "qty": 1, "price": 1})
    order = store.get("c1")
    assert order is not None
    assert order.status == "CANCELLED"


def test_fill_tolerance_counts_as_filled() -> None:
    store = OrderStore()
    store.note_order_params("c1", symbol="X", side="BUY", qty=Decimal("0.3"), price=None)
    store.apply({"type": "fill", "client_order_id": "c1", "qty": 0.1, "price": 1})
    store.apply({"type": "fill", "client_order_id": "c1", "qty": 0.2, "price": 1})
    order = store.get("c1")
    assert order is not None
    assert order.status == "FILLED"


def test_order_state_snapshot_folds_not_null_numbers() -> None:
    store = OrderStore()
    store.apply(
        {
            "type": "order_state",
            "client_order_id": "c1",
            "status": "ACCEPTED",
            "order_qty": 0.002,
            "limit_price": 50000,
            "executed_qty": 0.001,
            "avg_price": 42001.3,
            "last_ts_ns": 9,
        }
    )
    order = store.get("c1")
    assert order is not None
    public = order.to_public()
    assert (public["executed_qty"], public["avg_price"], public["last_ts_ns"]) == (
        0.001,
        42001.3,
        9,
    )


def test_events_without_an_id_or_of_other_types_are_ignored() -> None:
    store = OrderStore()
    assert store.apply({"type": "fill", "qty": 1}) is None
    assert store.apply({"type": "market", "client_order_id": "x"}) is None
    assert len(store) == 0


def test_insertion_order_and_dirty_tracking() -> None:
    store = OrderStore()
    for cid in ("b", "a"):
        store.apply({"type": "order_update", "client_order_id": cid, "status": "ACCEPTED"})
    assert [o.client_order_id for o in store] == ["b", "a"]
    assert {o.client_order_id for o in store.take_dirty()} == {"a", "b"}
    assert store.take_dirty() == []


def test_account_snapshot_replaces_and_skips_bad_entries() -> None:
    account = AccountStore()
    account.apply(
        {
            "type": "account",
            "ts_ns": 1,
            "balances": [
                {"asset": "USDT", "free": 10, "locked": 1},
                {"asset": "BTC", "free": 2, "locked": 0},
            ],
        }
    )
    account.apply(
        {
            "type": "account",
            "ts_ns": 2,
            "balances": [{"asset": "ETH", "free": "bad", "locked": 3}, {"free": 1}],
        }
    )
    assert account.snapshot() == {
        "ts_ns": 2,
        "balances": [{"asset": "ETH", "free": 0.0, "locked": 3.0}],
    }
    account.apply({"type": "account", "ts_ns": 3, "balances": []})
    assert account.snapshot()["ts_ns"] == 3
    assert len(account.balances()) == 1


def test_account_merge_keeps_other_assets() -> None:
    from app.state.account import Balance

    account = AccountStore()
    account.apply(
        {
            "type": "account",
            "ts_ns": 1,
            "balances": [
                {"asset": "USDT", "free": 10, "locked": 0},
                {"asset": "BTC", "free": 2, "locked": 0},
            ],
        }
    )
    account.merge([Balance("BTC", Decimal(1), Decimal(1))], ts_ns=2)
    assert account.snapshot()["balances"] == [
        {"asset": "USDT", "free": 10.0, "locked": 0.0},
        {"asset": "BTC", "free": 1.0, "locked": 1.0},
    ]


def test_market_keeps_the_latest_quote_per_symbol() -> None:
    market = MarketStore()
    market.apply({"type": "market", "symbol": "BTCUSDT", "ts_ns": 1, "price": 42000.5})
    market.apply({"type": "market", "symbol": "ETHUSDT", "ts_ns": 2, "price": 2200})
    market.apply({"type": "market", "symbol": "BTCUSDT", "ts_ns": 3, "price": 42001})
    quote = market.get("BTCUSDT")
    assert quote is not None
    assert quote.to_public() == {"symbol": "BTCUSDT", "price": 42001.0, "ts_ns": 3}
    assert {q.symbol for q in market.take_dirty()} == {"BTCUSDT", "ETHUSDT"}
