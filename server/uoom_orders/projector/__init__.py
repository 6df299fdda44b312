"""The projector: Kafka order events into the DynamoDB read model; dead letters; reconciliation."""

from __future__ import annotations

from uoom_orders.projector.dead_letters import (
    DeadLetter,
    list_dead_letters,
    replay_dead_letters,
)
from uoom_orders.projector.projector import (
    OrderProjector,
    PoisonMessage,
    ProjectorConfig,
    ProjectorStats,
    decode_event,
    run_projector,
)
from uoom_orders.projector.reconcile import (
    Difference,
    DifferenceKind,
    Reconciler,
    ReconcileReport,
)

__all__ = [
    "DeadLetter",
    "Difference",
    "DifferenceKind",
    "OrderProjector",
    "PoisonMessage",
    "ProjectorConfig",
    "ProjectorStats",
    "ReconcileReport",
    "Reconciler",
    "decode_event",
    "list_dead_letters",
    "replay_dead_letters",
    "run_projector",
]
