"""What the service's processes say about themselves: their Prometheus endpoints, scraped
before and after a measurement, and the difference read as counters and histograms.

Quantiles of a histogram are estimated the way PromQL's `histogram_quantile` does it: linear
interpolation inside the bucket that holds the rank, the highest finite bound when the rank is
in the +Inf bucket. They are only as fine as the buckets (LAG_BUCKETS start at 5 ms); the mean,
from `_sum` and `_count`, is exact.
"""

from __future__ import annotations

import asyncio
import math
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

from uoom_orders_devstack.ports import LOOPBACK, free_port

SeriesKey = tuple[str, frozenset[tuple[str, str]]]
Samples = dict[SeriesKey, float]
"""Every sample of one scrape: (sample name, labels) → value."""

_SCRAPE_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class MetricsEndpoint:
    """One process's Prometheus endpoint, named as the benchmark's tables name the process."""

    process: str
    url: str
    pid: int | None = None
    """Set for a process whose CPU per event the stages show (the relay's, the projector's)."""

    async def scrape(self) -> Samples:
        """Every sample the endpoint shows now."""
        text = await asyncio.to_thread(_fetch, self.url)
        return parse(text)


def with_metrics_port(
    env: Mapping[str, str], process: str
) -> tuple[dict[str, str], MetricsEndpoint]:
    """`env` with a free METRICS_PORT of its own, and the endpoint the process will serve."""
    port = free_port()
    return dict(env) | {"METRICS_PORT": str(port)}, MetricsEndpoint(
        process, f"http://{LOOPBACK}:{port}/metrics"
    )


def _fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=_SCRAPE_TIMEOUT_S) as response:
        body: bytes = response.read()
    return body.decode("utf-8")


def parse(text: str) -> Samples:
    """The samples of a Prometheus text exposition."""
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = float(sample.value)
    return samples


def _matches(key: SeriesKey, name: str, labels: Mapping[str, str]) -> bool:
    return key[0] == name and all((k, v) in key[1] for k, v in labels.items())


def counter(samples: Samples, name: str, labels: Mapping[str, str] | None = None) -> float:
    """The sum of every series of `name` (e.g. `x_total`) that carries `labels`."""
    wanted = labels or {}
    return sum(value for key, value in samples.items() if _matches(key, name, wanted))


def counter_by(samples: Samples, name: str, label: str) -> dict[str, float]:
    """Every series of `name`, summed by the value of one label."""
    out: dict[str, float] = {}
    for (sample, labels), value in samples.items():
        if sample == name:
            by = dict(labels).get(label, "")
            out[by] = out.get(by, 0.0) + value
    return out


@dataclass(frozen=True)
class HistogramCounts:
    """A histogram's cumulative bucket counts (upper bound → count, +Inf included), its count
    and its sum."""

    buckets: tuple[tuple[float, float], ...]
    count: float
    total: float

    @classmethod
    def of(
        cls, samples: Samples, name: str, labels: Mapping[str, str] | None = None
    ) -> HistogramCounts:
        """The histogram `name` (its family name), summed over the series carrying `labels`."""
        wanted = dict(labels or {})
        by_bound: dict[float, float] = {}
        for (sample, sample_labels), value in samples.items():
            if sample != f"{name}_bucket":
                continue
            as_dict = dict(sample_labels)
            if any(as_dict.get(k) != v for k, v in wanted.items()):
                continue
            bound = float(as_dict["le"])
            by_bound[bound] = by_bound.get(bound, 0.0) + value
        return cls(
            tuple(sorted(by_bound.items())),
            counter(samples, f"{name}_count", wanted),
            counter(samples, f"{name}_sum", wanted),
        )

    def minus(self, earlier: HistogramCounts) -> HistogramCounts:
        """What was observed between `earlier` and this one (a series new since is whole)."""
        before = dict(earlier.buckets)
        return HistogramCounts(
            tuple((bound, count - before.get(bound, 0.0)) for bound, count in self.buckets),
            self.count - earlier.count,
            self.total - earlier.total,
        )

    @property
    def mean(self) -> float:
        """The exact mean of the observations (NaN without any)."""
        return self.total / self.count if self.count > 0 else math.nan

    def quantile(self, q: float) -> float:
        """The `q` (0..1) quantile as `histogram_quantile` estimates it (NaN without any)."""
        if self.count <= 0 or not self.buckets:
            return math.nan
        rank = q * self.count
        lower, below = 0.0, 0.0
        for bound, cumulative in self.buckets:
            if cumulative >= rank:
                if math.isinf(bound):
                    return lower  # the highest finite bound: nothing finer is known
                if cumulative == below:
                    return bound
                return lower + (bound - lower) * (rank - below) / (cumulative - below)
            lower, below = bound, cumulative
        return lower
