"""One fetched batch, as pure functions: what to write, what to dead-letter, how it is counted.

Events are state transfer (each carries the whole order as of its version), so only the newest
version of each order in a batch needs writing; the others are superseded, exactly as stale as
an older version found in the table. Reconciliation's events are the exception: in stream order
a correction replaces whatever came before it, and a removal drops it, whatever the versions.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from uoom.orders.v1 import order_events_pb2

from uoom_orders.dynamodb.ports import PutResult
from uoom_orders.projector.decode import CORRECTED, REMOVED, PoisonMessage, decode_event


@dataclass
class ProjectorStats:
    """Counts since start; every consumed record ends up in exactly one of applied, stale,
    superseded, removed and dead_lettered (or is still in flight when the projector is stopped
    during an outage). `corrections` counts reconciliation's events among them."""

    batches: int = 0
    consumed: int = 0
    outage_retries: int = 0
    applied: int = 0
    stale: int = 0
    superseded: int = 0
    # REMOVED events: reconciliation deleted the order's items, nothing to write.
    removed: int = 0
    dead_lettered: int = 0
    corrections: int = 0
    # Times the consumer left a group join that did not end and joined again.
    rejoins: int = 0
    commit_failures: int = 0


@dataclass(frozen=True)
class Pending:
    """An event to write, with the record it came in (its trace headers; a dead letter's copy)."""

    event: order_events_pb2.OrderEvent
    record: Any  # aiokafka ConsumerRecord


@dataclass(frozen=True)
class Letter:
    """A record for the dead-letter topic, and why."""

    record: Any  # aiokafka ConsumerRecord
    error: str


@dataclass
class BatchPlan:
    """What a batch comes to: the newest event of each order to write, and the dead letters."""

    pending: list[Pending] = field(default_factory=list)
    letters: list[Letter] = field(default_factory=list)
    consumed: int = 0
    superseded: int = 0
    removed: int = 0
    corrections: int = 0


def plan_batch(records: Iterable[Any]) -> BatchPlan:
    """Reduces records (in stream order per partition) to the newest event per order."""
    plan = BatchPlan()
    newest: dict[str, Pending] = {}
    for record in records:
        plan.consumed += 1
        try:
            event = decode_event(record.value)
        except PoisonMessage as error:
            plan.letters.append(Letter(record, str(error)))
            continue
        if event.event_type == REMOVED:
            # Reconciliation deleted the order's items itself; nothing before this event in
            # the batch may bring them back.
            if newest.pop(event.order_id, None) is not None:
                plan.superseded += 1
            plan.removed += 1
            plan.corrections += 1
            continue
        order_id = event.order.order_id
        kept = newest.get(order_id)
        if event.event_type == CORRECTED:
            # In stream order a correction replaces what came before it, whatever the
            # versions. Reconciliation has already repaired the tables; writing it again
            # under the usual condition is harmless and covers a lost repair.
            plan.corrections += 1
            newest[order_id] = Pending(event, record)
        elif kept is None or event.version >= kept.event.version:
            newest[order_id] = Pending(event, record)
        else:
            plan.superseded += 1
            continue
        if kept is not None:
            plan.superseded += 1
    plan.pending = list(newest.values())
    return plan


def count_batch(stats: ProjectorStats, plan: BatchPlan) -> None:
    """Adds what a batch's plan settled (everything but the writes and the dead letters)."""
    stats.batches += 1
    stats.consumed += plan.consumed
    stats.superseded += plan.superseded
    stats.removed += plan.removed
    stats.corrections += plan.corrections


def count_write(stats: ProjectorStats, result: PutResult) -> None:
    """Adds one order's write: applied when either table took it, else stale."""
    if result.applied:
        stats.applied += 1
    else:
        stats.stale += 1
