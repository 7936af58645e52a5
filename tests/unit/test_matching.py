"""The simulator's matching rules, driven directly (no clock, no I/O)."""

from __future__ import annotations

from decimal import Decimal

from app.engine.base import OrderCommand
from app.engine.matching import Market, RiskLimits, SimExchange, Wallet

D = Decimal


def exchange(usdt: str = "100000", btc: str = "0", liquidity: str = "50000") -> SimExchange:
    return SimExchange(
        markets={"BTCUSDT": Market("BTCUSDT", "BTC", "USDT", D("42000"))},
        wallets={"USDT": Wallet(D(usdt)), "BTC": Wallet(D(btc))},
        risk=RiskLimits(D("1000"), D("1000000")),
        liquidity=D(liquidity),
    )


def order(
    cid: str,
    side: str = "BUY",
    qty: str = "1",
    price: str | None = "40000",
    order_type: str = "limit",
    tif: str = "GTC",
) -> OrderCommand:
    return OrderCommand(
        cid,
        "BTCUSDT",
        side,
        D(qty),
        None if price is None else D(price),  # type: ignore[arg-type]
        order_type,
        tif,
    )  # type: ignore[arg-type]


def test_accepted_order_events_in_order() -> None:
    ex = exchange()
    ack, events = ex.place(order("a"), ts_ns=10)
    assert ack.accepted and ack.status == "ACCEPTED" and ack.venue_order_id == "sim-1"
    assert [e["type"] for e in events] == ["order_update", "order_state", "account"]
    assert events[0] == {
        "type": "order_update",
        "ts_ns": 10,
        "client_order_id": "a",
        "venue_order_id": "sim-1",
        "status": "ACCEPTED",
        "symbol": "BTCUSDT",
        "side": "BUY",
        "qty": D(1),
        "price": D(40000),
        "order_type": "limit",
        "time_in_force": "GTC",
    }
    assert events[2]["balances"] == [
        {"asset": "USDT", "free": D(60000), "locked": D(40000)},
        {"asset": "BTC", "free": D(0), "locked": D(0)},
    ]


def test_duplicate_id_is_refused_without_touching_the_first_order() -> None:
    ex = exchange()
    ex.place(order("a"), ts_ns=1)
    ack, events = ex.place(order("a", qty="2"), ts_ns=2)
    assert not ack.accepted and ack.reason == "duplicate_client_order_id"
    assert events == [
        {
            "type": "error",
            "ts_ns": 2,
            "message": "duplicate_client_order_id",
            "client_order_id": "a",
        }
    ]
    assert ex.open_orders["a"].qty == D(1)


def test_sell_needs_base_asset() -> None:
    ex = exchange(btc="0.5")
    assert ex.place(order("s1", "SELL", qty="0.6", price="50000"), 1)[0].reason == (
        "insufficient_funds"
    )
    ack, _ = ex.place(order("s2", "SELL", qty="0.5", price="50000"), 1)
    assert ack.accepted
    assert ex.wallets["BTC"] == Wallet(D(0), D("0.5"))


def test_market_sell_fills_at_the_market() -> None:
    ex = exchange(btc="1")
    ack, events = ex.place(order("m", "SELL", qty="0.5", price=None, order_type="market"), 1)
    assert ack.status == "FILLED"
    fill = next(e for e in events if e["type"] == "fill")
    assert (fill["qty"], fill["price"]) == (D("0.5"), D(42000))
    assert ex.wallets["USDT"] == Wallet(D(121000), D(0))
    assert ex.wallets["BTC"] == Wallet(D("0.5"), D(0))


def test_resting_sell_fills_at_its_limit_when_the_market_rises() -> None:
    ex = exchange(btc="1")
    ex.place(order("ask", "SELL", qty="1", price="43000"), 1)
    assert [e["type"] for e in ex.on_price("BTCUSDT", D("42999.99"), 2)] == ["market"]
    events = ex.on_price("BTCUSDT", D("43500"), 3)
    assert [e["type"] for e in events] == ["market", "fill", "order_state", "account"]
    assert events[1]["price"] == D(43000)
    assert ex.open_orders == {}
    assert ex.wallets["USDT"] == Wallet(D(143000), D(0))


def test_best_price_fills_first_when_liquidity_is_short() -> None:
    ex = exchange(liquidity="42000")  # 1 BTC per tick at 42000
    ex.place(order("low", qty="1", price="41000"), 1)
    ex.place(order("high", qty="1", price="41500"), 2)
    events = ex.on_price("BTCUSDT", D("40000"), 3)
    fills = [e for e in events if e["type"] == "fill"]
    assert [f["client_order_id"] for f in fills] == ["high", "low"]
    assert [f["qty"] for f in fills] == [D(1), D("0.05")]


def test_cancel_unknown_and_closed_orders() -> None:
    ex = exchange()
    ack, events = ex.cancel("ghost", 1)
    assert (ack.cancelled, ack.reason) == (False, "unknown_order")
    assert events[0]["type"] == "error"
    ex.place(order("f", price="50000"), 2)  # marketable: fills at once
    ack, _ = ex.cancel("f", 3)
    assert (ack.cancelled, ack.reason) == (False, "order_not_open")


def test_fill_price_improvement_is_refunded() -> None:
    ex = exchange()
    ex.place(order("b", qty="1", price="45000"), 1)
    assert ex.wallets["USDT"] == Wallet(D(58000), D(0))
    assert ex.wallets["BTC"] == Wallet(D(1), D(0))
