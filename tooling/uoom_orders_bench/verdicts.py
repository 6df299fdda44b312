"""The performance targets, judged against one run.

After the scenarios' tables, a run prints one more: each target's figure (the median across
rounds, with the lowest and highest round), the target, and a verdict: met in every round, met
at the median but not in every round, or not met. A ratio is judged per round (service over
baseline in the same round) like the tables' last column. Figures without a threshold (the
honest hit rate, the write side's own cost) are printed beside them as reported. A target whose
scenario was not in the run says which `--scenarios` kind measures it.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import math
import operator
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from uoom_orders_bench.report import RoundFigures, ScenarioReport
from uoom_orders_bench.scenarios import NEAR_CACHE_LAG_TARGET_MS, READ_MODEL_LAG_TARGET_MS, Scenario
from uoom_orders_bench.stats import Spread
from uoom_orders_bench.watch_scenario import PUSH_LAG_TARGET_MS

Bound = Literal["at most", "at least"]
_COMPARE: dict[Bound, Callable[[float, float], bool]] = {
    "at most": operator.le,
    "at least": operator.ge,
}
_SIGN: dict[Bound, str] = {"at most": "<=", "at least": ">="}


@dataclass(frozen=True)
class Target:
    """One figure of one scenario and what it should be (`bound` None: reported only)."""

    label: str
    scenario: str
    """A pattern (fnmatch) on scenario names: the first scenario of the run it matches."""
    key: str
    kind: str
    """The `--scenarios` kind that measures it."""
    ratio: bool = False
    """Judged on service/baseline per round, not on the service's figure."""
    bound: Bound | None = None
    limit: float = math.nan
    unit: str = ""


def _ms(label: str, scenario: str, key: str, kind: str, limit: float | None = None) -> Target:
    if limit is None:
        return Target(label, scenario, key, kind, unit=" ms")
    return Target(label, scenario, key, kind, bound="at most", limit=limit, unit=" ms")


def _ratio(label: str, scenario: str, key: str, kind: str, bound: Bound, limit: float) -> Target:
    return Target(label, scenario, key, kind, ratio=True, bound=bound, limit=limit, unit="x")


_GET = "GetOrderStatus"
_BATCH = "BatchGetOrderStatus(*)"

