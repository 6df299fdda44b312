"""The pipeline's lag by stage during a scenario, as the processes' own histograms measured it.

The service exports one histogram per stage (observability/stage_lag.py): commit → Kafka
acknowledgement in the relay, publication → apply in each API replica's near-cache feed,
publication → DynamoDB write in the projector (and commit → DynamoDB write, from the event's
time). A scenario's figures get, per stage, the p50 and p99 (bucket-interpolated, so no finer
than LAG_BUCKETS: 5, 10, 25, 50 ms ...), the exact mean and the count of what was observed
between a scrape before and one after it, so the slow stage is named by a figure.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass

from uoom_orders_bench.cpu import CPU_PREFIX, CpuWindow
from uoom_orders_bench.process_metrics import HistogramCounts, MetricsEndpoint, Samples

STAGE_PREFIX = "stage_"


@dataclass(frozen=True)
class Stage:
    """One stage: its figures' key, its label, and the histogram of which process measures it."""

    key: str
    label: str
    endpoint: MetricsEndpoint
    histogram: str
    part: bool = True
    """False for a stage that spans others (commit → DynamoDB): never named the slowest."""


def pipeline_stages(
    relay: MetricsEndpoint, projector: MetricsEndpoint, api_replicas: Sequence[MetricsEndpoint]
) -> tuple[Stage, ...]:
    """The stages, in the order an event passes them (one feed per API replica)."""
    return (
        Stage("relay", "commit -> Kafka ack (relay)", relay, "outbox_publish_lag_seconds"),
        *(
            Stage(
                f"feed_{api.process}",
                f"published -> near cache of {api.process}",
                api,
                "near_cache_feed_lag_seconds",
            )
            for api in api_replicas
        ),
        Stage(
            "projector",
            "published -> DynamoDB write (projector)",
            projector,
            "projector_write_lag_seconds",
        ),
        Stage(
            "commit_to_dynamodb",
            "commit -> DynamoDB write (event time)",
            projector,
            "projector_end_to_end_lag_seconds",
            part=False,
        ),
    )


async def _scrape(stages: Sequence[Stage]) -> dict[str, Samples]:
    endpoints = {stage.endpoint.url: stage.endpoint for stage in stages}
    scraped: dict[str, Samples] = {}
    for url, endpoint in endpoints.items():
        try:
            scraped[url] = await endpoint.scrape()
        except OSError:  # a process that is gone or not serving: its stages show n/a
            continue
    return scraped


def _cpu_processes(
    stages: Sequence[Stage], carriers: Mapping[str, int] | None = None
) -> dict[str, int]:
    """The processes whose CPU per event is shown: name → pid (the relay's, the projector's,
    then `carriers`: processes every event passes without a stage of their own, such as the
    local broker and the local DynamoDB endpoint)."""
    stage_pids = {s.endpoint.process: s.endpoint.pid for s in stages if s.endpoint.pid is not None}
    return stage_pids | dict(carriers or {})


async def with_stage_lags(
    stages: Sequence[Stage],
    measurement: Awaitable[dict[str, float]],
    carriers: Mapping[str, int] | None = None,
) -> dict[str, float]:
    """The measurement's figures, plus each stage's lag observed while it ran, and the CPU
    per event of the processes that carry their pid and of `carriers` (per event the relay
    published)."""
    if not stages:
        return await measurement
    windows = {name: CpuWindow(pid) for name, pid in _cpu_processes(stages, carriers).items()}
    before = await _scrape(stages)
    for window in windows.values():
        window.start()
    figures = await measurement
    for window in windows.values():
        window.stop()
    after = await _scrape(stages)
    figures |= stage_figures(stages, before, after)
    events = figures.get(f"{STAGE_PREFIX}relay_events", 0.0)
    for name, window in windows.items():
        cpu = window.figures(events, unit="event")
        if cpu:
            figures[f"cpu_{name}_ms_per_event"] = cpu[f"{CPU_PREFIX}ms_per_event"]
            figures[f"cpu_{name}_core_pct"] = cpu[f"{CPU_PREFIX}core_pct"]
    return figures


def stage_figures(
    stages: Sequence[Stage], before: Mapping[str, Samples], after: Mapping[str, Samples]
) -> dict[str, float]:
    """p50, p99, mean (ms) and count of each stage between two scrapes."""
    figures: dict[str, float] = {}
    for stage in stages:
        url = stage.endpoint.url
        if url not in before or url not in after:
            continue
        seen = HistogramCounts.of(after[url], stage.histogram).minus(
            HistogramCounts.of(before[url], stage.histogram)
        )
        key = f"{STAGE_PREFIX}{stage.key}"
        figures[f"{key}_p50_ms"] = 1000 * seen.quantile(0.50)
        figures[f"{key}_p99_ms"] = 1000 * seen.quantile(0.99)
        figures[f"{key}_mean_ms"] = 1000 * seen.mean
        figures[f"{key}_events"] = seen.count
    return figures


def stage_rows(
    stages: Sequence[Stage], carriers: Mapping[str, int] | None = None
) -> list[tuple[str, str, int]]:
    """The table's rows for the stages, as (figure key, label, digits): p50, p99 and mean of
    each, then how many events it saw, then each process's CPU (`carriers` included)."""
    rows: list[tuple[str, str, int]] = []
    for stage in stages:
        key = f"{STAGE_PREFIX}{stage.key}"
        rows += [
            (f"{key}_p50_ms", f"stage {stage.label} p50 ms", 1),
            (f"{key}_p99_ms", f"stage {stage.label} p99 ms", 1),
            (f"{key}_mean_ms", f"stage {stage.label} mean ms", 1),
            (f"{key}_events", f"stage {stage.label}: events", 0),
        ]
    for name in _cpu_processes(stages, carriers):
        rows += [
            (f"cpu_{name}_ms_per_event", f"{name} process CPU ms per event published", 3),
            (f"cpu_{name}_core_pct", f"{name} process CPU % of a core", 1),
        ]
    return rows


def slowest(stages: Sequence[Stage], figures: Mapping[str, float]) -> Stage | None:
    """The stage (not a spanning one) with the highest p99 in `figures`."""
    measured = [
        (figures[f"{STAGE_PREFIX}{s.key}_p99_ms"], s)
        for s in stages
        if s.part and math.isfinite(figures.get(f"{STAGE_PREFIX}{s.key}_p99_ms", math.nan))
    ]
    return max(measured, key=lambda pair: pair[0])[1] if measured else None


def summary(
    stages: Sequence[Stage],
    figures: Mapping[str, float],
    carriers: Mapping[str, int] | None = None,
) -> str:
    """One line: each stage's p50/p99, the slowest stage by p99, and CPU per event."""
    parts = []
    for stage in stages:
        key = f"{STAGE_PREFIX}{stage.key}"
        if f"{key}_p99_ms" not in figures:
            continue
        parts.append(f"{stage.key} {figures[f'{key}_p50_ms']:.1f}/{figures[f'{key}_p99_ms']:.1f}")
    if not parts:
        return "stage lags: n/a (no metrics endpoint answered)"
    worst = slowest(stages, figures)
    named = f"; slowest at p99: {worst.label}" if worst is not None else ""
    cpu = ", ".join(
        f"{name} {figures[f'cpu_{name}_ms_per_event']:.2f}"
        for name in _cpu_processes(stages, carriers)
        if f"cpu_{name}_ms_per_event" in figures
    )
    per_event = f"; CPU ms per event: {cpu}" if cpu else ""
    return f"stages p50/p99 ms: {', '.join(parts)}{named}{per_event}"
