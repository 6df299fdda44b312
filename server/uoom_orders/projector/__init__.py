"""The projector: Kafka order events into the DynamoDB read model; dead letters; reconciliation."""

from __future__ import annotations

from uoom_orders.projector.batch import ProjectorStats
from uoom_orders.projector.config import ProjectorConfig
from uoom_orders.projector.dead_letters import (
    DeadLetter,
    list_dead_letters,
    replay_dead_letters,
)
from uoom_orders.projector.decode import PoisonMessage, decode_event
from uoom_orders.projector.projector import OrderProjector
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
]
