"""The benchmark command runs end to end in quick mode. Behaviour only: no figure is judged."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCENARIOS = ("closed-1/GetOrderStatus", "closed-1/BatchGetOrderStatus(10)")


def test_quick_benchmark_runs_both_sides_and_writes_the_raw_figures(tmp_path: Path) -> None:
    report_path = tmp_path / "bench.json"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "uoom_orders.benchmark",
            "--quick",
            "--scenarios",
            "closed-1",
            "--rounds",
            "1",
            "--orders",
            "20",
            "--json",
            str(report_path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr

    report = json.loads(report_path.read_text())
    assert {"command", "argv", "machine", "options", "scenarios"} <= report.keys()
    assert report["machine"]["cpu_count"] > 0
    assert report["options"]["rounds"] == 1
    assert report["options"]["orders"] == 20
    assert set(report["scenarios"]) == set(SCENARIOS)
    for name in SCENARIOS:
        scenario = report["scenarios"][name]
        assert len(scenario["rounds"]) == 1
        for side in ("baseline", "service"):
            figures = scenario["rounds"][0][side]
            assert figures["calls"] > 0, (name, side)
            assert {"p50_ms", "p95_ms", "p99_ms", "mean_ms", "calls_per_s"} <= figures.keys()
        assert "p50_ms" in scenario["summary"]
    assert "service/baseline" in result.stdout
