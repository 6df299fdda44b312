"""A fault-injection report with plausible figures, for tests of the report's rules."""

from __future__ import annotations

from uoom_orders_chaos.report import FaultReport


def fault_report(**overrides: object) -> FaultReport:
    """A passing fault's figures, with `overrides`."""
    figures: dict[str, object] = {
        "fault": "kill-api",
        "started_at_s": 1.0,
        "fault_seconds": 8.0,
        "injected_at": "00:00:00.000",
        "lifted_at": "00:00:08.000",
        "writes_acknowledged": 10,
        "writes_not_sent": 0,
        "reads": 100,
        "reads_not_sent": 0,
        "write_errors": {},
        "read_errors": {},
        "raw_read_errors": {"UNAVAILABLE": 5},
        "lost_writes": 0,
        "lost_examples": [],
        "regressions": {"same-replica": 0, "client": 0, "cross-replica": 3},
        "regressions_by_tier": {},
        "regression_examples": {},
        "convergence_s": 1.5,
        "agreed_after_s": {},
        "snapshot_s": 0.1,
        "final_check_s": 0.2,
        "final_differences": {"status-table": {}},
        "difference_examples": {},
    }
    return FaultReport(**(figures | overrides))  # type: ignore[arg-type]
