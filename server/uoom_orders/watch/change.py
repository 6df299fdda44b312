"""One change from the event feed, as a watch needs it."""

from __future__ import annotations

from dataclasses import dataclass

from uoom.orders.v1 import order_events_pb2, order_pb2

TERMINAL_STATUSES = frozenset({order_pb2.ORDER_STATUS_DELIVERED, order_pb2.ORDER_STATUS_CANCELLED})


@dataclass(frozen=True, slots=True)
class Change:
    """An order's new state. `summary` is None when reconciliation removed the order (its
    create was lost); `corrected` when it replaced the order whatever its version."""

    order_id: str
    restaurant_id: str
    summary: order_pb2.OrderSummary | None
    previous_status: int
    corrected: bool
    # When the change committed (the event's occurred_at), Unix seconds.
    committed_at: float

    @property
    def version(self) -> int:
        return 0 if self.summary is None else self.summary.version

    @property
    def replaces_any(self) -> bool:
        """A reconciliation event: it applies whatever version is held."""
        return self.corrected or self.summary is None

    @property
    def terminal(self) -> bool:
        return self.summary is not None and self.summary.status in TERMINAL_STATUSES


def change_from_event(
    event: order_events_pb2.OrderEvent, summary: order_pb2.OrderSummary | None
) -> Change:
    """The change an event carries; `summary` is the event's order as a status record (None
    for ORDER_EVENT_TYPE_REMOVED)."""
    occurred = event.occurred_at
    return Change(
        order_id=event.order_id or event.order.order_id,
        restaurant_id="" if summary is None else summary.restaurant_id,
        summary=summary,
        previous_status=event.previous_status,
        corrected=event.event_type == order_events_pb2.ORDER_EVENT_TYPE_CORRECTED,
        committed_at=occurred.seconds + occurred.nanos / 1e9,
    )
