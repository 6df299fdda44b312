"""The benchmark's targets table: each target judged per round against the run's figures."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from uoom_orders_bench.report import RoundFigures, ScenarioReport
from uoom_orders_bench.scenarios import Scenario
from uoom_orders_bench.verdicts import TARGETS, Target, Verdict, judge, render_verdicts


async def _never(address: str, round_number: int) -> dict[str, float]:
    raise AssertionError("not measured here")


def _report(
    name: str, rounds: list[tuple[dict[str, float] | None, dict[str, float]]]
) -> ScenarioReport:
    report = ScenarioReport(Scenario(name, "", (), _never))
    for number, (baseline, service) in enumerate(rounds, start=1):
        report.rounds.append(RoundFigures(number, ("baseline", "service"), baseline, service))
    return report


CALLS = Target(
    "calls", "saturated-*/GetOrderStatus", "calls_per_s", "saturated", True, "at least", 0.9
)
CREATE = Target("create", "create/CreateOrder", "p99_ms", "create", bound="at most", limit=10.0)


def test_a_ratio_is_judged_per_round_not_on_the_ratio_of_medians() -> None:
    # Medians 100 and 95 (0.95x) but the rounds' own ratios are 0.80, 0.95 and 1.00.
    report = _report(
        "saturated-32/GetOrderStatus",
        [
            ({"calls_per_s": 100.0}, {"calls_per_s": 80.0}),
            ({"calls_per_s": 100.0}, {"calls_per_s": 95.0}),
            ({"calls_per_s": 95.0}, {"calls_per_s": 95.0}),
        ],
    )
    (verdict,) = judge([report], [CALLS])
    assert verdict.scenario == "saturated-32/GetOrderStatus"
    assert verdict.values == pytest.approx((0.80, 0.95, 1.00))
    assert verdict.rounds_met == 2
    assert verdict.met is True
    assert verdict.text() == "met at the median; not in 1 of 3 rounds"


@pytest.mark.parametrize(
    ("p99s", "expected"),
    [
        ([8.0, 9.0, 10.0], "met in every round"),
        ([8.0, 9.5, 12.0], "met at the median; not in 1 of 3 rounds"),
        ([8.0, 11.0, 12.0], "not met (1 of 3 rounds within)"),
        ([11.0, 12.0, 13.0], "not met in any round"),
        ([12.0], "not met"),
        ([9.0], "met"),
    ],
)
def test_the_verdict_says_how_many_rounds_met_an_upper_bound(
    p99s: list[float], expected: str
) -> None:
    report = _report("create/CreateOrder", [(None, {"p99_ms": p}) for p in p99s])
    (verdict,) = judge([report], [CREATE])
    assert verdict.text() == expected


def test_a_target_whose_scenario_did_not_run_names_the_kind_that_measures_it() -> None:
    (verdict,) = judge([_report("create/CreateOrder", [(None, {"p99_ms": 5.0})])], [CALLS])
    assert verdict.scenario is None
    assert verdict.met is None
    assert verdict.text() == "not measured in this run (--scenarios saturated)"


def test_a_figure_without_a_threshold_is_reported_and_a_missing_round_value_is_left_out() -> None:
    hit = Target("hit", "zipf-*", "served_by_near-cache_pct", "zipf", unit=" %")
    handler = Target("handler", "create/CreateOrder", "handler_p99_ms", "create")
    create = _report(
        "create/CreateOrder", [(None, {"p99_ms": 5.0}), (None, {"handler_p99_ms": math.nan})]
    )
    # A tier that served nothing in a round served 0 % of it.
    zipf = _report("zipf-200", [(None, {"served_by_near-cache_pct": 60.0}), (None, {})])
    hit_verdict, handler_verdict = judge([create, zipf], [hit, handler])
    assert hit_verdict.values == (60.0, 0.0)
    assert hit_verdict.text() == "reported"
    assert handler_verdict.values == ()
    assert handler_verdict.text() == "no figure in this run"


def test_the_table_has_a_row_per_target_with_its_bound() -> None:
    reports = [
        _report("create/CreateOrder", [(None, {"p99_ms": 12.0}), (None, {"p99_ms": 9.0})]),
        _report("saturated-32/GetOrderStatus", [({"calls_per_s": 100.0}, {"calls_per_s": 91.0})]),
    ]
    table = render_verdicts(judge(reports, [CREATE, CALLS]))
    lines = table.splitlines()
    assert len(lines) == 5  # title, header, rule, two rows
    assert lines[3].startswith("create  create/CreateOrder")
    assert "10.50 (9.00-12.00)" in lines[3]
    assert "<= 10 " in lines[3]
    assert lines[3].endswith("not met (1 of 2 rounds within)")  # median 10.5
    assert ">= 0.9 service/bare" in lines[4]
    assert lines[4].endswith("  met")


def test_every_default_target_names_a_scenario_kind_the_benchmark_has() -> None:
    from uoom_orders_bench.scenarios import DEFAULT_KINDS, SCENARIO_KINDS

    for target in TARGETS:
        assert target.kind in SCENARIO_KINDS, target
        if target.bound is not None and target.kind != "watch":
            # Every judged figure of the performance targets is in a run without --scenarios.
            assert target.kind in DEFAULT_KINDS, target


@given(
    st.lists(st.floats(0.0, 100.0, allow_nan=False), min_size=1, max_size=7),
    st.floats(0.0, 100.0, allow_nan=False),
    st.sampled_from(["at most", "at least"]),
)
def test_met_at_the_median_follows_the_rounds(
    values: list[float], limit: float, bound: str
) -> None:
    target = Target("t", "s", "k", "create", bound=bound, limit=limit)  # type: ignore[arg-type]
    verdict = Verdict(target, "s", tuple(values))
    met = verdict.rounds_met
    assert 0 <= met <= len(values)
    if met == len(values):
        assert verdict.met is True
    if met == 0:
        assert verdict.met is False
    # More than half the rounds within: the median is too; fewer than half: it is not.
    if 2 * met > len(values):
        assert verdict.met is True
    if 2 * met < len(values):
        assert verdict.met is False


def test_a_run_read_back_from_its_json_is_judged_the_same() -> None:
    from uoom_orders_bench.report import to_json
    from uoom_orders_bench.verdicts import reports_of

    reports = [
        _report("create/CreateOrder", [(None, {"p99_ms": 12.0}), (None, {"p99_ms": math.nan})]),
        _report(
            "saturated-32/GetOrderStatus",
            [
                ({"calls_per_s": 100.0}, {"calls_per_s": 91.0}),
                ({"calls_per_s": 100.0}, {"calls_per_s": 85.0}),
            ],
        ),
    ]
    document = to_json(reports, command="", argv=[], facts={}, options={}, setup={})
    # As written to disk: NaN becomes null.
    document = json.loads(json.dumps(document).replace("NaN", "null"))
    again = judge(reports_of(document), [CREATE, CALLS])
    assert [v.as_dict() for v in again] == [v.as_dict() for v in judge(reports, [CREATE, CALLS])]
