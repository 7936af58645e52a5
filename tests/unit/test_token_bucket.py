"""The token bucket (contract §3, K8) with explicit times: MemoryBuckets and RateLimiter."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.auth import ratelimit
from app.auth.ratelimit import IDLE_SECONDS, SWEEP_SECONDS, Decision, MemoryBuckets, RateLimiter

WALL = 1_800_000_000.75  # int() of it: 1_800_000_000


class FrozenTime:
    """Replaces the `time` module inside app.auth.ratelimit."""

    def __init__(self, monotonic: float = 0.0, wall: float = WALL) -> None:
        self.mono = monotonic
        self.wall = wall

    def monotonic(self) -> float:
        return self.mono

    def time(self) -> float:
        return self.wall


@pytest.fixture
def frozen(monkeypatch: pytest.MonkeyPatch) -> FrozenTime:
    fake = FrozenTime()
    monkeypatch.setattr(ratelimit, "time", fake)
    return fake


# --- MemoryBuckets ------------------------------------------------------------------------------


def test_a_new_bucket_starts_full() -> None:
    buckets = MemoryBuckets()
    assert buckets.peek("a", 5, 1.0, now=100.0) == 5
    assert buckets.take("a", 5, 1.0, now=100.0) == 4


def test_a_burst_of_capacity_then_refusal() -> None:
    buckets = MemoryBuckets()
    assert [buckets.take("a", 3, 1.0, now=100.0) for _ in range(4)] == [2, 1, 0, None]
    assert buckets.take("a", 3, 1.0, now=100.0) is None
    assert buckets.peek("a", 3, 1.0, now=100.0) == 0


def test_refill_is_proportional_to_time() -> None:
    buckets = MemoryBuckets()
    for _ in range(3):
        buckets.take("a", 3, 2.0, now=10.0)
    assert buckets.peek("a", 3, 2.0, now=10.25) == pytest.approx(0.5)
    assert buckets.take("a", 3, 2.0, now=10.25) is None  # half a token is not enough
    assert buckets.take("a", 3, 2.0, now=10.5) == pytest.approx(0.0)
    assert buckets.take("a", 3, 2.0, now=11.5) == pytest.approx(1.0)


def test_a_refusal_takes_nothing() -> None:
    buckets = MemoryBuckets()
    buckets.take("a", 1, 1.0, now=0.0)
    for moment in (0.1, 0.2, 0.3):
        assert buckets.take("a", 1, 1.0, now=moment) is None
    assert buckets.take("a", 1, 1.0, now=1.0) == pytest.approx(0.0)


def test_tokens_never_exceed_the_capacity() -> None:
    buckets = MemoryBuckets()
    buckets.take("a", 3, 10.0, now=0.0)
    assert buckets.peek("a", 3, 10.0, now=1_000.0) == 3
    assert buckets.take("a", 3, 10.0, now=1_000.0) == 2


def test_buckets_are_independent() -> None:
    buckets = MemoryBuckets()
    assert buckets.take("a", 1, 1.0, now=0.0) == 0
    assert buckets.take("a", 1, 1.0, now=0.0) is None
    assert buckets.take("b", 1, 1.0, now=0.0) == 0


def test_sweep_timing_of_the_contract() -> None:
    # At most every 300 s, buckets idle for more than 600 s are dropped (§3).
    assert (SWEEP_SECONDS, IDLE_SECONDS) == (300.0, 600.0)


def test_stale_buckets_are_swept(frozen: FrozenTime) -> None:
    frozen.mono = 0.0
    buckets = MemoryBuckets()  # last sweep: 0
    buckets.take("old", 5, 1.0, now=0.0)
    buckets.take("recent", 5, 1.0, now=500.0)  # a sweep (500 >= 300): "old" idle 500, kept
    assert set(buckets._buckets) == {"old", "recent"}
    buckets.take("x", 5, 1.0, now=700.0)  # "old" idle 700, but the next sweep is not due
    assert set(buckets._buckets) == {"old", "recent", "x"}
    buckets.take("new", 5, 1.0, now=800.0)  # sweep: only "old" is idle more than 600 s
    assert set(buckets._buckets) == {"recent", "x", "new"}
    # A swept bucket comes back full.
    assert buckets.take("old", 5, 1.0, now=800.0) == 4


def test_no_sweep_before_its_interval(frozen: FrozenTime) -> None:
    frozen.mono = 0.0
    buckets = MemoryBuckets()
    buckets.take("a", 5, 1.0, now=-IDLE_SECONDS * 2)  # long idle already
    buckets.take("b", 5, 1.0, now=SWEEP_SECONDS - 1)
    assert set(buckets._buckets) == {"a", "b"}
    buckets.take("b", 5, 1.0, now=SWEEP_SECONDS)
    assert set(buckets._buckets) == {"b"}


def test_the_sweep_keeps_a_bucket_idle_exactly_the_limit(frozen: FrozenTime) -> None:
    frozen.mono = 0.0
    buckets = MemoryBuckets()
    buckets.take("a", 5, 1.0, now=0.0)
    buckets.take("b", 5, 1.0, now=IDLE_SECONDS)
    assert set(buckets._buckets) == {"a", "b"}


# --- RateLimiter: decisions and headers ---------------------------------------------------------


def test_allowed_decisions_count_down(frozen: FrozenTime) -> None:
    limiter = RateLimiter(MemoryBuckets(), capacity=3, refill=1.0)
    decisions = [limiter.check("k", now=50.0) for _ in range(3)]
    assert decisions == [
        # reset = int(now) + int((capacity - tokens) / refill)
        Decision(allowed=True, limit=3, remaining=2, reset_at=1_800_000_001, retry_after=None),
        Decision(allowed=True, limit=3, remaining=1, reset_at=1_800_000_002, retry_after=None),
        Decision(allowed=True, limit=3, remaining=0, reset_at=1_800_000_003, retry_after=None),
    ]


def test_a_refusal_has_retry_after(frozen: FrozenTime) -> None:
    limiter = RateLimiter(MemoryBuckets(), capacity=3, refill=1.0)
    for _ in range(3):
        assert limiter.check("k", now=50.0).allowed
    refused = limiter.check("k", now=50.0)
    # Retry-After = int((1 - tokens) / refill) + 1 with 0 tokens
    assert refused == Decision(
        allowed=False, limit=3, remaining=0, reset_at=1_800_000_003, retry_after=2
    )
    half = limiter.check("k", now=50.5)  # 0.5 tokens
    assert half == Decision(
        allowed=False, limit=3, remaining=0, reset_at=1_800_000_002, retry_after=1
    )
    assert limiter.check("k", now=51.0).allowed  # one whole token


@pytest.mark.parametrize(
    ("refill", "elapsed", "retry_after", "reset_offset"),
    [
        (1.0, 0.0, 2, 2),  # int(1/1) + 1; int(2/1)
        (1.0, 0.9, 1, 1),  # int(0.1) + 1; int(1.1)
        (4.0, 0.0, 1, 0),  # int(0.25) + 1; int(0.5)
        (0.5, 0.0, 3, 4),  # int(2) + 1; int(4)
        (0.5, 1.0, 2, 3),  # 0.5 tokens: int(1) + 1; int(1.5 / 0.5)
        (0.1, 0.0, 11, 20),  # int(10) + 1; int(20)
    ],
)
def test_retry_after_and_reset_formulas(
    frozen: FrozenTime, refill: float, elapsed: float, retry_after: int, reset_offset: int
) -> None:
    limiter = RateLimiter(MemoryBuckets(), capacity=2, refill=refill)
    limiter.check("k", now=0.0)
    limiter.check("k", now=0.0)
    decision = limiter.check("k", now=elapsed)
    assert decision.allowed is False
    assert decision.retry_after == retry_after
    assert decision.reset_at == int(WALL) + reset_offset
    assert decision.remaining == 0


def test_reset_uses_the_wall_clock() -> None:
    limiter = RateLimiter(MemoryBuckets(), capacity=10, refill=2.0)
    before = int(time.time())
    decision = limiter.check("k", now=123.0)  # 9 tokens left: full again in int(0.5) = 0 s
    after = int(time.time())
    assert before <= decision.reset_at <= after
    for _ in range(9):
        decision = limiter.check("k", now=123.0)
    assert before + 5 <= decision.reset_at <= int(time.time()) + 5  # int(10 / 2)


def test_headers_of_a_decision() -> None:
    allowed = Decision(allowed=True, limit=3, remaining=2, reset_at=1_700_000_001, retry_after=None)
    assert allowed.headers() == [
        ("X-RateLimit-Limit", "3"),
        ("X-RateLimit-Remaining", "2"),
        ("X-RateLimit-Reset", "1700000001"),
    ]
    refused = Decision(allowed=False, limit=3, remaining=0, reset_at=1_700_000_003, retry_after=2)
    assert refused.headers() == [
        ("X-RateLimit-Limit", "3"),
        ("X-RateLimit-Remaining", "0"),
        ("X-RateLimit-Reset", "1700000003"),
        ("Retry-After", "2"),
    ]


def test_remaining_is_the_floor_of_the_tokens(frozen: FrozenTime) -> None:
    limiter = RateLimiter(MemoryBuckets(), capacity=5, refill=1.0)
    for _ in range(5):
        limiter.check("k", now=0.0)
    assert limiter.check("k", now=2.7).remaining == 1  # 2.7 tokens, one taken: 1.7
    assert limiter.check("k", now=2.7).remaining == 0  # 0.7


def test_without_a_time_the_monotonic_clock_is_used(frozen: FrozenTime) -> None:
    limiter = RateLimiter(MemoryBuckets(), capacity=1, refill=1.0)
    frozen.mono = 10.0
    assert limiter.check("k").allowed
    assert not limiter.check("k").allowed
    frozen.mono = 11.0
    assert limiter.check("k").allowed


# --- a property: never more than the bucket allows ----------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    capacity=st.integers(min_value=1, max_value=20),
    refill=st.floats(min_value=0.01, max_value=50.0),
    gaps=st.lists(st.floats(min_value=0.0, max_value=2.0), min_size=1, max_size=80),
)
def test_allowed_requests_never_exceed_capacity_plus_refill(
    capacity: int, refill: float, gaps: list[float]
) -> None:
    limiter = RateLimiter(MemoryBuckets(), capacity=capacity, refill=refill)
    now = 1_000.0
    allowed = 0
    for gap in gaps:
        now += gap
        decision = limiter.check("k", now=now)
        allowed += decision.allowed
        assert 0 <= decision.remaining <= capacity - 1 or not decision.allowed
        assert decision.limit == capacity
        assert (decision.retry_after is None) == decision.allowed
        if decision.retry_after is not None:
            assert decision.retry_after >= 1
            assert decision.remaining == 0
    elapsed = now - 1_000.0
    assert allowed <= capacity + refill * elapsed + 1e-6


def test_a_refill_too_slow_to_matter_still_gives_integer_headers(frozen: FrozenTime) -> None:
    """A refill of 5e-324 tokens a second would make the wait infinite; it is capped."""
    limiter = RateLimiter(MemoryBuckets(), capacity=1, refill=5e-324)
    assert limiter.check("k").allowed
    refused = limiter.check("k")
    assert not refused.allowed
    headers = dict(refused.headers())
    assert int(headers["X-RateLimit-Reset"]) == int(WALL) + ratelimit.MAX_WAIT_SECONDS
    assert int(headers["Retry-After"]) == ratelimit.MAX_WAIT_SECONDS + 1
