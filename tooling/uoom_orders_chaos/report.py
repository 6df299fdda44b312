"""Figures per fault, the pass/fail verdict against the targets, and how they are printed."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class FaultReport:
    """Everything measured around one fault: its steady load before, the fault, the settling."""

    fault: str
    started_at_s: float
    """Seconds since the run began when the fault was injected."""
    fault_seconds: float
    """Injected → lifted, as it happened."""
    injected_at: str
    """Wall-clock time (UTC, as in the processes' logs) when the fault was injected."""
    lifted_at: str
    writes_acknowledged: int
    writes_not_sent: int
    reads: int
    reads_not_sent: int
    write_errors: dict[str, int]
    read_errors: dict[str, int]
    raw_read_errors: dict[str, int]
    lost_writes: int | None
    """Acknowledged writes (of the whole run so far) found missing for the first time; None
    when PostgreSQL could not be read."""
    lost_examples: list[str]
    regressions: dict[str, int]
    """same-replica, client, cross-replica (the last for information: no session guarantees)."""
    regressions_by_tier: dict[str, int]
    regression_examples: dict[str, list[str]]
    convergence_s: float | None
    agreed_after_s: dict[str, float | None]
    snapshot_s: float
    final_check_s: float
    """How long the final, full snapshot took (every order from every component)."""
    final_differences: dict[str, dict[str, int]]
    difference_examples: dict[str, list[str]]
    timings_s: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    orders: int = 0
    """Orders in PostgreSQL at the end of the fault's measurement."""
    cpu_steady: dict[str, float] = field(default_factory=dict)
    """Per process, the share of a core it used during the steady load before the fault."""
    cpu_healing: dict[str, float] = field(default_factory=dict)
    """The same from the lift until convergence (or the settle timeout)."""

    @property
    def final_difference_count(self) -> int:
        return sum(sum(kinds.values()) for kinds in self.final_differences.values())

    def failures(self, convergence_target_s: float) -> list[str]:
        """Which of the targets this fault missed (empty: it passed)."""
        failed = []
        if self.lost_writes is None:
            failed.append("lost writes unknown (PostgreSQL unreadable)")
        elif self.lost_writes:
            failed.append(f"{self.lost_writes} acknowledged writes lost")
        if self.regressions["same-replica"]:
            failed.append(f"{self.regressions['same-replica']} same-replica regressions")
        if self.regressions["client"]:
            failed.append(f"{self.regressions['client']} client-package regressions")
        if self.convergence_s is None:
            failed.append("not converged")
        elif self.convergence_s > convergence_target_s:
            failed.append(f"converged in {self.convergence_s:.1f} s > {convergence_target_s:g} s")
        if self.final_difference_count:
            failed.append(f"{self.final_difference_count} final differences")
        return failed


def _counts(counter: Mapping[str, int]) -> str:
    if not counter:
        return "0"
    return ", ".join(
        f"{name} {count}" for name, count in sorted(counter.items(), key=lambda kv: -kv[1])
    )


def _seconds(value: float | None) -> str:
    return "not converged" if value is None else f"{value:.1f}"


def _cores(shares: Mapping[str, float], shown: int = 6) -> str:
    """ "1.62 of 2 cores: api-0 0.31, ..." with the busiest processes first."""
    cores = os.cpu_count() or 1
    busiest = sorted(shares.items(), key=lambda kv: -kv[1])[:shown]
    return f"{sum(shares.values()):.2f} of {cores} cores: " + ", ".join(
        f"{name} {share:.2f}" for name, share in busiest
    )


def _differences(report: FaultReport) -> str:
    parts = []
    for component, kinds in report.final_differences.items():
        if any(kinds.values()):
            parts.append(f"{component}: " + ", ".join(f"{k} {n}" for k, n in kinds.items() if n))
    return "; ".join(parts) or "0"


def format_table(reports: Sequence[FaultReport], convergence_target_s: float) -> str:
    """One row per fault, then what went wrong and where the time went, fault by fault."""
    header = (
        "fault",
        "acked writes",
        "lost",
        "same-replica regr.",
        "client regr.",
        "cross-replica regr. (info)",
        "converged (s)",
        "final diffs",
        "write errors",
        "read errors (client / raw)",
        "verdict",
    )
    rows = [header]
    for r in reports:
        rows.append(
            (
                r.fault,
                str(r.writes_acknowledged),
                "?" if r.lost_writes is None else str(r.lost_writes),
                str(r.regressions["same-replica"]),
                str(r.regressions["client"]),
                str(r.regressions["cross-replica"]),
                _seconds(r.convergence_s),
                str(r.final_difference_count),
                str(sum(r.write_errors.values())),
                f"{sum(r.read_errors.values())} / {sum(r.raw_read_errors.values())}",
                "PASS" if not r.failures(convergence_target_s) else "FAIL",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = []
    for index, row in enumerate(rows):
        lines.append(" | ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
        if index == 0:
            lines.append("-+-".join("-" * width for width in widths))
    lines.append("")
    for r in reports:
        lines.extend(_details(r, convergence_target_s))
    return "\n".join(lines)


def _details(r: FaultReport, convergence_target_s: float) -> list[str]:
    lines = [
        f"{r.fault} (at {r.started_at_s:.0f} s, {r.orders} orders; injected {r.injected_at}, "
        f"lifted {r.lifted_at} UTC): " + "; ".join(r.notes)
    ]
    if r.timings_s:
        lines.append(
            "  timings: " + ", ".join(f"{name} {s:.1f} s" for name, s in r.timings_s.items())
        )
    lines.append(
        f"  load: {r.writes_acknowledged} writes acknowledged, {r.reads} reads"
        + (f", {r.writes_not_sent} writes not sent" if r.writes_not_sent else "")
        + (f", {r.reads_not_sent} reads not sent" if r.reads_not_sent else "")
    )
    lines.append(f"  write errors: {_counts(r.write_errors)}")
    lines.append(f"  read errors, client package: {_counts(r.read_errors)}")
    lines.append(f"  read errors, raw readers bound to one replica: {_counts(r.raw_read_errors)}")
    agreed = ", ".join(f"{name} {_seconds(s)}" for name, s in r.agreed_after_s.items())
    lines.append(
        f"  converged: {_seconds(r.convergence_s)} s after the lift (snapshots take "
        f"{r.snapshot_s:.2f} s); agreed from: {agreed}"
    )
    lines.append(f"  final check of every order in every component took {r.final_check_s:.1f} s")
    for window, shares in (("steady load", r.cpu_steady), ("healing", r.cpu_healing)):
        if shares:
            lines.append(f"  CPU, {window}: {_cores(shares)}")
    if r.lost_examples:
        lines.append(f"  lost writes, e.g.: {'; '.join(r.lost_examples)}")
    if r.regressions_by_tier:
        lines.append(f"  same-replica regressions served by: {_counts(r.regressions_by_tier)}")
    for kind, examples in r.regression_examples.items():
        if examples:
            lines.append(f"  {kind} regressions, e.g.: {'; '.join(examples)}")
    lines.append(f"  final differences: {_differences(r)}")
    for component, examples in r.difference_examples.items():
        if examples:
            lines.append(f"    {component}: {'; '.join(examples)}")
    failures = r.failures(convergence_target_s)
    lines.append(f"  verdict: {'FAIL: ' + '; '.join(failures) if failures else 'PASS'}")
    lines.append("")
    return lines


def as_json(
    reports: Sequence[FaultReport], convergence_target_s: float, extra: Mapping[str, Any]
) -> dict[str, Any]:
    """The run's figures as plain data (for --json and the CI test)."""
    return dict(extra) | {
        "convergence_target_s": convergence_target_s,
        "passed": all(not r.failures(convergence_target_s) for r in reports),
        "faults": [
            asdict(r)
            | {
                "final_difference_count": r.final_difference_count,
                "failures": r.failures(convergence_target_s),
            }
            for r in reports
        ],
    }
