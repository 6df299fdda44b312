"""The fault-injection command's CPU census: shares of a core per process between two moments,
restarts and ended processes accounted for, and real counters read for real processes."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from tests.support.fault_reports import fault_report
from uoom_orders_chaos import cpu_census
from uoom_orders_chaos.cpu_census import Census, cores_between
from uoom_orders_chaos.report import format_table


def test_shares_are_cpu_over_wall_time() -> None:
    before = Census(10.0, {"api-0": (1, 5.0), "dynamodb": (2, 1.0)})
    after = Census(12.0, {"api-0": (1, 5.5), "dynamodb": (2, 2.0)})
    assert cores_between(before, after) == {"dynamodb": 0.5, "api-0": 0.25}


def test_a_process_restarted_in_between_counts_from_its_start_and_one_gone_is_left_out() -> None:
    before = Census(0.0, {"projector-0": (7, 30.0), "relay-0": (8, 3.0)})
    after = Census(4.0, {"projector-0": (9, 1.0)})  # a new pid; relay-0 ended
    assert cores_between(before, after) == {"projector-0": 0.25}


def test_no_wall_time_gives_no_shares() -> None:
    census = Census(1.0, {"api-0": (1, 1.0)})
    assert cores_between(census, census) == {}


def test_a_census_reads_the_named_processes_this_one_and_a_process_tree() -> None:
    # A parent with a busy child stands in for PostgreSQL's postmaster and its backends.
    busy = "import time\nend = time.process_time() + 1.0\nwhile time.process_time() < end: pass\n"
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import subprocess, sys; subprocess.run([sys.executable, '-c', {busy!r}]); "
            "import time; time.sleep(30)",
        ]
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            census = cpu_census.take({"named": parent.pid, "gone": None}, parent.pid)
            if census.seconds[cpu_census.POSTGRES][1] >= 0.2 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
    finally:
        parent.kill()
        parent.wait()
    assert set(census.seconds) == {"named", cpu_census.SELF, cpu_census.POSTGRES}
    assert census.seconds[cpu_census.SELF][0] == os.getpid()
    # The busy grandchild's time counts for the family while it runs (1 s of CPU).
    assert census.seconds[cpu_census.POSTGRES][1] >= 0.2
    assert census.seconds["named"][1] < 0.2  # the parent itself only waits


def test_the_report_prints_both_windows() -> None:
    text = format_table(
        [fault_report(cpu_steady={"api-0": 0.5, "dynamodb": 0.25}, cpu_healing={"dynamodb": 1.0})],
        5.0,
    )
    cores = os.cpu_count()
    assert f"CPU, steady load: 0.75 of {cores} cores: api-0 0.50, dynamodb 0.25" in text
    assert f"CPU, healing: 1.00 of {cores} cores: dynamodb 1.00" in text
