"""Capped exponential back-off with jitter, for reconnect loops."""

from __future__ import annotations

import random


class Backoff:
    def __init__(self, first: float = 0.1, cap: float = 30.0) -> None:
        self.first = first
        self.cap = cap
        self._next = first
        self._random = random.Random()  # noqa: S311 (spreading reconnects, not security)

    def delay(self) -> float:
        """The next wait: a random point in the upper half of the current step ("equal
        jitter"), so many clients dropped together do not come back together."""
        step = self._next
        self._next = min(self._next * 2, self.cap)
        return self._random.uniform(step / 2, step)

    def reset(self) -> None:
        self._next = self.first
