"""Engine invariants under random order flow (hypothesis).

- no balance ever goes negative;
- what is locked equals exactly what open orders still reserve, and cancels/fills release it;
- each asset is conserved: its total changes only by the fills' amounts.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from app.engine.base import OrderCommand
from app.engine.matching import Market, RiskLimits, SimExchange, Wallet

D = Decimal

prices = st.integers(min_value=30_000, max_value=55_000).map(D)
quantities = st.integers(min_value=1, max_value=300_000).map(lambda n: D(n) / 100_000)
places = st.tuples(
    st.just("place"),
    st.sampled_from(["BUY", "SELL"]),
    quantities,
    prices,
    st.sampled_from(["limit", "limit", "market"]),
    st.sampled_from(["GTC", "GTC", "IOC", "FOK"]),
)
cancels = st.tuples(st.just("cancel"), st.integers(min_value=0, max_value=40))
ticks = st.tuples(st.just("tick"), prices)
operations = st.lists(st.one_of(places, cancels, ticks), min_size=1, max_size=60)


def fresh() -> SimExchange:
    return SimExchange(
        markets={"BTCUSDT": Market("BTCUSDT", "BTC", "USDT", D(42000))},
        wallets={"USDT": Wallet(D(100000)), "BTC": Wallet(D(2))},
        risk=RiskLimits(D(1000), D(10_000_000)),
        liquidity=D(60000),
    )


def check_invariants(ex: SimExchange) -> None:
    for asset, wallet in ex.wallets.items():
        assert wallet.free >= 0, asset
        assert wallet.locked >= 0, asset
    reserved_quote = sum(
        (o.remaining * o.reserve_price for o in ex.open_orders.values() if o.side == "BUY"), D(0)
    )
    reserved_base = sum((o.remaining for o in ex.open_orders.values() if o.side == "SELL"), D(0))
    assert ex.wallets["USDT"].locked == reserved_quote
    assert ex.wallets["BTC"].locked == reserved_base
    for o in ex.open_orders.values():
        assert D(0) < o.remaining <= o.qty
        assert o.status in ("ACCEPTED", "PARTIALLY_FILLED")


def run(ops: list[tuple[Any, ...]]) -> tuple[SimExchange, list[dict[str, Any]]]:
    ex = fresh()
    events: list[dict[str, Any]] = []
    for ts, op in enumerate(ops, start=1):
        if op[0] == "place":
            _, side, qty, price, order_type, tif = op
            cmd = OrderCommand(
                f"o{ts}",
                "BTCUSDT",
                side,
                qty,
                None if order_type == "market" else price,
                order_type,
                tif,
            )
            events += ex.place(cmd, ts)[1]
        elif op[0] == "cancel":
            events += ex.cancel(f"o{op[1]}", ts)[1]
        else:
            events += ex.on_price("BTCUSDT", op[1], ts)
        check_invariants(ex)
    return ex, events


@settings(max_examples=150, deadline=None)
@given(operations)
def test_balances_never_negative_and_reservations_match(ops: list[tuple[Any, ...]]) -> None:
    run(ops)


@settings(max_examples=150, deadline=None)
@given(operations)
def test_each_asset_is_conserved_across_fills(ops: list[tuple[Any, ...]]) -> None:
    ex, events = run(ops)
    fills = [e for e in events if e["type"] == "fill"]
    bought = sum((f["qty"] for f in fills if f["side"] == "BUY"), D(0))
    sold = sum((f["qty"] for f in fills if f["side"] == "SELL"), D(0))
    spent = sum((f["qty"] * f["price"] for f in fills if f["side"] == "BUY"), D(0))
    earned = sum((f["qty"] * f["price"] for f in fills if f["side"] == "SELL"), D(0))
    usdt, btc = ex.wallets["USDT"], ex.wallets["BTC"]
    assert usdt.free + usdt.locked == D(100000) - spent + earned
    assert btc.free + btc.locked == D(2) + bought - sold


@settings(max_examples=100, deadline=None)
@given(operations)
def test_cancelling_everything_releases_every_reservation(ops: list[tuple[Any, ...]]) -> None:
    ex, _ = run(ops)
    for cid in list(ex.open_orders):
        ack, _ = ex.cancel(cid, 10_000)
        assert ack.cancelled
    assert ex.wallets["USDT"].locked == 0
    assert ex.wallets["BTC"].locked == 0


@settings(max_examples=100, deadline=None)
@given(operations)
def test_fills_never_exceed_the_order_and_respect_limits(ops: list[tuple[Any, ...]]) -> None:
    _, events = run(ops)
    placed = {
        e["client_order_id"]: e
        for e in events
        if e["type"] == "order_update" and e["status"] == "ACCEPTED"
    }
    filled: dict[str, Decimal] = {}
    for fill in (e for e in events if e["type"] == "fill"):
        cid = fill["client_order_id"]
        filled[cid] = filled.get(cid, D(0)) + fill["qty"]
        limit = placed[cid].get("price")
        if limit is not None:
            if fill["side"] == "BUY":
                assert fill["price"] <= limit
            else:
                assert fill["price"] >= limit
    for cid, qty in filled.items():
        assert qty <= placed[cid]["qty"]
