"""The `watch` scenario's rows: one scenario per number of watchers (--watchers), sharing the
pool of fresh orders (see watch.py for what is measured and how)."""

from __future__ import annotations

import math

from uoom_orders_bench.pipeline import PipelineTargets
from uoom_orders_bench.scenarios import LoadSettings, Measure, Metric, Scenario
from uoom_orders_bench.watch import OrderPool, measure_watch

# DESIGN.md's target for push lag with 10,000 watchers on one replica.
PUSH_LAG_TARGET_MS = 100


def _progress(figures: dict[str, float]) -> str:
    return (
        f"{figures['watchers']:.0f} watchers on {figures['slots']:.0f} orders, "
        f"{figures['writes_per_s']:.0f} writes/s, {figures['messages_per_s']:.0f} messages/s; "
        f"push lag p50 {figures['push_lag_p50_ms']:.1f} p99 {figures['push_lag_p99_ms']:.1f} ms; "
        f"replica CPU {figures['replica_cpu_pct']:.0f} % "
        f"({figures['cpu_us_per_message']:.0f} us/message, "
        f"{figures['cpu_us_per_message_above_idle']:.0f} beyond idle "
        f"{figures['idle_cpu_pct']:.0f} %); "
        f"client stall max {figures['client_stall_max_ms']:.0f} ms; "
        f"not received {figures['not_received']:.0f}, errors {figures['errors']:.0f}"
    )


def watch_scenarios(settings: LoadSettings, targets: PipelineTargets) -> list[Scenario]:
    """One scenario per watcher count, on the replica of `targets` (it must have one)."""
    replica = targets.near_cache_address
    if replica is None:
        raise ValueError("the watch scenario needs an API replica of its own (not with --target)")
    pool = OrderPool()

    def measure_with(watchers: int) -> Measure:
        async def measure(address: str, round_number: int) -> dict[str, float]:
            return await measure_watch(
                address,
                replica,
                targets.replica_pid,
                pool,
                watchers=watchers,
                max_orders=settings.watch_orders,
                rate=settings.watch_rate,
                duration_s=settings.duration_s,
                seed=settings.seed * 1000 + round_number,
            )

        return measure

    def row(key: str, label: str, digits: int = 1) -> Metric:
        return Metric(key, label, ratio=False, digits=digits)

    scenarios = []
    for watchers in settings.watchers:
        name = f"watch-{watchers}"
        target = f" (target <= {PUSH_LAG_TARGET_MS})" if watchers >= 10_000 else ""
        slots = max(1, min(watchers, settings.watch_orders))
        scenarios.append(
            Scenario(
                name,
                f"{watchers:,} WatchOrderStatus streams on an API replica that takes no writes, "
                f"{math.ceil(watchers / slots):,} per order on {slots:,} orders; open loop of "
                f"{settings.watch_rate:g} UpdateOrderStatus/s for {settings.duration_s:g} s on "
                "the watched orders (DELIVERED moves a slot to a fresh order); push lag = the "
                "write's updated_at -> the message at the watcher (service only)",
                (
                    row("writes_per_s", "achieved writes/s", 0),
                    row("messages_per_s", "messages pushed/s", 0),
                    row("push_lag_p50_ms", "push lag p50 ms"),
                    row("push_lag_p95_ms", "push lag p95 ms"),
                    row("push_lag_p99_ms", f"push lag p99 ms{target}"),
                    row("push_lag_max_ms", "push lag max ms"),
                    row("replica_cpu_pct", "replica CPU % of a core, writing", 0),
                    row("cpu_us_per_message", "replica CPU us per pushed message", 0),
                    row("cpu_us_per_message_above_idle", "  the same, beyond idle CPU", 0),
                    row("idle_cpu_pct", "replica CPU %, watches open, no writes", 1),
                    row("open_s", "seconds to open every watch", 1),
                    row("client_stall_max_ms", "benchmark's own event loop, worst stall ms", 1),
                    row("not_received", "pushes not received", 0),
                    row("no_slot", "writes skipped (no order ready)", 0),
                    row("late_starts", "late starts", 0),
                    row("errors", "write errors", 0),
                ),
                measure_with(watchers),
                with_baseline=False,
                writes=True,
                progress=_progress,
            )
        )
    return scenarios
