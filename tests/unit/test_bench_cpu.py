"""The benchmark's CPU readings: a process's own counters, per call, only for processes it
started."""

from __future__ import annotations

import os
import threading
import time

import pytest

from uoom_orders_bench.cpu import CpuWindow, ProcessCpu, cpu_seconds, main_thread_cpu_seconds


def burn(seconds: float) -> None:
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


def test_cpu_seconds_reads_this_process_and_nothing_for_a_gone_one() -> None:
    before = cpu_seconds(os.getpid())
    assert before is not None
    burn(0.05)
    after = cpu_seconds(os.getpid())
    assert after is not None
    assert after > before
    assert cpu_seconds(2**22 + 12345) is None  # above the kernel's pid_max default


def test_a_window_gives_cpu_per_call_and_share_of_a_core() -> None:
    window = ProcessCpu({"127.0.0.1:1": os.getpid()}).window("127.0.0.1:1")
    window.start()
    burn(0.2)
    window.stop()
    figures = window.figures(100)
    # Counters tick in clock ticks (10 ms): generous bounds, the shape is the point.
    assert figures["server_cpu_ms_per_call"] == pytest.approx(2.0, abs=0.5)
    assert 10 <= figures["server_cpu_core_pct"] <= 110  # wall time grows on a busy machine
    assert figures["server_cpu_tick_ms"] > 0


def burn_on_a_thread(seconds: float) -> None:
    # time.process_time counts every thread: the thread's own clock is the one to watch.
    def spin() -> None:
        end = time.thread_time() + seconds
        while time.thread_time() < end:
            pass

    worker = threading.Thread(target=spin)
    worker.start()
    worker.join()


def test_the_main_thread_is_read_apart_from_the_other_threads() -> None:
    window = ProcessCpu({"127.0.0.1:1": os.getpid()}).window("127.0.0.1:1")
    window.start()
    burn_on_a_thread(0.2)  # another thread's CPU: the process's, not the main thread's
    burn(0.1)  # the main thread's (process_time counts both; the thread has ended)
    window.stop()
    figures = window.figures(100)
    assert figures["server_cpu_ms_per_call"] == pytest.approx(3.0, abs=0.6)
    assert figures["server_cpu_main_thread_ms_per_call"] == pytest.approx(1.0, abs=0.5)
    assert main_thread_cpu_seconds(2**22 + 12345) is None


def test_a_process_not_started_by_the_run_has_no_figures() -> None:
    window = ProcessCpu().window("127.0.0.1:1")
    window.start()
    window.stop()
    assert window.figures(10) == {}
    assert CpuWindow(None).figures(10) == {}


async def test_what_a_process_spends_idle_is_measured_and_taken_off_per_call() -> None:
    address = "127.0.0.1:1"
    cpu = ProcessCpu({address: os.getpid()})
    idle = await cpu.measure_idle(address, seconds=0.3)  # this test sleeps: near 0
    assert idle is not None
    assert idle < 0.5
    assert cpu.idle_cores[address] == idle
    # A process that burns half a core in the background beyond its calls.
    window = CpuWindow(os.getpid(), idle_cores=0.5)
    window.start()
    burn(0.3)
    window.stop()
    figures = window.figures(100)
    assert figures["server_cpu_idle_core_pct"] == 50
    per_call = figures["server_cpu_ms_per_call"]
    beyond = figures["server_cpu_ms_per_call_beyond_idle"]
    assert 0 <= beyond < per_call
    cpu_s, wall_s = window.spent()
    assert cpu_s is not None
    assert beyond == pytest.approx(1000 * max(0.0, cpu_s - 0.5 * wall_s) / 100)
    # Without an idle measurement there is no figure beyond it.
    plain = CpuWindow(os.getpid())
    plain.start()
    plain.stop()
    assert "server_cpu_ms_per_call" in plain.figures(1)
    assert "server_cpu_ms_per_call_beyond_idle" not in plain.figures(1)


async def test_idle_of_a_process_not_started_by_the_run_is_unknown() -> None:
    assert await ProcessCpu().measure_idle("127.0.0.1:1", seconds=0.01) is None