TARGETS: tuple[Target, ...] = (
    _ms(
        "commit -> visible in another replica's near cache, p99",
        "lag-*",
        "near_cache_lag_p99_ms",
        "lag",
        NEAR_CACHE_LAG_TARGET_MS,
    ),
    _ms(
        "commit -> visible in DynamoDB, p99",
        "lag-*",
        "dynamodb_lag_p99_ms",
        "lag",
        READ_MODEL_LAG_TARGET_MS,
    ),
    _ratio(
        "GetOrderStatus saturated, calls/s",
        f"saturated-*/{_GET}",
        "calls_per_s",
        "saturated",
        "at least",
        0.90,
    ),
    _ratio(
        "BatchGetOrderStatus saturated, calls/s",
        f"saturated-*/{_BATCH}",
        "calls_per_s",
        "saturated",
        "at least",
        0.90,
    ),
    _ratio(
        "server CPU per call, GetOrderStatus, one in flight",
        f"closed-1/{_GET}",
        "server_cpu_ms_per_call",
        "closed-1",
        "at most",
        1.10,
    ),
    _ratio(
        "server CPU per call, GetOrderStatus, saturated",
        f"saturated-*/{_GET}",
        "server_cpu_ms_per_call",
        "saturated",
        "at most",
        1.10,
    ),
    _ratio(
        "server CPU per call, BatchGetOrderStatus, one in flight",
        f"closed-1/{_BATCH}",
        "server_cpu_ms_per_call",
        "closed-1",
        "at most",
        1.15,
    ),
    _ratio(
        "server CPU per call, BatchGetOrderStatus, saturated",
        f"saturated-*/{_BATCH}",
        "server_cpu_ms_per_call",
        "saturated",
        "at most",
        1.15,
    ),
    _ratio("GetOrderStatus open loop, p99", f"open-*/{_GET}", "p99_ms", "open", "at most", 1.2),
    _ms("CreateOrder p99, back to back", "create/CreateOrder", "p99_ms", "create", 10.0),
    _ms("CreateOrder p99, paced", "create-paced/CreateOrder", "p99_ms", "create", 10.0),
    _ms(
        "CreateOrder p99 in the server's handler, back to back",
        "create/CreateOrder",
        "handler_p99_ms",
        "create",
    ),
    _ms(
        "CreateOrder p99, back to back, the relay paused",
        "create-relay-paused/CreateOrder",
        "p99_ms",
        "create",
    ),
    Target(
        "hit rate: reads the near cache served (Zipf)",
        "zipf-*",
        "served_by_near-cache_pct",
        "zipf",
        unit=" %",
    ),
    Target("hit rate: reads not served by PostgreSQL", "zipf-*", "hit_rate_pct", "zipf", unit=" %"),
    Target(
        "a perfect cache of that size would serve", "zipf-*", "ideal_hit_pct", "zipf", unit=" %"
    ),
    _ms("relay CPU per event, lag", "lag-*", "cpu_relay_ms_per_event", "lag"),
    _ms("projector CPU per event, lag", "lag-*", "cpu_projector_ms_per_event", "lag"),
    _ms("relay CPU per event, burst", "pipeline-*", "cpu_relay_ms_per_event", "pipeline"),
    _ms("projector CPU per event, burst", "pipeline-*", "cpu_projector_ms_per_event", "pipeline"),
    # The local broker's work per event grows with the records it holds (see `broker`).
    _ms("local broker CPU per event, lag", "lag-*", "cpu_broker_ms_per_event", "lag"),
    Target("records the event topic held, lag", "lag-*", "broker_records_held", "lag"),
    Target("rebuild: filling empty tables", "rebuild", "fill_orders_per_s", "rebuild", unit=" /s"),
    Target("rebuild: checking full tables", "rebuild", "check_orders_per_s", "rebuild", unit=" /s"),
    _ms(
        "watch push lag p99, 10,000 watchers",
        "watch-10000",
        "push_lag_p99_ms",
        "watch",
        PUSH_LAG_TARGET_MS,
    ),
)
"""The figures judged, in the order the table prints them."""


@dataclass(frozen=True)
class Verdict:
    """A target and what the run measured for it: one value per round (none: not measured)."""

    target: Target
    scenario: str | None
    values: tuple[float, ...]

    @property
    def spread(self) -> Spread | None:
        return Spread.of(self.values)

    @property
    def rounds_met(self) -> int:
        bound = self.target.bound
        if bound is None:
            return 0
        return sum(1 for v in self.values if _COMPARE[bound](v, self.target.limit))

    @property
    def met(self) -> bool | None:
        """Whether the median meets the target (None: no threshold, or nothing measured)."""
        spread, bound = self.spread, self.target.bound
        if spread is None or bound is None:
            return None
        return _COMPARE[bound](spread.median, self.target.limit)

    def text(self) -> str:
        """The verdict in words."""
        target = self.target
        if self.scenario is None:
            return f"not measured in this run (--scenarios {target.kind})"
        if self.spread is None:
            return "no figure in this run"
        if target.bound is None:
            return "reported"
        rounds, met = len(self.values), self.rounds_met
        if met == rounds:
            return "met" if rounds == 1 else "met in every round"
        if self.met:
            return f"met at the median; not in {rounds - met} of {rounds} rounds"
        if met == 0:
            return "not met" if rounds == 1 else "not met in any round"
        return f"not met ({met} of {rounds} rounds within)"

    def as_dict(self) -> dict[str, Any]:
        """For the JSON report."""
        spread = self.spread
        return {
            "figure": self.target.label,
            "scenario": self.scenario,
            "key": self.target.key,
            "ratio": self.target.ratio,
            "bound": self.target.bound,
            "limit": self.target.limit if self.target.bound else None,
            "values": list(self.values),
            "measured": spread.as_dict() if spread else None,
            "rounds_met": self.rounds_met if self.target.bound else None,
            "met_at_median": self.met,
            "verdict": self.text(),
        }


