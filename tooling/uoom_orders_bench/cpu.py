"""CPU time a server process spends, from its own counters: per call, per event, while busy.

The counters are the kernel's: user + system time of every thread of the process, children
excluded, read with psutil when it is installed and from /proc/<pid>/stat otherwise (the same
numbers). They tick in clock ticks (10 ms on most kernels), so a window should hold at least
a few hundred milliseconds of CPU for a figure to mean much; `cpu_tick_ms` says how fine.

The process's main thread is also read apart (Linux: /proc/<pid>/task/<pid>/stat): in both
servers it runs the event loop, so every line of Python (handlers, background tasks) and what
it calls; gRPC's own threads (its poller, its event engine) are the rest. Measured on the
service and the bare server under saturated BatchGetOrderStatus, the service's extra CPU per
call was all on the main thread.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import math
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

CPU_PREFIX = "server_cpu_"
_TICK_S = 1 / os.sysconf("SC_CLK_TCK")


@functools.cache
def _psutil() -> Any:
    """psutil when installed (optional: the /proc fallback reads the same counters)."""
    try:
        return importlib.import_module("psutil")
    except ImportError:
        return None


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a process so far (all threads), or None when it is gone."""
    psutil = _psutil()
    if psutil is not None:
        try:
            times = psutil.Process(pid).cpu_times()
        except psutil.Error:
            return None
        return float(times.user + times.system)
    return _stat_seconds(f"/proc/{pid}/stat")


def main_thread_cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of the process's main thread so far, or None when it cannot
    be read (the process is gone, or not on Linux)."""
    return _stat_seconds(f"/proc/{pid}/task/{pid}/stat")


def _stat_seconds(path: str) -> float | None:
    """utime + stime of a /proc stat file, in seconds; None when it cannot be read."""
    try:
        with open(path, encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) * _TICK_S


@dataclass(frozen=True)
class ProcessCpu:
    """Which process answers at which address: the servers whose CPU a scenario reads, and
    what each spends idle (cores), once `measure_idle` has looked."""

    pids: Mapping[str, int] = field(default_factory=dict)
    idle_cores: dict[str, float] = field(default_factory=dict)

    def window(self, address: str) -> CpuWindow:
        """A window on the CPU of the process at `address` (empty when it is not ours)."""
        return CpuWindow(self.pids.get(address), self.idle_cores.get(address))

    async def measure_idle(self, address: str, seconds: float = 2.0) -> float | None:
        """The share of a core the process at `address` uses while nobody calls it (its own
        background: the service's near-cache feed polling the broker, health checks), kept
        for the windows' figures beyond idle."""
        window = CpuWindow(self.pids.get(address), None)
        window.start()
        await asyncio.sleep(seconds)
        window.stop()
        cpu_s, wall_s = window.spent()
        if cpu_s is None or wall_s <= 0:
            return None
        self.idle_cores[address] = cpu_s / wall_s
        return self.idle_cores[address]


class CpuWindow:
    """CPU time and wall time of one process between `start()` and `stop()`; with the cores
    it uses idle, also the CPU beyond that."""

    def __init__(self, pid: int | None, idle_cores: float | None = None) -> None:
        self._pid = pid
        self._idle_cores = idle_cores
        self._cpu: list[float | None] = []
        self._main: list[float | None] = []
        self._wall: list[float] = []

    def start(self) -> None:
        """Takes the first reading."""
        self._take()

    def stop(self) -> None:
        """Takes the last reading."""
        self._take()

    def _take(self) -> None:
        self._cpu.append(None if self._pid is None else cpu_seconds(self._pid))
        self._main.append(None if self._pid is None else main_thread_cpu_seconds(self._pid))
        self._wall.append(time.perf_counter())

    async def between(self, start_ns: int, end_ns: int) -> None:
        """Takes the readings at two perf_counter_ns moments (for a window inside a run)."""
        await asyncio.sleep(max(0.0, (start_ns - time.perf_counter_ns()) / 1e9))
        self.start()
        await asyncio.sleep(max(0.0, (end_ns - time.perf_counter_ns()) / 1e9))
        self.stop()

    def spent(self) -> tuple[float | None, float]:
        """CPU seconds (None when the process is not ours or a reading failed) and wall
        seconds between the first and the last reading."""
        if len(self._cpu) < 2 or self._cpu[0] is None or self._cpu[-1] is None:
            return None, 0.0
        return self._cpu[-1] - self._cpu[0], self._wall[-1] - self._wall[0]

    def figures(self, units: float, unit: str = "call") -> dict[str, float]:
        """CPU ms per unit (call, event) and the share of one core the process used, and per
        unit beyond what it spends idle when that was measured; nothing when the process is
        not ours or a reading failed."""
        cpu_s, wall_s = self.spent()
        if cpu_s is None:
            return {}
        figures = {
            f"{CPU_PREFIX}ms_per_{unit}": 1000 * cpu_s / units if units > 0 else math.nan,
            f"{CPU_PREFIX}core_pct": 100 * cpu_s / wall_s if wall_s > 0 else math.nan,
            f"{CPU_PREFIX}s": cpu_s,
            f"{CPU_PREFIX}tick_ms": 1000 * _TICK_S,
        }
        main = self._main
        if units > 0 and len(main) >= 2 and main[0] is not None and main[-1] is not None:
            figures[f"{CPU_PREFIX}main_thread_ms_per_{unit}"] = 1000 * (main[-1] - main[0]) / units
        if self._idle_cores is not None and units > 0:
            beyond = max(0.0, cpu_s - self._idle_cores * wall_s)
            figures[f"{CPU_PREFIX}ms_per_{unit}_beyond_idle"] = 1000 * beyond / units
            figures[f"{CPU_PREFIX}idle_core_pct"] = 100 * self._idle_cores
        return figures
