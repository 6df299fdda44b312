"""Percentiles of one measurement and the median and spread of a figure across rounds."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

NS_PER_MS = 1_000_000


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """The `fraction` (0..1) percentile of sorted values, interpolated linearly (NaN if empty)."""
    if not sorted_values:
        return math.nan
    position = (len(sorted_values) - 1) * fraction
    low = math.floor(position)
    high = math.ceil(position)
    if low == high:
        return float(sorted_values[low])
    weight = position - low
    return float(sorted_values[low] * (1 - weight) + sorted_values[high] * weight)


def latency_figures(latencies_ns: Sequence[int], prefix: str = "") -> dict[str, float]:
    """p50/p95/p99/mean/max in milliseconds, keys prefixed with `prefix` (e.g. "read_")."""
    ordered = sorted(latencies_ns)
    mean = statistics.fmean(ordered) if ordered else math.nan
    return {
        f"{prefix}p50_ms": percentile(ordered, 0.50) / NS_PER_MS,
        f"{prefix}p95_ms": percentile(ordered, 0.95) / NS_PER_MS,
        f"{prefix}p99_ms": percentile(ordered, 0.99) / NS_PER_MS,
        f"{prefix}mean_ms": mean / NS_PER_MS,
        f"{prefix}max_ms": (ordered[-1] / NS_PER_MS) if ordered else math.nan,
    }


@dataclass(frozen=True)
class Spread:
    """A figure across rounds: its median, and the lowest and highest round."""

    median: float
    low: float
    high: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread | None:
        """The spread of the finite values, or None when there is none."""
        finite = [v for v in values if math.isfinite(v)]
        if not finite:
            return None
        return cls(statistics.median(finite), min(finite), max(finite))

    def as_dict(self) -> dict[str, float]:
        """For the JSON report."""
        return {"median": self.median, "min": self.low, "max": self.high}
