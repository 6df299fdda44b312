"""What a fault-injection run is asked to do, and the figures it must meet."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

FAULTS = (
    "kill-api",
    "kill-relay",
    "kill-projector",
    "pause-broker",
    "pause-dynamodb",
    "projectors-down",
    "postgres-crash",
    "dynamodb-lost",
    "stale-events",
)
"""Every fault, in the order a full run injects them (issue 8's list)."""

SHORT_FAULTS = ("kill-api", "pause-broker")
"""The faults of `--short` when `--faults` is not given (the CI run)."""

CONVERGENCE_TARGET_S = 5.0
"""Everything must agree with PostgreSQL within this long after a fault lifts (DESIGN.md)."""


@dataclass(frozen=True)
class RunOptions:
    """One run: which faults, how long, how much load."""

    faults: tuple[str, ...] = FAULTS
    fault_seconds: float = 8.0
    """How long each fault lasts (a killed role stays down this long, a paused server paused)."""
    steady_seconds: float = 5.0
    """Load without faults before each fault."""
    write_rate: float = 30.0
    """Writes (creates and status changes) per second, through the client package."""
    read_rate: float = 240.0
    """Read calls per second over both replicas (GetOrderStatus and BatchGetOrderStatus)."""
    settle_timeout: float = 30.0
    """After a fault lifts, how long to wait for agreement before reporting "not converged"."""
    convergence_target: float = CONVERGENCE_TARGET_S
    log_dir: Path | None = None
    """Where the role processes' logs go (default: a new folder under /tmp, kept)."""
    keep_stack: bool = False
    """Keep the local stack's data and server logs after the run."""
    service_env: Mapping[str, str] = field(default_factory=dict)
    """Extra environment for every role process (`--service-env NAME=VALUE`)."""
    json_path: Path | None = None

    def __post_init__(self) -> None:
        unknown = [name for name in self.faults if name not in FAULTS]
        if unknown:
            raise ValueError(f"unknown fault(s) {', '.join(unknown)}; known: {', '.join(FAULTS)}")
        for name in ("fault_seconds", "write_rate", "read_rate", "settle_timeout"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name.replace('_', '-')} must be > 0")
        if self.steady_seconds < 0:
            raise ValueError("steady-seconds must be >= 0")
