"""Rules of the venue client: signing, decimals on the wire, limits, back-off, de-duplicating
reports, and sealing stored secrets."""

from __future__ import annotations

import hashlib
import hmac
from decimal import Decimal

import pytest

from app.core.secretbox import SecretBox, SecretUnreadable
from app.execution.binance.backoff import Backoff
from app.execution.binance.limits import VenueLimits
from app.execution.binance.signing import (
    Credentials,
    signature,
    signed_query,
    signed_ws_params,
    wire_value,
)
from app.execution.binance.tracking import OrderTracker, VenueReport, map_status

# --- signing ----------------------------------------------------------------------------------


def test_signature_matches_the_venue_documentation_example() -> None:
    secret = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
    payload = ("symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1"
               "&recvWindow=5000&timestamp=1499827319559")  # fmt: skip
    assert signature(secret, payload) == (
        "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"
    )


def test_signed_query_sorts_adds_time_and_window_and_signs_last() -> None:
    query = signed_query({"symbol": "BTCUSDT", "side": "SELL", "quantity": Decimal("0.5")},
                         "s3cret", 1_700_000_000_000, 5000)  # fmt: skip
    payload, _, sig = query.rpartition("&signature=")
    assert payload == (
        "quantity=0.5&recvWindow=5000&side=SELL&symbol=BTCUSDT&timestamp=1700000000000"
    )
    assert sig == hmac.new(b"s3cret", payload.encode(), hashlib.sha256).hexdigest()


def test_websocket_subscription_params_are_signed_over_the_others_sorted() -> None:
    params = signed_ws_params(Credentials("k-1", "s-1"), 1_700_000_000_000, 5000)
    assert list(params) == ["apiKey", "recvWindow", "timestamp", "signature"]
    payload = "apiKey=k-1&recvWindow=5000&timestamp=1700000000000"
    assert params["signature"] == hmac.new(b"s-1", payload.encode(), hashlib.sha256).hexdigest()


def test_credentials_never_show_the_secret() -> None:
    assert "s-1" not in repr(Credentials("k-1", "s-1"))


@pytest.mark.parametrize(
    ("value", "wire"),
    [
        (Decimal("1E-5"), "0.00001"),
        (Decimal("0.00000001"), "0.00000001"),
        (Decimal("50000.000"), "50000"),
        (Decimal("1E+3"), "1000"),
        (1e-05, "0.00001"),
        (0.1, "0.1"),
        (True, "true"),
        (5000, "5000"),
    ],
)
def test_numbers_go_out_as_plain_decimals(value: Decimal | float | bool | int, wire: str) -> None:
    assert wire_value(value) == wire  # type: ignore[arg-type]


# --- limits -----------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_weight_budget_holds_background_calls_until_the_minute_rolls() -> None:
    clock = Clock()
    limits = VenueLimits(budget=100, clock=clock)
    limits.observe(200, {"x-mbx-used-weight-1m": "99"})
    assert limits.refusal(background=True) is None
    limits.observe(200, {"x-mbx-used-weight-1m": "100"})
    refusal = limits.refusal(background=True)
    assert refusal is not None and refusal.reason == "weight_budget"
    assert refusal.retry_after == 60
    assert limits.refusal(background=False) is None  # orders and cancels still go
    clock.now += 60
    assert limits.refusal(background=True) is None
    assert limits.current_weight() == 0


@pytest.mark.parametrize(("status", "reason"), [(429, "rate_limited"), (418, "ip_banned")])
def test_429_and_418_hold_every_call_for_retry_after(status: int, reason: str) -> None:
    clock = Clock()
    limits = VenueLimits(budget=100, clock=clock)
    limits.observe(status, {"retry-after": "3"})
    for background in (False, True):
        refusal = limits.refusal(background)
        assert refusal is not None and (refusal.reason, refusal.retry_after) == (reason, 3)
    clock.now += 2.999
    assert limits.refusal(False) is not None
    clock.now += 0.001
    assert limits.refusal(False) is None


