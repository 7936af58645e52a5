"""The venue's limits as the client sees them: request weight per minute, 429 back-off, 418 bans.

A 429 asks us to wait `Retry-After` seconds; ignoring it leads to a 418, an IP ban during which
every call is refused. So once either arrives no call is sent until the time has passed.
Background calls (polling) also stop when the weight used this minute reaches our budget,
leaving the rest of the venue's limit (6000 per minute) to orders and cancels.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

WEIGHT_HEADER = "x-mbx-used-weight-1m"
DEFAULT_RETRY_AFTER = 60.0  # seconds, when a 429/418 names no Retry-After
MINUTE = 60.0


@dataclass(frozen=True, slots=True)
class Refusal:
    reason: str  # "ip_banned", "rate_limited" or "weight_budget"
    retry_after: float  # seconds


class VenueLimits:
    def __init__(self, budget: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.budget = budget
        self._clock = clock
        self.used_weight = 0
        self._weight_at = -MINUTE  # when used_weight was reported
        self.backoff_until = 0.0
        self.banned_until = 0.0
        self.rate_limited_count = 0
        self.ban_count = 0

    def refusal(self, background: bool) -> Refusal | None:
        """Why a call must not be sent now, or None."""
        now = self._clock()
        if now < self.banned_until:
            return Refusal("ip_banned", self.banned_until - now)
        if now < self.backoff_until:
            return Refusal("rate_limited", self.backoff_until - now)
        if background and self.current_weight() >= self.budget:
            return Refusal("weight_budget", max(0.0, self._weight_at + MINUTE - now))
        return None

    def current_weight(self) -> int:
        """The weight last reported, or 0 once a minute has passed since (the window rolled)."""
        return self.used_weight if self._clock() - self._weight_at < MINUTE else 0

    def observe(self, status: int, headers: Mapping[str, str]) -> None:
        """Learn from a response: used weight, and 429 / 418 with their Retry-After."""
        weight = headers.get(WEIGHT_HEADER)
        if weight is not None and weight.strip().isdigit():
            self.used_weight = int(weight)
            self._weight_at = self._clock()
        if status in (418, 429):
            wait = _retry_after(headers.get("retry-after"))
            until = self._clock() + wait
            if status == 418:
                self.ban_count += 1
                self.banned_until = max(self.banned_until, until)
            else:
                self.rate_limited_count += 1
                self.backoff_until = max(self.backoff_until, until)

    def snapshot(self) -> dict[str, Any]:
        now = self._clock()
        return {
            "used_weight_1m": self.current_weight(),
            "weight_budget": self.budget,
            "banned": now < self.banned_until,
            "ban_seconds_left": round(max(0.0, self.banned_until - now), 3),
            "backing_off": now < self.backoff_until,
            "backoff_seconds_left": round(max(0.0, self.backoff_until - now), 3),
            "rate_limited_total": self.rate_limited_count,
            "bans_total": self.ban_count,
        }


def _retry_after(value: str | None) -> float:
    try:
        seconds = float(value) if value is not None else DEFAULT_RETRY_AFTER
    except ValueError:
        return DEFAULT_RETRY_AFTER
    return seconds if seconds >= 0 else DEFAULT_RETRY_AFTER
