"""Events: state transfer, each carrying the whole order as of its version."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from uuid import UUID

from uoom_orders.domain.order import Order, OrderStatus


class OrderEventType(StrEnum):
    CREATED = "ORDER_CREATED"
    STATUS_CHANGED = "ORDER_STATUS_CHANGED"


@dataclass(frozen=True, slots=True)
class OrderEvent:
    event_id: UUID
    event_type: OrderEventType
    occurred_at: datetime
    order: Order
    previous_status: OrderStatus | None

    @property
    def version(self) -> int:
        return self.order.version
