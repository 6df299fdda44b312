"""Which status may follow which, and applying a status change to an order."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from uuid import UUID

from uoom_orders.domain.commands import CreateOrder
from uoom_orders.domain.errors import IllegalTransition, VersionConflict
from uoom_orders.domain.order import Order, OrderStatus

_FORWARD: dict[OrderStatus, OrderStatus] = {
    OrderStatus.PENDING: OrderStatus.CONFIRMED,
    OrderStatus.CONFIRMED: OrderStatus.PREPARING,
    OrderStatus.PREPARING: OrderStatus.READY_FOR_PICKUP,
    OrderStatus.READY_FOR_PICKUP: OrderStatus.OUT_FOR_DELIVERY,
    OrderStatus.OUT_FOR_DELIVERY: OrderStatus.DELIVERED,
}

TERMINAL: frozenset[OrderStatus] = frozenset({OrderStatus.DELIVERED, OrderStatus.CANCELLED})


def allowed_next(status: OrderStatus) -> frozenset[OrderStatus]:
    """The statuses an order in `status` may move to."""
    if status in TERMINAL:
        return frozenset()
    return frozenset({_FORWARD[status], OrderStatus.CANCELLED})


def change_status(
    order: Order,
    new_status: OrderStatus,
    *,
    now: datetime,
    expected_version: int | None = None,
    estimated_delivery_time: datetime | None = None,
) -> Order:
    """The order after moving to `new_status`, one version later.

    Raises VersionConflict when `expected_version` is given and is not the current version,
    IllegalTransition when the lifecycle does not allow the move.
    """
    if expected_version is not None and expected_version != order.version:
        raise VersionConflict(
            f"order {order.order_id} is at version {order.version}, "
            f"not the expected version {expected_version}",
            metadata={"current_version": str(order.version)},
        )
    if new_status not in allowed_next(order.status):
        allowed = ", ".join(sorted(allowed_next(order.status))) or "none (terminal)"
        raise IllegalTransition(
            f"order {order.order_id} cannot move from {order.status} to {new_status}; "
            f"allowed: {allowed}",
            metadata={"current_status": order.status.value, "requested_status": new_status.value},
        )
    # updated_at must never go backwards: keyset pages and the read model order by it.
    updated_at = max(now, order.updated_at)
    return replace(
        order,
        status=new_status,
        updated_at=updated_at,
        version=order.version + 1,
        estimated_delivery_time=(
            estimated_delivery_time
            if estimated_delivery_time is not None
            else order.estimated_delivery_time
        ),
    )


def place_order(
    command: CreateOrder, *, order_id: UUID, tracking_code: str, now: datetime
) -> Order:
    """A new order in PENDING at version 1; the total follows from the items."""
    return Order(
        order_id=order_id,
        customer_id=command.customer_id,
        restaurant_id=command.restaurant_id,
        channel_id=command.channel_id,
        status=OrderStatus.PENDING,
        currency_code=command.currency_code,
        items=command.items,
        delivery_location=command.delivery_location,
        estimated_delivery_time=command.estimated_delivery_time,
        tracking_code=tracking_code,
        created_at=now,
        updated_at=now,
        version=1,
    )
