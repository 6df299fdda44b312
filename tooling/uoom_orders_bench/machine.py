"""What the machine and this process are doing besides a measurement: how busy the CPUs are,
and how late this process's event loop runs."""

from __future__ import annotations

import asyncio
import time

_NS_PER_S = 1_000_000_000
# Quiet: the machine (all its cores, everything on them) below this share busy.
_QUIET_SHARE = 0.35
_QUIET_TIMEOUT_S = 60.0


def busy_share(window_s: float) -> float:
    """The share of all CPUs busy over the next `window_s` (from /proc/stat); blocks."""

    def sample() -> tuple[int, int]:
        with open("/proc/stat", encoding="ascii") as stat:
            fields = [int(v) for v in stat.readline().split()[1:]]
        idle = fields[3] + fields[4]  # idle + iowait
        return sum(fields) - idle, sum(fields)

    busy_before, total_before = sample()
    time.sleep(window_s)
    busy_after, total_after = sample()
    return (busy_after - busy_before) / max(1, total_after - total_before)


async def machine_quiet(
    below: float = _QUIET_SHARE, window_s: float = 0.5, timeout_s: float = _QUIET_TIMEOUT_S
) -> float:
    """Waits until the machine's CPUs are less than `below` busy over `window_s` (e.g. the
    pipeline has projected the orders just created: moto takes milliseconds of CPU per write);
    returns the seconds waited (at most about `timeout_s`: other work may never stop)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if await asyncio.to_thread(busy_share, window_s) < below:
            break
    return time.monotonic() - started


class LoopStalls:
    """How late this process's event loop runs a 10 ms ticker: the watchers share it with the
    writer, so a stall here is lag the replica did not cause."""

    def __init__(self, tick_s: float = 0.01) -> None:
        self._tick_s = tick_s
        self.worst_ns = 0
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        tick_ns = int(self._tick_s * _NS_PER_S)
        while True:
            before = time.perf_counter_ns()
            await asyncio.sleep(self._tick_s)
            self.worst_ns = max(self.worst_ns, time.perf_counter_ns() - before - tick_ns)

    def __enter__(self) -> LoopStalls:
        self._task = asyncio.create_task(self._run())
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._task is not None:
            self._task.cancel()
