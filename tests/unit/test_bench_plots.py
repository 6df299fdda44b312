"""The benchmark's PNG plots, drawn from a run's JSON document."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from uoom_orders_bench import plots
from uoom_orders_bench.cli import build_parser, options_from

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _round(number: int, scale: float) -> dict[str, object]:
    return {
        "round": number,
        "order": ["baseline", "service"],
        "baseline": {"p50_ms": 1.0 * scale, "p95_ms": 2.0 * scale, "p99_ms": 3.0 * scale},
        "service": {
            "p50_ms": 1.2 * scale,
            "p95_ms": 2.5 * scale,
            "p99_ms": None,  # a figure a round could not measure
            "stage_relay_p50_ms": 4.0 * scale,
            "stage_relay_mean_ms": 5.0 * scale,
            "stage_relay_p99_ms": 9.0 * scale,
            "stage_projector_p50_ms": 20.0 * scale,
            "stage_projector_mean_ms": 25.0 * scale,
            "stage_projector_p99_ms": 80.0 * scale,
        },
    }


DOCUMENT = {
    "scenarios": {
        "closed-1": {"with_baseline": True, "rounds": [_round(1, 1.0), _round(2, 1.3)]},
        "create": {
            "with_baseline": False,
            "rounds": [{"round": 1, "order": ["service"], "service": {"p50_ms": 7.0}}],
        },
    }
}


def test_a_run_with_latency_and_lag_figures_gets_both_plots(tmp_path: Path) -> None:
    written = plots.write_plots(DOCUMENT, tmp_path / "run")
    assert [p.name for p in written] == ["run-latency.png", "run-lag.png"]
    for path in written:
        data = path.read_bytes()
        assert data.startswith(PNG_SIGNATURE)
        assert len(data) > 10_000  # axes, bars and labels, not an empty canvas


def test_a_run_without_those_figures_gets_no_plot(tmp_path: Path) -> None:
    only_create = {"scenarios": {"create": DOCUMENT["scenarios"]["create"]}}
    assert plots.write_plots(only_create, tmp_path / "run") == []


def test_the_command_plots_a_json_written_before(tmp_path: Path) -> None:
    path = tmp_path / "earlier.json"
    path.write_text(json.dumps(DOCUMENT), encoding="utf-8")
    assert plots.main([str(path)]) == 0
    assert (tmp_path / "earlier-latency.png").is_file()
    assert (tmp_path / "earlier-lag.png").is_file()


def test_plots_need_a_json_file_to_sit_next_to() -> None:
    args = build_parser().parse_args(["--plots"])
    with pytest.raises(ValueError, match="--json"):
        options_from(args)
    args = build_parser().parse_args(["--plots", "--json", "run.json"])
    assert options_from(args).plots
