"""Load generators: one call in flight, an open loop at a fixed rate, and C concurrent callers.

An operation is an async function of the call's index that makes one call and returns a label
("call", or e.g. "read" / "write" in a mixed workload); latencies are kept per label. A call that
fails with a gRPC status is counted by its code, and its latency is not kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

import grpc

from uoom_orders_bench.stats import NS_PER_MS, latency_figures

Operation = Callable[[int], Awaitable[str]]
"""Makes call number `index`; returns the label its latency is kept under."""

# A call that starts more than this after its scheduled time counts as behind schedule.
LATE_START_NS = 1 * NS_PER_MS


@dataclass
class LoadResult:
    """What one measurement saw: latencies by label, failures by status code, elapsed time."""

    latencies_ns: dict[str, list[int]] = field(default_factory=dict)
    errors: Counter[str] = field(default_factory=Counter)
    elapsed_s: float = 0.0
    late_starts: int = 0
    max_start_lag_ns: int = 0
    throughput_calls: int | None = None
    """The calls that throughput counts, when not all successful calls (see `saturated`)."""

    def record(self, label: str, latency_ns: int) -> None:
        """Keeps one successful call's latency under its label."""
        self.latencies_ns.setdefault(label, []).append(latency_ns)

    @property
    def calls(self) -> int:
        """Successful calls, all labels."""
        return sum(len(v) for v in self.latencies_ns.values())

    def all_latencies(self) -> list[int]:
        """Every successful call's latency, all labels."""
        return [latency for values in self.latencies_ns.values() for latency in values]

    def figures(self) -> dict[str, float]:
        """calls, errors, calls_per_s and latency percentiles over every label."""
        calls = self.calls
        counted = calls if self.throughput_calls is None else self.throughput_calls
        return {
            "calls": calls,
            "errors": sum(self.errors.values()),
            "calls_per_s": counted / self.elapsed_s if self.elapsed_s > 0 else 0.0,
            **latency_figures(self.all_latencies()),
        }


def _error_code(error: grpc.aio.AioRpcError) -> str:
    code = error.code()
    return code.name if code is not None else "UNKNOWN"


async def warm_up(operation: Operation, calls: int) -> None:
    """`calls` calls one at a time, not measured: connections, caches and code paths warm."""
    for index in range(calls):
        with contextlib.suppress(grpc.aio.AioRpcError):
            await operation(index)


async def closed_loop(operation: Operation, calls: int, first_index: int = 0) -> LoadResult:
    """`calls` calls, one in flight: each starts when the previous one has answered."""
    return await paced_loop(operation, calls, None, first_index)


async def paced_loop(
    operation: Operation, calls: int, rate: float | None, first_index: int = 0
) -> LoadResult:
    """`calls` calls, one in flight, each started `1/rate` s after the previous one started
    (at once when that one took longer; back to back when `rate` is None). A call's latency is
    its own, from its start: the pacing only keeps the work behind the calls (for writes, the
    pipeline) below saturation."""
    result = LoadResult()
    clock = time.perf_counter_ns
    interval_ns = 0 if rate is None else int(1e9 / rate)
    started = clock()
    due = started
    for index in range(first_index, first_index + calls):
        wait_ns = due - clock()
        if wait_ns > 0:
            await asyncio.sleep(wait_ns / 1e9)
        begin = clock()
        due = begin + interval_ns
        try:
            label = await operation(index)
        except grpc.aio.AioRpcError as error:
            result.errors[_error_code(error)] += 1
            continue
        result.record(label, clock() - begin)
    result.elapsed_s = (clock() - started) / 1e9
    return result


async def open_loop(
    operation: Operation, rate: float, duration_s: float, drain_timeout_s: float = 30.0
) -> LoadResult:
    """Calls scheduled every 1/rate s for `duration_s`, whether or not earlier ones answered.

    Latency is measured from each call's *scheduled* start, so a stall on either side shows in
    the figures instead of silently delaying the next calls (no coordinated omission). The
    schedule is kept by a thread sleeping with sub-millisecond precision and handing due calls
    to the event loop; the event loop's own timers tick in whole milliseconds, which alone
    would add up to a millisecond to every call.
    """
    loop = asyncio.get_running_loop()
    clock = time.perf_counter_ns
    total = max(1, int(rate * duration_s))
    interval_ns = 1e9 / rate
    result = LoadResult()
    tasks: set[asyncio.Task[None]] = set()
    # Set through the loop after the last hand-over, so every call is a task by then.
    all_launched = asyncio.Event()
    last_end = [0]
    stop = threading.Event()
    # A short lead, so that the first calls are not late already.
    origin = clock() + 5 * NS_PER_MS

    async def one_call(index: int) -> None:
        scheduled = origin + int(index * interval_ns)
        begin = clock()
        lag = begin - scheduled
        if lag > LATE_START_NS:
            result.late_starts += 1
        result.max_start_lag_ns = max(result.max_start_lag_ns, lag)
        try:
            label = await operation(index)
        except grpc.aio.AioRpcError as error:
            result.errors[_error_code(error)] += 1
            return
        end = clock()
        last_end[0] = max(last_end[0], end)
        result.record(label, end - scheduled)

    def launch(indices: Iterable[int]) -> None:
        for index in indices:
            task = loop.create_task(one_call(index))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    def keep_schedule() -> None:
        next_index = 0
        while next_index < total and not stop.is_set():
            now = clock()
            due = min(total, int((now - origin) // interval_ns) + 1) if now >= origin else 0
            if due > next_index:
                try:
                    loop.call_soon_threadsafe(launch, range(next_index, due))
                except RuntimeError:  # the loop is closing: the run was interrupted
                    return
                next_index = due
                continue
            time.sleep(max(0.0, (origin + next_index * interval_ns - now) / 1e9))
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(all_launched.set)

    scheduler = threading.Thread(target=keep_schedule, name="open-loop-schedule", daemon=True)
    scheduler.start()
    try:
        await all_launched.wait()
        if tasks:
            await asyncio.wait(set(tasks), timeout=drain_timeout_s)
    finally:
        stop.set()
        unanswered = list(tasks)
        for task in unanswered:
            task.cancel()
    if unanswered:
        await asyncio.wait(unanswered)
        result.errors["UNANSWERED"] += len(unanswered)
    end = last_end[0] if last_end[0] else clock()
    result.elapsed_s = max(end - origin, 1) / 1e9
    return result


async def saturated(
    operation: Operation, concurrency: int, duration_s: float, warm_up_s: float
) -> LoadResult:
    """`concurrency` callers, each with one call in flight, for `warm_up_s` + `duration_s`.

    Only calls that start after the warm-up are kept; throughput counts the calls that answered
    within the measured window, divided by its length.
    """
    clock = time.perf_counter_ns
    result = LoadResult()
    window_start = clock() + int(warm_up_s * 1e9)
    window_end = window_start + int(duration_s * 1e9)
    completed_in_window = [0]

    async def caller(first_index: int) -> None:
        index = first_index
        while True:
            begin = clock()
            if begin >= window_end:
                return
            try:
                label = await operation(index)
            except grpc.aio.AioRpcError as error:
                if begin >= window_start:
                    result.errors[_error_code(error)] += 1
                index += concurrency
                continue
            end = clock()
            if begin >= window_start:
                result.record(label, end - begin)
            if window_start <= end <= window_end:
                completed_in_window[0] += 1
            index += concurrency

    await asyncio.gather(*(caller(i) for i in range(concurrency)))
    result.elapsed_s = duration_s
    result.throughput_calls = completed_in_window[0]
    return result
