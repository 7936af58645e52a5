"""Token-bucket rate limiting (contract §3), behind a small store interface.

The in-memory store serves one process; several replicas share buckets in Redis
(app/replication/shared_auth.py), and both answer through `decide`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Protocol

IDLE_SECONDS = 600.0  # a bucket unused this long is full again; drop it
SWEEP_SECONDS = 300.0


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_at: int  # unix seconds when the bucket is full again
    retry_after: int | None  # seconds, only when refused

    def headers(self) -> list[tuple[str, str]]:
        headers = [
            ("X-RateLimit-Limit", str(self.limit)),
            ("X-RateLimit-Remaining", str(self.remaining)),
            ("X-RateLimit-Reset", str(self.reset_at)),
        ]
        if self.retry_after is not None:
            headers.append(("Retry-After", str(self.retry_after)))
        return headers


class BucketStore(Protocol):
    def take(self, identity: str, capacity: float, refill: float, now: float) -> float | None:
        """Take one token; the tokens left after it, or None when the bucket was empty
        (then the tokens it holds are reported through `peek`)."""

    def peek(self, identity: str, capacity: float, refill: float, now: float) -> float: ...


class MemoryBuckets:
    """Buckets in a dict: (tokens, last refill time). O(1) per request."""

    def __init__(self) -> None:
        self._buckets: dict[str, tuple[float, float]] = {}
        self._last_sweep = time.monotonic()

    def _refilled(self, identity: str, capacity: float, refill: float, now: float) -> float:
        tokens, last = self._buckets.get(identity, (capacity, now))
        return min(capacity, tokens + (now - last) * refill)

    def take(self, identity: str, capacity: float, refill: float, now: float) -> float | None:
        self._sweep(now)
        tokens = self._refilled(identity, capacity, refill, now)
        if tokens < 1:
            self._buckets[identity] = (tokens, now)
            return None
        self._buckets[identity] = (tokens - 1, now)
        return tokens - 1

    def peek(self, identity: str, capacity: float, refill: float, now: float) -> float:
        return self._refilled(identity, capacity, refill, now)

    def _sweep(self, now: float) -> None:
        if now - self._last_sweep < SWEEP_SECONDS:
            return
        self._last_sweep = now
        stale = [k for k, (_, last) in self._buckets.items() if now - last > IDLE_SECONDS]
        for key in stale:
            del self._buckets[key]


# A tiny refill rate (say 1e-300/s) would make the wait infinite; headers stay integers.
MAX_WAIT_SECONDS = 100 * 365 * 86_400


def _wait(seconds: float) -> int:
    return int(min(seconds, MAX_WAIT_SECONDS))


class RateLimiter:
    def __init__(self, store: BucketStore, capacity: int, refill: float) -> None:
        self.store = store
        self.capacity = capacity
        self.refill = refill

    def check(self, identity: str, now: float | None = None) -> Decision:
        moment = time.monotonic() if now is None else now
        wall = time.time()
        tokens = self.store.take(identity, self.capacity, self.refill, moment)
        allowed = tokens is not None
        if tokens is None:
            tokens = self.store.peek(identity, self.capacity, self.refill, moment)
        return decide(allowed, tokens, self.capacity, self.refill, wall)


def decide(
    allowed: bool, tokens: float, capacity: int, refill: float, wall: float | None = None
) -> Decision:
    """The answer for a bucket holding `tokens` after the request took one (or could not)."""
    now = time.time() if wall is None else wall
    return Decision(
        allowed=allowed,
        limit=capacity,
        remaining=max(0, math.floor(tokens)),
        reset_at=int(now) + _wait((capacity - tokens) / refill),
        retry_after=None if allowed else _wait((1 - tokens) / refill) + 1,
    )