def test_a_limit_answer_without_retry_after_waits_a_minute() -> None:
    clock = Clock()
    limits = VenueLimits(budget=100, clock=clock)
    limits.observe(418, {})
    refusal = limits.refusal(False)
    assert refusal is not None and refusal.retry_after == 60
    assert limits.snapshot()["bans_total"] == 1


def test_backoff_grows_with_jitter_to_a_cap_and_resets() -> None:
    backoff = Backoff(first=0.1, cap=1.0)
    steps = [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    for step in steps:
        delay = backoff.delay()
        assert step / 2 <= delay <= step
    backoff.reset()
    assert backoff.delay() <= 0.1


# --- reports ----------------------------------------------------------------------------------


def report(status: str, cum: str, quote: str, **extra: object) -> VenueReport:
    return VenueReport("c1", "BTCUSDT", status, Decimal(cum), Decimal(quote), "7", "BUY",
                       Decimal("2"), Decimal("100"), 1, **extra)  # type: ignore[arg-type]  # fmt: skip


def test_a_report_seen_twice_or_by_both_paths_is_published_once() -> None:
    tracker = OrderTracker()
    first = tracker.apply(report("NEW", "0", "0"), 1)
    assert [e["type"] for e in first] == ["order_update"]
    assert first[0]["status"] == "ACCEPTED" and first[0]["qty"] == Decimal("2")
    partial = report("PARTIALLY_FILLED", "1", "99", last_qty=Decimal("1"),
                     last_price=Decimal("99"))  # fmt: skip
    events = tracker.apply(partial, 2)
    assert [(e["type"], e.get("status"), e.get("qty"), e.get("price")) for e in events] == [
        ("order_update", "PARTIALLY_FILLED", Decimal("2"), Decimal("100")),
        ("fill", None, Decimal("1"), Decimal("99")),
    ]
    assert tracker.apply(partial, 3) == []  # the stream repeats itself
    assert tracker.apply(report("PARTIALLY_FILLED", "1", "99"), 4) == []  # REST says the same
    assert tracker.apply(report("NEW", "0", "0"), 5) == []  # an older report changes nothing
    done = tracker.apply(report("CANCELED", "1", "99"), 6)
    assert [e["status"] for e in done] == ["CANCELLED"]
    assert tracker.apply(report("PARTIALLY_FILLED", "1", "99"), 7) == []  # late, and final stays


def test_a_poll_that_spans_two_trades_is_one_fill_at_their_average() -> None:
    tracker = OrderTracker()
    tracker.apply(report("NEW", "0", "0"), 1)
    events = tracker.apply(report("FILLED", "2", "197"), 2)
    fill = events[-1]
    assert (fill["type"], fill["qty"], fill["price"]) == ("fill", Decimal("2"), Decimal("98.5"))


@pytest.mark.parametrize(
    ("venue", "gateway"),
    [("NEW", "ACCEPTED"), ("CANCELED", "CANCELLED"), ("FILLED", "FILLED"),
     ("EXPIRED", "EXPIRED"), ("pending_cancel", "PENDING_CANCEL"), ("", "UNKNOWN")],
)  # fmt: skip
def test_status_mapping(venue: str, gateway: str) -> None:
    assert map_status(venue) == gateway


# --- sealed secrets ---------------------------------------------------------------------------


def test_sealed_secrets_open_only_with_the_same_key_and_context() -> None:
    box = SecretBox("master-one")
    sealed = box.seal("api-secret", "row-1:api_secret")
    assert "api-secret" not in sealed
    assert box.seal("api-secret", "row-1:api_secret") != sealed  # a fresh nonce each time
    assert box.open(sealed, "row-1:api_secret") == "api-secret"
    with pytest.raises(SecretUnreadable):
        box.open(sealed, "row-2:api_secret")  # moved to another row
    with pytest.raises(SecretUnreadable):
        SecretBox("master-two").open(sealed, "row-1:api_secret")
    tampered = sealed[:-4] + ("AAAA" if not sealed.endswith("AAAA") else "BBBB")
    with pytest.raises(SecretUnreadable):
        box.open(tampered, "row-1:api_secret")