def judge(reports: Sequence[ScenarioReport], targets: Sequence[Target] = TARGETS) -> list[Verdict]:
    """Each target against the first scenario of the run its pattern matches."""
    verdicts = []
    for target in targets:
        report = next(
            (r for r in reports if fnmatch.fnmatchcase(r.scenario.name, target.scenario)), None
        )
        if report is None:
            verdicts.append(Verdict(target, None, ()))
            continue
        values = report.ratios(target.key) if target.ratio else report.values("service", target.key)
        finite = tuple(v for v in values if math.isfinite(v))
        verdicts.append(Verdict(target, report.scenario.name, finite))
    return verdicts


def _number(value: float) -> str:
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.2f}"


def _measured(verdict: Verdict) -> str:
    spread, unit = verdict.spread, verdict.target.unit
    if spread is None:
        return "n/a"
    middle = f"{_number(spread.median)}{unit}"
    if len(verdict.values) == 1:
        return middle
    return f"{middle} ({_number(spread.low)}-{_number(spread.high)})"


def _target(target: Target) -> str:
    if target.bound is None:
        return "-"
    kind = " service/bare" if target.ratio else ""
    return f"{_SIGN[target.bound]} {target.limit:g}{target.unit}{kind}"


def render_verdicts(verdicts: Sequence[Verdict]) -> str:
    """The targets' table: figure | scenario | measured | target | verdict."""
    rows = [("figure", "scenario", "measured: median (range)", "target", "verdict")]
    for verdict in verdicts:
        rows.append(
            (
                verdict.target.label,
                verdict.scenario or "-",
                _measured(verdict),
                _target(verdict.target),
                verdict.text(),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = [
        "performance targets: the median of the rounds (ratios: service/baseline per round); "
        "reported = no threshold"
    ]
    for number, row in enumerate(rows):
        lines.append("  ".join([*(c.ljust(w) for c, w in zip(row, widths, strict=False)), row[4]]))
        if number == 0:
            lines.append("  ".join("-" * w for w in [*widths, len(row[4])]))
    return "\n".join(line.rstrip() for line in lines)


def reports_of(document: Mapping[str, Any]) -> list[ScenarioReport]:
    """The scenario reports of a run's JSON document (`--json`), for judging it again."""

    async def not_measured(address: str, round_number: int) -> dict[str, float]:
        raise RuntimeError("a report read back from JSON measures nothing")

    reports = []
    for name, scenario in document["scenarios"].items():
        report = ScenarioReport(Scenario(name, scenario.get("description", ""), (), not_measured))
        for r in scenario["rounds"]:
            figures = {
                side: {k: math.nan if v is None else float(v) for k, v in r[side].items()}
                if r.get(side) is not None
                else None
                for side in ("baseline", "service")
            }
            report.rounds.append(
                RoundFigures(r["round"], tuple(r["order"]), figures["baseline"], figures["service"])
            )
        reports.append(report)
    return reports


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m uoom_orders_bench.verdicts RUN.json`: the targets' table of an earlier run."""
    parser = argparse.ArgumentParser(
        prog="python -m uoom_orders_bench.verdicts",
        description="Judge the performance targets against a run's JSON (--json).",
    )
    parser.add_argument("run", type=Path, help="the JSON a run wrote with --json")
    args = parser.parse_args(argv)
    document = json.loads(args.run.read_text(encoding="utf-8"))
    print(render_verdicts(judge(reports_of(document))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
