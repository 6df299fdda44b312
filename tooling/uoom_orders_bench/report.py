"""Round figures in; plain tables (median and min-max per side, and the ratio) and JSON out."""

from __future__ import annotations

import json
import math
import os
import platform
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from uoom_orders_bench.scenarios import SERVED_BY_PREFIX, Metric, Scenario, Side
from uoom_orders_bench.stats import Spread

Figures = dict[str, float]


@dataclass
class RoundFigures:
    """One round of one scenario: each side's figures (None: the side does not take part)."""

    round: int
    order: tuple[Side, ...]
    baseline: Figures | None = None
    service: Figures | None = None

    def side(self, side: Side) -> Figures | None:
        """The figures of one side."""
        return self.baseline if side == "baseline" else self.service


@dataclass
class ScenarioReport:
    """A scenario and its rounds."""

    scenario: Scenario
    rounds: list[RoundFigures] = field(default_factory=list)

    def metrics(self) -> list[Metric]:
        """The table's rows: the scenario's, then one per read tier seen (mixed)."""
        tiers = sorted(
            {
                key
                for r in self.rounds
                for figures in (r.baseline, r.service)
                if figures is not None
                for key in figures
                if key.startswith(SERVED_BY_PREFIX)
            }
        )
        extra = [
            Metric(key, f"served by {key[len(SERVED_BY_PREFIX) : -len('_pct')]} %", False, 2)
            for key in tiers
        ]
        return [*self.scenario.metrics, *extra]

    def values(self, side: Side, key: str) -> list[float]:
        """A figure of one side, one value per round that has it."""
        # A tier that served nothing in a round is not in that round's figures: it served 0 %.
        missing = 0.0 if key.startswith(SERVED_BY_PREFIX) else None
        return [
            value
            for r in self.rounds
            if (f := r.side(side)) is not None and (value := f.get(key, missing)) is not None
        ]

    def spread(self, side: Side, key: str) -> Spread | None:
        """A figure of one side across rounds."""
        return Spread.of(self.values(side, key))

    def ratios(self, key: str) -> list[float]:
        """service/baseline per round (paired: the same round's noise on both sides)."""
        ratios = []
        for r in self.rounds:
            if r.baseline is None or r.service is None:
                continue
            base, service = r.baseline.get(key, math.nan), r.service.get(key, math.nan)
            if math.isfinite(base) and math.isfinite(service) and base > 0:
                ratios.append(service / base)
        return ratios

    def ratio(self, key: str) -> Spread | None:
        """service/baseline across rounds."""
        return Spread.of(self.ratios(key))

    def summary(self) -> dict[str, dict[str, dict[str, float] | None]]:
        """Per metric: each side's and the ratio's median/min/max, for the JSON report."""
        out: dict[str, dict[str, dict[str, float] | None]] = {}
        for metric in self.metrics():
            base, service = self.spread("baseline", metric.key), self.spread("service", metric.key)
            ratio = self.ratio(metric.key) if metric.ratio else None
            out[metric.key] = {
                "baseline": base.as_dict() if base else None,
                "service": service.as_dict() if service else None,
                "ratio": ratio.as_dict() if ratio else None,
            }
        return out


def _number(value: float, digits: int) -> str:
    if not math.isfinite(value):
        return "n/a"
    if digits == 0:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


def _cell(spread: Spread | None, digits: int, suffix: str = "") -> str:
    if spread is None:
        return "n/a"
    middle = _number(spread.median, digits) + suffix
    if len({spread.low, spread.high}) == 1:
        return middle
    return f"{middle} ({_number(spread.low, digits)}-{_number(spread.high, digits)})"


def render_table(report: ScenarioReport) -> str:
    """A plain-text table: metric | baseline | service | service/baseline."""
    rounds = len(report.rounds)
    lines = [
        f"{report.scenario.name}: {report.scenario.description}",
        f"median of {rounds} round{'s' if rounds != 1 else ''} (min-max across rounds)",
    ]
    header = ("metric", "baseline", "service", "service/baseline")
    rows = [header]
    for metric in report.metrics():
        ratio = report.ratio(metric.key) if metric.ratio else None
        rows.append(
            (
                metric.label,
                _cell(report.spread("baseline", metric.key), metric.digits),
                _cell(report.spread("service", metric.key), metric.digits),
                _cell(ratio, 2, "x") if metric.ratio else "",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for number, row in enumerate(rows):
        cells = [
            row[0].ljust(widths[0]),
            *(c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)),
        ]
        lines.append("  ".join(cells).rstrip())
        if number == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def machine_facts() -> dict[str, Any]:
    """CPU count, Python, and the versions of the packages that set the ceiling."""

    def version(package: str) -> str:
        try:
            return metadata.version(package)
        except metadata.PackageNotFoundError:
            return "not installed"

    return {
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "grpcio": version("grpcio"),
        "protobuf": version("protobuf"),
        "uvloop": version("uvloop"),
        "load_average": list(os.getloadavg()),
    }


def render_machine(facts: dict[str, Any], command: str) -> str:
    """The header printed before the tables."""
    load = ", ".join(f"{v:.2f}" for v in facts["load_average"])
    return "\n".join(
        [
            f"command: {command}",
            f"machine: {facts['cpu_count']} CPUs ({facts['cpus_usable']} usable), "
            f"{facts['platform']}",
            f"python {facts['python']} ({facts['python_implementation']}), grpcio "
            f"{facts['grpcio']}, protobuf {facts['protobuf']}, uvloop {facts['uvloop']}",
            f"load average at start: {load}",
        ]
    )


def to_json(
    reports: Sequence[ScenarioReport],
    *,
    command: str,
    argv: Sequence[str],
    facts: dict[str, Any],
    options: dict[str, Any],
    setup: dict[str, Any],
) -> dict[str, Any]:
    """Everything: the command, the machine, the options, and every round's raw figures."""
    return {
        "command": command,
        "argv": list(argv),
        "machine": facts,
        "options": options,
        "setup": setup,
        "scenarios": {
            report.scenario.name: {
                "description": report.scenario.description,
                "with_baseline": report.scenario.with_baseline,
                "rounds": [
                    {
                        "round": r.round,
                        "order": list(r.order),
                        "baseline": r.baseline,
                        "service": r.service,
                    }
                    for r in report.rounds
                ],
                "summary": report.summary(),
            }
            for report in reports
        },
    }


def write_json(path: Path, document: dict[str, Any]) -> None:
    """Writes the JSON report (NaN as null, so that any JSON reader takes it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(_finite(document), indent=2, allow_nan=False)
    path.write_text(text + "\n", encoding="utf-8")
    print(f"raw figures written to {path}", file=sys.stderr)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value
