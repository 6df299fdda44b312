"""PNG plots of a benchmark run, from its JSON document (report.to_json), for people who would
rather look than read:

- `<stem>-latency.png`: per scenario with a baseline, the latency percentiles of the service
  beside the bare grpc.aio server;
- `<stem>-lag.png`: per scenario that measured the pipeline, the lag of each stage (commit →
  Kafka ack, published → each replica's near cache, published → DynamoDB write, and commit →
  DynamoDB end to end) at p50, mean and p99.

Bars are the median over rounds; whiskers span the rounds' minimum to maximum, so a noisy
figure looks noisy. `python -m uoom_orders_bench.plots RUN.json` plots a run written before;
`python -m uoom_orders_bench --json RUN.json --plots` writes them next to its JSON.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

_PERCENTILES = (("p50_ms", "p50"), ("p95_ms", "p95"), ("p99_ms", "p99"))
_STAGE_PREFIX = "stage_"
_STAGE_FIGURES = (("_p50_ms", "p50"), ("_mean_ms", "mean"), ("_p99_ms", "p99"))
_SIDES = (("baseline", "bare grpc.aio", "#9e9e9e"), ("service", "service", "#1f77b4"))


def _spread(rounds: Sequence[Mapping[str, Any]], side: str, key: str) -> tuple[float, ...] | None:
    """(median, min, max) of a figure over the rounds that have it, or None."""
    values = [
        float(figures[key])
        for r in rounds
        if (figures := r.get(side)) is not None
        and figures.get(key) is not None
        and math.isfinite(float(figures[key]))
    ]
    if not values:
        return None
    return statistics.median(values), min(values), max(values)


def _stage_keys(rounds: Sequence[Mapping[str, Any]]) -> list[str]:
    """The stages measured, in the order the run reported them."""
    keys: dict[str, None] = {}
    for r in rounds:
        for key in r.get("service") or {}:
            if key.startswith(_STAGE_PREFIX) and key.endswith("_p99_ms"):
                keys[key[len(_STAGE_PREFIX) : -len("_p99_ms")]] = None
    return list(keys)


def write_plots(document: Mapping[str, Any], stem: Path) -> list[Path]:
    """Writes the plots the document has figures for; returns their paths."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    scenarios: Mapping[str, Any] = document.get("scenarios", {})
    written = []
    latency = {
        name: s
        for name, s in scenarios.items()
        if s.get("with_baseline")
        and any(_spread(s["rounds"], "service", key) for key, _ in _PERCENTILES)
    }
    if latency:
        written.append(_latency_plot(latency, stem.with_name(f"{stem.name}-latency.png")))
    lag = {name: s for name, s in scenarios.items() if _stage_keys(s["rounds"])}
    if lag:
        written.append(_lag_plot(lag, stem.with_name(f"{stem.name}-lag.png")))
    return written


def _bars(axes: Any, groups: Sequence[str], series: Sequence[tuple[str, str, list[Any]]]) -> None:
    """Grouped bars: one group per label of `groups`, one bar per series (label, colour,
    spreads aligned with `groups`), each with a min to max whisker."""
    width = 0.8 / max(len(series), 1)
    for i, (label, colour, spreads) in enumerate(series):
        xs, heights, low, high = [], [], [], []
        for g, spread in enumerate(spreads):
            if spread is None:
                continue
            median, smallest, largest = spread
            xs.append(g + (i - (len(series) - 1) / 2) * width)
            heights.append(median)
            low.append(median - smallest)
            high.append(largest - median)
        axes.bar(xs, heights, width, label=label, color=colour, yerr=[low, high], capsize=3)
    axes.set_xticks(range(len(groups)), groups)
    axes.grid(axis="y", alpha=0.3)


def _latency_plot(scenarios: Mapping[str, Any], path: Path) -> Path:
    import matplotlib.pyplot as plt

    columns = min(3, len(scenarios))
    rows = math.ceil(len(scenarios) / columns)
    figure, axes_grid = plt.subplots(
        rows, columns, figsize=(4.2 * columns + 0.5, 3.6 * rows + 0.6), squeeze=False
    )
    cells = list(axes_grid.flat)
    for unused in cells[len(scenarios) :]:
        unused.set_visible(False)
    for axes, (name, scenario) in zip(cells, scenarios.items(), strict=False):
        rounds = scenario["rounds"]
        keys = [(k, label) for k, label in _PERCENTILES if _spread(rounds, "service", k)]
        series = [
            (side_label, colour, [_spread(rounds, side, k) for k, _ in keys])
            for side, side_label, colour in _SIDES
        ]
        _bars(axes, [label for _, label in keys], series)
        axes.set_title(name, fontsize=10)
        axes.set_ylabel("ms")
    cells[0].legend(fontsize=8)
    return _save(figure, "Latency, service vs bare grpc.aio", path)


def _lag_plot(scenarios: Mapping[str, Any], path: Path) -> Path:
    import matplotlib.pyplot as plt

    figure, axes_list = plt.subplots(
        len(scenarios), 1, figsize=(10, 3.8 * len(scenarios)), squeeze=False
    )
    colours = ("#8ecae6", "#219ebc", "#023047")
    for axes, (name, scenario) in zip(axes_list[:, 0], scenarios.items(), strict=True):
        rounds = scenario["rounds"]
        stages = _stage_keys(rounds)
        series = [
            (
                label,
                colour,
                [_spread(rounds, "service", f"{_STAGE_PREFIX}{s}{suffix}") for s in stages],
            )
            for (suffix, label), colour in zip(_STAGE_FIGURES, colours, strict=True)
        ]
        _bars(axes, [s.replace("_", " ") for s in stages], series)
        axes.set_title(f"{name}: lag per stage", fontsize=10)
        # Stages differ by orders of magnitude (a feed in ms, the projector in seconds).
        axes.set_yscale("log")
        axes.set_ylabel("ms (log scale)")
        axes.legend(fontsize=8)
    return _save(figure, "Pipeline lag by stage", path)


def _save(figure: Any, title: str, path: Path) -> Path:
    import matplotlib.pyplot as plt

    figure.suptitle(f"{title}\n(median of rounds, whiskers min to max)", fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m uoom_orders_bench.plots",
        description="PNG plots of a benchmark run's JSON, written next to it.",
    )
    parser.add_argument("json_path", type=Path, help="a run's --json file")
    args = parser.parse_args(argv)
    document = json.loads(args.json_path.read_text(encoding="utf-8"))
    written = write_plots(document, args.json_path.with_suffix(""))
    for path in written:
        print(f"plot written to {path}")
    if not written:
        print("no figures to plot in this run", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
