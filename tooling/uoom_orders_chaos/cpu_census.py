"""Where the machine's CPU goes while a fault heals: the CPU time of every process of the run,
read from the kernel's counters at two moments, as shares of a core.

Healing is work (projection, reconciliation's writes, the endpoint answering them) that
competes with the load for the same cores; a fault that heals slowly on a saturated machine
shows it here, rather than as a guess. Processes: each role by name, the local stack's servers
(PostgreSQL is its postmaster and every backend it forked) and this command itself (the load
and the checks).
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass

from uoom_orders_bench.cpu import cpu_seconds
from uoom_orders_devstack.processes import descendants

SELF = "load and checks"
"""This command's own process: the load it drives and the snapshots it takes."""
POSTGRES = "postgres"


@dataclass(frozen=True)
class Census:
    """Cumulative CPU seconds per process name (with its pid, to tell a restart) at a moment."""

    at: float
    seconds: Mapping[str, tuple[int, float]]


def take(pids: Mapping[str, int | None], postmaster: int | None) -> Census:
    """A census of the processes `pids` names, this process and PostgreSQL's."""
    found: dict[str, tuple[int, float]] = {}
    for name, pid in {**pids, SELF: os.getpid()}.items():
        if pid is None:
            continue
        spent = cpu_seconds(pid)
        if spent is not None:
            found[name] = (pid, spent)
    if postmaster is not None:
        family = [postmaster, *descendants(postmaster)]
        spent_by_family = [cpu_seconds(pid) for pid in family]
        found[POSTGRES] = (postmaster, sum(s for s in spent_by_family if s is not None))
    return Census(time.monotonic(), found)


def cores_between(before: Census, after: Census) -> dict[str, float]:
    """Each process's CPU between two censuses, as a share of one core (a process started in
    between counts from its start; one that ended in between is left out, as are PostgreSQL's
    backends that ended: their time is gone with them)."""
    wall = after.at - before.at
    if wall <= 0:
        return {}
    shares: dict[str, float] = {}
    for name, (pid, spent) in after.seconds.items():
        earlier = before.seconds.get(name)
        since = earlier[1] if earlier is not None and earlier[0] == pid else 0.0
        shares[name] = max(0.0, spent - since) / wall
    return shares
