"""CPU time a server process spends, from its own counters: per call, per event, while busy.

The counters are the kernel's: user + system time of every thread of the process, children
excluded, read with psutil when it is installed and from /proc/<pid>/stat otherwise (the same
numbers). They tick in clock ticks (10 ms on most kernels), so a window should hold at least
a few hundred milliseconds of CPU for a figure to mean much; `cpu_tick_ms` says how fine.
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
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) * _TICK_S


@dataclass(frozen=True)
class ProcessCpu:
    """Which process answers at which address: the servers whose CPU a scenario reads."""

    pids: Mapping[str, int] = field(default_factory=dict)

    def window(self, address: str) -> CpuWindow:
        """A window on the CPU of the process at `address` (empty when it is not ours)."""
        return CpuWindow(self.pids.get(address))


class CpuWindow:
    """CPU time and wall time of one process between `start()` and `stop()`."""

    def __init__(self, pid: int | None) -> None:
        self._pid = pid
        self._cpu: list[float | None] = []
        self._wall: list[float] = []

    def start(self) -> None:
        """Takes the first reading."""
        self._take()

    def stop(self) -> None:
        """Takes the last reading."""
        self._take()

    def _take(self) -> None:
        self._cpu.append(None if self._pid is None else cpu_seconds(self._pid))
        self._wall.append(time.perf_counter())

    async def between(self, start_ns: int, end_ns: int) -> None:
        """Takes the readings at two perf_counter_ns moments (for a window inside a run)."""
        await asyncio.sleep(max(0.0, (start_ns - time.perf_counter_ns()) / 1e9))
        self.start()
        await asyncio.sleep(max(0.0, (end_ns - time.perf_counter_ns()) / 1e9))
        self.stop()

    def figures(self, units: float, unit: str = "call") -> dict[str, float]:
        """CPU ms per unit (call, event) and the share of one core the process used; nothing
        when the process is not ours or a reading failed."""
        if len(self._cpu) < 2 or self._cpu[0] is None or self._cpu[-1] is None:
            return {}
        cpu_s = self._cpu[-1] - self._cpu[0]
        wall_s = self._wall[-1] - self._wall[0]
        return {
            f"{CPU_PREFIX}ms_per_{unit}": 1000 * cpu_s / units if units > 0 else math.nan,
            f"{CPU_PREFIX}core_pct": 100 * cpu_s / wall_s if wall_s > 0 else math.nan,
            f"{CPU_PREFIX}s": cpu_s,
            f"{CPU_PREFIX}tick_ms": 1000 * _TICK_S,
        }
