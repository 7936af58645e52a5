"""Small statistics helpers shared by the HTTP and SSE measurements."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


def percentile(sorted_values: Sequence[float], pct: float) -> float | None:
    """Nearest-rank percentile of an already sorted sequence; None when it is empty."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(pct / 100 * len(sorted_values)))
    return float(sorted_values[min(rank, len(sorted_values)) - 1])


def ns_to_ms(value: float | None) -> float | None:
    return None if value is None else value / 1e6


def round_ms(value: float | None) -> float | None:
    """Microsecond resolution is plenty for the JSON file."""
    return None if value is None else round(value, 3)


@dataclass(frozen=True, slots=True)
class LatencySummary:
    """Latency percentiles in milliseconds (None when there were no samples)."""

    count: int
    p50_ms: float | None
    p99_ms: float | None
    p999_ms: float | None
    max_ms: float | None
    mean_ms: float | None

    @classmethod
    def from_ns(cls, samples_ns: Sequence[int]) -> LatencySummary:
        ordered = sorted(samples_ns)
        mean = sum(ordered) / len(ordered) if ordered else None
        return cls(
            count=len(ordered),
            p50_ms=ns_to_ms(percentile(ordered, 50)),
            p99_ms=ns_to_ms(percentile(ordered, 99)),
            p999_ms=ns_to_ms(percentile(ordered, 99.9)),
            max_ms=ns_to_ms(float(ordered[-1])) if ordered else None,
            mean_ms=ns_to_ms(mean),
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "p50_ms": round_ms(self.p50_ms),
            "p99_ms": round_ms(self.p99_ms),
            "p99_9_ms": round_ms(self.p999_ms),
            "max_ms": round_ms(self.max_ms),
            "mean_ms": round_ms(self.mean_ms),
        }
