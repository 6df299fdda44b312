"""The local stack's servers start at a higher priority than the launcher when it may raise
priorities (STAND_IN_NICENESS, see processes.py); the launcher's own niceness is left as it was."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from uoom_orders_devstack.processes import STAND_IN_NICENESS, ServerProcess


def _niceness(pid: int) -> int:
    return os.getpriority(os.PRIO_PROCESS, pid)


def test_a_server_starts_at_its_niceness_and_the_launcher_keeps_its_own(tmp_path: Path) -> None:
    before = _niceness(0)
    server = ServerProcess(
        "sleeper",
        [sys.executable, "-c", "import time; time.sleep(30)"],
        tmp_path / "sleeper.log",
        niceness=STAND_IN_NICENESS,
    )
    server.spawn()
    try:
        assert server.pid is not None
        child = _niceness(server.pid)
    finally:
        server.kill()
    may_raise_priority = os.geteuid() == 0
    assert child == (STAND_IN_NICENESS if may_raise_priority else before)
    assert _niceness(0) == before


def test_without_a_niceness_a_server_starts_at_the_launchers(tmp_path: Path) -> None:
    server = ServerProcess(
        "sleeper", [sys.executable, "-c", "import time; time.sleep(30)"], tmp_path / "s.log"
    )
    server.spawn()
    try:
        assert server.pid is not None
        assert _niceness(server.pid) == _niceness(0)
    finally:
        server.kill()
