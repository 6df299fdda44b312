"""The event loop's own metrics export what prometheus_client's would for the same observations
(the series are a public contract: dashboards, alerts and the benchmark read them)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as openmetrics_latest

from uoom_orders.observability.loop_metrics import LoopCounter, LoopHistogram

BOUNDS = (0.0005, 0.001, 0.002, 0.005, 0.01)
_CREATED = re.compile(rb"(_created(?:\{[^}]*\})?) \S+")


def _without_creation_times(exposition: bytes) -> bytes:
    # Each child's creation time is its own clock reading; everything else must match.
    return _CREATED.sub(rb"\1 T", exposition)


def _pair() -> tuple[CollectorRegistry, CollectorRegistry]:
    return CollectorRegistry(), CollectorRegistry()


observations = st.lists(
    st.tuples(
        st.sampled_from(["GetOrderStatus", "BatchGetOrderStatus", "CreateOrder"]),
        st.sampled_from(["OK", "NOT_FOUND"]),
        # Bounds themselves included: a value equal to a bound is in that bound's bucket.
        st.one_of(st.sampled_from(BOUNDS), st.floats(min_value=0, max_value=1)),
    ),
    max_size=40,
)


@given(observations)
def test_series_match_prometheus_client(seen: list[tuple[str, str, float]]) -> None:
    theirs, ours = _pair()
    their_count = Counter("calls_total", "calls", ["method", "code"], registry=theirs)
    their_time = Histogram("call_seconds", "time", ["method"], buckets=BOUNDS, registry=theirs)
    our_count = LoopCounter("calls_total", "calls", ["method", "code"], registry=ours)
    our_time = LoopHistogram("call_seconds", "time", ["method"], buckets=BOUNDS, registry=ours)
    for method, code, seconds in seen:
        their_count.labels(method=method, code=code).inc()
        our_count.labels(method=method, code=code).inc()
        their_time.labels(method=method).observe(seconds)
        our_time.labels(method=method).observe(seconds)
    for exposition in (generate_latest, openmetrics_latest):
        assert _without_creation_times(exposition(ours)) == _without_creation_times(
            exposition(theirs)
        )


def test_registry_reads_the_values() -> None:
    registry = CollectorRegistry()
    hits = LoopCounter("hits_total", "hits", ["tier"], registry=registry)
    latency = LoopHistogram("read_seconds", "latency", ["tier"], buckets=BOUNDS, registry=registry)
    hits.labels(tier="near-cache").inc()
    hits.labels(tier="near-cache").inc(9)
    latency.labels(tier="near-cache").observe(0.001)
    latency.labels(tier="near-cache").observe(0.003)

    def value(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, labels)

    assert value("hits_total", tier="near-cache") == 10
    assert value("hits_total", tier="dax") is None
    assert value("read_seconds_bucket", tier="near-cache", le="0.001") == 1
    assert value("read_seconds_bucket", tier="near-cache", le="0.005") == 2
    assert value("read_seconds_bucket", tier="near-cache", le="+Inf") == 2
    assert value("read_seconds_count", tier="near-cache") == 2
    assert value("read_seconds_sum", tier="near-cache") == pytest.approx(0.004)
    assert value("read_seconds_created", tier="near-cache") is not None


def test_a_child_is_the_same_for_the_same_labels() -> None:
    counter = LoopCounter("x_total", "x", ["a"], registry=CollectorRegistry())
    assert counter.labels(a="1") is counter.labels(a="1")
    assert counter.labels(a="1") is not counter.labels(a="2")


@pytest.mark.parametrize("labels", [{}, {"tier": "x", "other": "y"}, {"other": "y"}])
def test_labels_must_be_exactly_the_declared_ones(labels: dict[str, str]) -> None:
    counter = LoopCounter("x_total", "x", ["tier"], registry=CollectorRegistry())
    with pytest.raises(ValueError, match="labels are tier"):
        counter.labels(**labels)


def test_a_name_is_registered_once() -> None:
    registry = CollectorRegistry()
    LoopCounter("x_total", "x", ["a"], registry=registry)
    with pytest.raises(ValueError, match="Duplicated"):
        Counter("x_total", "x", ["a"], registry=registry)


def test_bounds_must_increase() -> None:
    with pytest.raises(ValueError, match="increase"):
        LoopHistogram("h", "h", ["a"], buckets=(0.1, 0.01), registry=CollectorRegistry())
