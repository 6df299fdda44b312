"""Test data: valid requests, with the reference write-up's sample values."""

from __future__ import annotations

import uuid

from uoom_orders_client import order_pb2, order_service_pb2

PIZZA = order_pb2.OrderItem(
    item_id="pizza-margherita",
    name="Pizza Margherita",
    quantity=1,
    unit_price=order_pb2.Money(currency_code="USD", amount_minor=1599),
)
NEW_YORK = order_pb2.DeliveryLocation(
    latitude=40.7128,
    longitude=-74.006,
    address="123 Main St, New York, NY 10001",
    city="New York",
    postal_code="10001",
)


def create_request(
    *,
    customer_id: str | None = None,
    restaurant_id: str | None = None,
    items: list[order_pb2.OrderItem] | None = None,
    request_id: str | None = None,
) -> order_service_pb2.CreateOrderRequest:
    return order_service_pb2.CreateOrderRequest(
        request_id=request_id or str(uuid.uuid4()),
        customer_id=customer_id or str(uuid.uuid4()),
        restaurant_id=restaurant_id or str(uuid.uuid4()),
        channel_id="default-channel",
        items=items if items is not None else [PIZZA],
        delivery_location=NEW_YORK,
    )


def update_request(
    order_id: str, status: int, *, expected_version: int = 0, request_id: str | None = None
) -> order_service_pb2.UpdateOrderStatusRequest:
    return order_service_pb2.UpdateOrderStatusRequest(
        request_id=request_id or str(uuid.uuid4()),
        order_id=order_id,
        status=status,  # type: ignore[arg-type]
        expected_version=expected_version,
    )
