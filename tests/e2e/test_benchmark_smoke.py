"""The benchmark command runs end to end in quick mode. Behaviour only: no figure is judged."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCENARIOS = ("closed-1/GetOrderStatus", "closed-1/BatchGetOrderStatus(10)")


def test_quick_benchmark_runs_both_sides_and_writes_the_raw_figures(tmp_path: Path) -> None:
    report_path = tmp_path / "bench.json"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "uoom_orders_bench",
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
    # The targets' table: what this run measured is judged, the rest says how to measure it.
    assert "performance targets" in result.stdout
    judged = {t["figure"]: t for t in report["targets"]}
    one_in_flight = judged["server CPU per call, GetOrderStatus, one in flight"]
    assert one_in_flight["scenario"] == "closed-1/GetOrderStatus"
    assert len(one_in_flight["values"]) == 1
    assert judged["CreateOrder p99, back to back"]["verdict"] == (
        "not measured in this run (--scenarios create)"
    )


def test_quick_lag_and_pipeline_scenarios_measure_the_service_only(tmp_path: Path) -> None:
    report_path = tmp_path / "pipeline.json"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "uoom_orders_bench",
            "--quick",
            "--scenarios",
            "pipeline,closed-1,lag",
            "--rounds",
            "2",
            "--orders",
            "20",
            "--json",
            str(report_path),
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout + result.stderr

    scenarios = json.loads(report_path.read_text())["scenarios"]
    assert set(scenarios) == {"lag-50", "pipeline-100", *SCENARIOS}
    for name in ("lag-50", "pipeline-100"):
        assert scenarios[name]["with_baseline"] is False
        assert scenarios[name]["rounds"][0]["baseline"] is None

    # Every lag round runs before any other scenario's, whatever the order asked for, so the
    # local broker holds only the seed's records and the lag rounds' when each begins.
    progress = result.stderr
    assert progress.index("[round 2/2] lag-50") < progress.index("[round 1/2] pipeline-100")
    assert progress.index("[round 2/2] lag-50") < progress.index("[round 1/2] closed-1/")
    # The reads still take the seeded orders, which the bare server holds too, not the orders
    # the lag rounds created before them.
    for name in SCENARIOS:
        for measured in scenarios[name]["rounds"]:
            assert measured["baseline"]["errors"] == measured["service"]["errors"] == 0, name
    last_lag = scenarios["lag-50"]["rounds"][1]["service"]
    first_burst = scenarios["pipeline-100"]["rounds"][0]["service"]
    assert first_burst["broker_records_held"] >= (
        last_lag["broker_records_held"] + last_lag["writes"]
    )

    lag = scenarios["lag-50"]["rounds"][0]["service"]
    assert lag["writes"] > 0
    assert lag["updates"] + lag["creates"] == lag["writes"]
    # Every write got a verdict from each probe: seen (or fell through), or timed out.
    assert lag["near_cache_probed"] == lag["updates"] > 0
    assert lag["near_cache_measured"] > 0
    assert lag["near_cache_measured"] + lag["near_cache_timeouts"] <= lag["near_cache_probed"]
    assert lag["dynamodb_probed"] == lag["writes"]
    assert lag["dynamodb_measured"] + lag["dynamodb_timeouts"] == lag["writes"]
    assert lag["dynamodb_measured"] > 0
    assert {"near_cache_lag_p99_ms", "dynamodb_lag_p99_ms"} <= lag.keys()

    burst = scenarios["pipeline-100"]["rounds"][0]["service"]
    assert burst["events"] == 100
    assert burst["errors"] == 0
    assert burst["not_visible"] == 0
    assert burst["events_per_s"] > 0
    assert burst["drain_s"] >= 0

    # The local servers every event passes: their CPU per event, and what the topic held.
    for figures in (lag, burst):
        assert figures["cpu_broker_ms_per_event"] > 0
        assert figures["cpu_dynamodb_ms_per_event"] > 0
    assert lag["broker_records_held"] > 0  # the seeded orders
    # The lag scenario's writes were published before the burst began.
    assert burst["broker_records_held"] >= lag["broker_records_held"] + lag["writes"]

    assert "near cache lag p99 ms" in result.stdout
    assert "end to end, events/s" in result.stdout
    assert "API replica at" in result.stderr


def test_quick_zipf_seeds_in_bulk_and_shows_the_share_of_each_tier(tmp_path: Path) -> None:
    report_path = tmp_path / "zipf.json"
    options = ("--quick", "--scenarios", "zipf-100", "--orders", "20", "--zipf-orders", "500")
    result = subprocess.run(
        [sys.executable, "-m", "uoom_orders_bench", *options, "--json", str(report_path)],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout + result.stderr

    report = json.loads(report_path.read_text())
    assert report["setup"]["zipf_seed"]["orders"] == 500
    zipf = report["scenarios"]["zipf-100"]["rounds"][0]["service"]
    assert zipf["reads"] > 0
    assert zipf["cache_max_entries"] == 50
    shares = [value for key, value in zipf.items() if key.startswith("served_by_")]
    assert sum(shares) == pytest.approx(100.0)
    assert 0 < zipf["ideal_hit_pct"] < 100
    assert "a perfect cache of that size, %" in result.stdout


def test_quick_watch_scenario_pushes_every_write_to_every_watcher(tmp_path: Path) -> None:
    report_path = tmp_path / "watch.json"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "uoom_orders_bench",
            "--quick",
            "--scenarios",
            "watch",
            "--watchers",
            "1,50",
            "--watch-orders",
            "10",
            "--duration",
            "2",
            "--orders",
            "20",
            "--json",
            str(report_path),
        ],
        capture_output=True,
        text=True,
        # Each watch run first waits (up to 60 s) for the machine to be quiet.
        timeout=420,
    )
    assert result.returncode == 0, result.stdout + result.stderr

    scenarios = json.loads(report_path.read_text())["scenarios"]
    assert set(scenarios) == {"watch-1", "watch-50"}
    for name, watchers, per_order in (("watch-1", 1, 1), ("watch-50", 50, 5)):
        figures = scenarios[name]["rounds"][0]["service"]
        assert figures["watchers"] == watchers
        assert figures["all_watching"] == 1
        assert figures["writes"] > 0
        assert figures["errors"] == 0
        # Every write reached every watcher of its order, and was measured.
        assert figures["pushes_expected"] == figures["writes"] * per_order
        assert figures["not_received"] == 0
        assert figures["pushed"] >= figures["pushes_expected"]
        assert {"push_lag_p99_ms", "cpu_us_per_message", "idle_cpu_pct"} <= figures.keys()
    assert "push lag p99 ms" in result.stdout


def test_quick_create_scenario_shows_the_servers_own_timing_beside_the_callers(
    tmp_path: Path,
) -> None:
    report_path = tmp_path / "create.json"
    options = ("--quick", "--scenarios", "create", "--orders", "20", "--create-calls", "40")
    result = subprocess.run(
        [sys.executable, "-m", "uoom_orders_bench", *options, "--json", str(report_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr

    scenarios = json.loads(report_path.read_text())["scenarios"]
    names = ("create/CreateOrder", "create-paced/CreateOrder", "create-relay-paused/CreateOrder")
    assert set(scenarios) == set(names)
    for name in names:
        figures = scenarios[name]["rounds"][0]["service"]
        assert figures["calls"] == 40
        # The API process's histogram saw exactly the measured calls (not the warm-up).
        assert figures["handler_calls"] == 40
        assert 0 < figures["handler_p50_ms"] <= figures["handler_p99_ms"]
        # The handler's time is within the caller's wait for the answer.
        assert figures["handler_mean_ms"] <= figures["mean_ms"]
        assert 0 <= figures["handler_over_slow_pct"] <= 100
        assert figures["server_cpu_ms_per_call"] > 0
    assert "in the server's handler p99 ms (its histogram)" in result.stdout
    assert "CreateOrder p99, back to back, the relay paused" in result.stdout


def test_the_outbox_claims_command_times_both_ways_at_each_count() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "uoom_orders_bench.outbox_claims",
            "--published",
            "0,3000",
            "--rounds",
            "1",
            "--cycles",
            "5",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    rows = [line.split() for line in result.stdout.splitlines() if line.strip()[:1].isdigit()]
    assert [row[0] for row in rows] == ["0", "3,000"]
    for row in rows:
        every, positioned = float(row[1]), float(row[2])
        assert every > 0
        assert positioned > 0
        assert float(row[3].removesuffix("x")) > 0


def test_the_side_by_side_command_compares_a_checkout_with_the_bare_server() -> None:
    checkout = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "uoom_orders_bench.side_by_side",
            str(checkout),
            "bare",
            "--windows",
            "2",
            "--orders",
            "20",
            "--callers",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "GetOrderStatus, 2 windows of 1 s"
    assert lines[1].startswith("CPU per call, B / A: median ")
    for side, line in zip("AB", lines[2:4], strict=True):
        per_call, rate = line.removeprefix(f"{side}: ").split(" ms per call, ")
        assert float(per_call) > 0
        assert int(rate.removesuffix(" calls/s").replace(",", "")) > 0
