"""The benchmark's reading of the processes' metrics: histogram differences, quantiles estimated
like PromQL's histogram_quantile, and the lag by stage between two scrapes."""

from __future__ import annotations

import math

import pytest
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from uoom_orders.observability.metrics import LAG_BUCKETS
from uoom_orders_bench.process_metrics import HistogramCounts, MetricsEndpoint, parse
from uoom_orders_bench.stages import pipeline_stages, slowest, stage_figures, stage_rows, summary


def exposition(observations: list[float], name: str = "x_lag_seconds") -> str:
    registry = CollectorRegistry()
    histogram = Histogram(name, "test", buckets=LAG_BUCKETS, registry=registry)
    for value in observations:
        histogram.observe(value)
    return generate_latest(registry).decode()


def test_quantiles_interpolate_inside_the_bucket_like_histogram_quantile() -> None:
    # 100 observations, evenly in (0.010, 0.025]: the p50 lies half-way through that bucket.
    counts = HistogramCounts.of(parse(exposition([0.02] * 100)), "x_lag_seconds")
    assert counts.count == 100
    assert counts.quantile(0.5) == pytest.approx(0.0175)
    assert counts.mean == pytest.approx(0.02)


def test_a_rank_in_the_infinite_bucket_is_the_highest_finite_bound() -> None:
    counts = HistogramCounts.of(parse(exposition([100.0, 100.0])), "x_lag_seconds")
    assert counts.quantile(0.99) == LAG_BUCKETS[-1]


def test_no_observations_give_nan() -> None:
    counts = HistogramCounts.of(parse(exposition([])), "x_lag_seconds")
    assert math.isnan(counts.quantile(0.5))
    assert math.isnan(counts.mean)


def test_the_difference_holds_only_what_was_observed_in_between() -> None:
    before = HistogramCounts.of(parse(exposition([5.0] * 10)), "x_lag_seconds")
    after = HistogramCounts.of(parse(exposition([5.0] * 10 + [0.003] * 4)), "x_lag_seconds")
    seen = after.minus(before)
    assert seen.count == 4
    assert seen.mean == pytest.approx(0.003)
    assert seen.quantile(0.99) <= LAG_BUCKETS[0]


def test_stage_figures_name_the_slowest_stage() -> None:
    relay = MetricsEndpoint("pipeline", "http://pipeline/metrics")
    api = MetricsEndpoint("replica", "http://replica/metrics")
    stages = pipeline_stages(relay, relay, [api])
    empty = {relay.url: parse(""), api.url: parse("")}
    pipeline_text = exposition([0.02] * 10, "outbox_publish_lag_seconds") + exposition(
        [0.4] * 10, "projector_write_lag_seconds"
    )
    after = {
        relay.url: parse(pipeline_text),
        api.url: parse(exposition([0.004] * 10, "near_cache_feed_lag_seconds")),
    }
    figures = stage_figures(stages, empty, after)
    assert figures["stage_relay_events"] == 10
    assert figures["stage_feed_replica_p99_ms"] <= 5
    assert figures["stage_projector_mean_ms"] == pytest.approx(400)
    # commit -> DynamoDB spans the others and saw nothing here: not a figure anyone is named by.
    worst = slowest(stages, figures)
    assert worst is not None
    assert worst.key == "projector"
    assert "slowest at p99: published -> DynamoDB write (projector)" in summary(stages, figures)


def test_a_process_that_did_not_answer_has_no_figures() -> None:
    relay = MetricsEndpoint("pipeline", "http://pipeline/metrics")
    stages = pipeline_stages(relay, relay, [])
    assert stage_figures(stages, {}, {}) == {}
    assert summary(stages, {}).startswith("stage lags: n/a")


def test_processes_with_a_pid_get_rows_for_their_cpu_per_event() -> None:
    relay = MetricsEndpoint("relay", "http://relay/metrics", pid=1234)
    projector = MetricsEndpoint("projector", "http://projector/metrics", pid=5678)
    api = MetricsEndpoint("service", "http://service/metrics")
    keys = [key for key, _, _ in stage_rows(pipeline_stages(relay, projector, [api]))]
    assert "cpu_relay_ms_per_event" in keys
    assert "cpu_projector_ms_per_event" in keys
    assert not any(key.startswith("cpu_service") for key in keys)


def test_carriers_get_cpu_rows_and_a_place_in_the_summary() -> None:
    relay = MetricsEndpoint("relay", "http://relay/metrics", pid=1234)
    projector = MetricsEndpoint("projector", "http://projector/metrics", pid=5678)
    stages = pipeline_stages(relay, projector, [])
    carriers = {"broker": 42, "dynamodb": 43}
    keys = [key for key, _, _ in stage_rows(stages, carriers)]
    assert keys[-4:] == [
        "cpu_broker_ms_per_event",
        "cpu_broker_core_pct",
        "cpu_dynamodb_ms_per_event",
        "cpu_dynamodb_core_pct",
    ]
    figures = {
        "stage_relay_p50_ms": 1.0,
        "stage_relay_p99_ms": 2.0,
        "cpu_relay_ms_per_event": 1.5,
        "cpu_broker_ms_per_event": 3.25,
    }
    line = summary(stages, figures, carriers)
    # A carrier without a figure (its process was gone) is left out, not shown as zero.
    assert line.endswith("CPU ms per event: relay 1.50, broker 3.25")
