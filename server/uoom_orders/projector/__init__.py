"""The projector: Kafka order events into the DynamoDB read model; dead letters; rebuild."""

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
from uoom_orders.projector.rebuild import RebuildStats, rebuild_read_model

__all__ = [
    "DeadLetter",
    "OrderProjector",
    "PoisonMessage",
    "ProjectorConfig",
    "ProjectorStats",
    "RebuildStats",
    "decode_event",
    "list_dead_letters",
    "rebuild_read_model",
    "replay_dead_letters",
    "run_projector",
]
