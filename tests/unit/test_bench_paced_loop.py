"""The benchmark's paced loop: one call in flight, started on a fixed schedule, each call's
latency its own (a slow call delays the next start, and only its own figure)."""

from __future__ import annotations

import asyncio
import itertools
import time

from uoom_orders_bench.load import paced_loop


async def test_calls_start_on_the_schedule_one_at_a_time() -> None:
    starts: list[float] = []
    in_flight = 0

    async def operation(index: int) -> str:
        nonlocal in_flight
        in_flight += 1
        assert in_flight == 1
        starts.append(time.perf_counter())
        await asyncio.sleep(0.001)
        in_flight -= 1
        return "call"

    result = await paced_loop(operation, 10, rate=50.0)
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert len(starts) == 10
    assert all(gap >= 0.019 for gap in gaps)  # 20 ms apart, never sooner
    assert result.elapsed_s >= 9 * 0.019
    figures = result.figures()
    assert figures["p50_ms"] < 15  # a call's own time, not the wait before it


async def test_a_slow_call_delays_the_next_start_not_the_others_latency() -> None:
    async def operation(index: int) -> str:
        await asyncio.sleep(0.05 if index == 2 else 0.0)
        return "call"

    started = time.perf_counter()
    result = await paced_loop(operation, 5, rate=100.0)
    # 10 ms apart, but the third call took 50 ms: the fourth starts when it answers.
    assert time.perf_counter() - started >= 0.05 + 2 * 0.009
    assert result.figures()["p50_ms"] < 10
