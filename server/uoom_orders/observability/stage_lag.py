"""The pipeline's lag stage by stage, from timestamps the events already carry.

- commit: the outbox row's `created_at` (`clock_timestamp()` at its insert, the transaction's
  last statement), by PostgreSQL's clock;
- publication: the Kafka record's timestamp, set by the relay's producer as it sends the record
  (CreateTime), or by the broker as it appends it when the topic says LogAppendTime.

Each stage is measured where it ends (relay: Kafka's acknowledgement; near-cache feed: the
apply; projector: the write), by that process's clock, so a clock that runs apart from the
one that stamped the start skews the stage by as much: keep hosts on NTP. A negative lag (a
clock behind) is counted as 0.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from prometheus_client import Histogram


def seconds_since_published(record: Any, now: float) -> float | None:
    """Seconds from a consumed record's timestamp to `now` (Unix seconds); None when the record
    carries no timestamp (an old message format, or a record that is not Kafka's)."""
    timestamp = getattr(record, "timestamp", None)
    if not isinstance(timestamp, int) or timestamp <= 0:
        return None
    return max(0.0, now - timestamp / 1000)


def observe_since_published(histogram: Histogram, record: Any, now: float) -> None:
    """Observes the record's age at `now`, when it carries a timestamp."""
    lag = seconds_since_published(record, now)
    if lag is not None:
        histogram.observe(lag)


def observe_since_committed(
    histogram: Histogram, committed_at: Iterable[datetime], now: float
) -> None:
    """Observes, for each commit time (timezone-aware), the seconds from it to `now`."""
    for moment in committed_at:
        histogram.observe(max(0.0, now - moment.timestamp()))
