"""Issue 8 end to end: an order at the edges of what the API accepts goes through the relay and
the projector into both DynamoDB tables (moto) and reads back from DynamoDB equal to what
CreateOrder answered. A latitude of 1e-300 used to be accepted, then dead-lettered."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from prometheus_client import REGISTRY

from tests.builders import create_request
from tests.integration.pipeline import Pipeline, pipeline
from tests.integration.projector_support import eventually
from uoom_orders import wire
from uoom_orders.domain import contract_rules as rules
from uoom_orders_client import order_pb2, order_service_pb2
from uoom_orders_devstack import StackEndpoints


@pytest.fixture
async def stack(local_stack: StackEndpoints, database_url: str) -> AsyncIterator[Pipeline]:
    async with pipeline(local_stack, database_url) as running:
        yield running


def edge_request() -> order_service_pb2.CreateOrderRequest:
    pizza = "\U0001f355"
    request = create_request(
        items=[
            order_pb2.OrderItem(
                item_id=pizza * rules.ITEM_ID.max_len,
                name=" " + pizza * rules.ITEM_NAME.max_len + " ",
                quantity=rules.QUANTITY.high,
                unit_price=order_pb2.Money(
                    currency_code="EUR", amount_minor=rules.UNIT_PRICE_MINOR.high
                ),
            ),
            order_pb2.OrderItem(
                item_id="free",
                name="Free",
                quantity=1,
                unit_price=order_pb2.Money(currency_code="EUR"),
            ),
        ]
    )
    location = request.delivery_location
    location.latitude = 1e-300  # the value
    location.longitude = -5e-324  # the smallest double there is
    location.address = pizza * rules.ADDRESS.max_len
    location.city = "K\u00f8benhavn"
    location.postal_code = pizza * rules.POSTAL_CODE.max_len
    request.channel_id = "c" * rules.CHANNEL_ID.max_len
    request.estimated_delivery_time.CopyFrom(
        wire.timestamp(datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC))
    )
    return request


async def test_an_order_at_the_edges_reaches_both_tables_and_reads_back_equal(
    stack: Pipeline,
) -> None:
    dead_letters = REGISTRY.get_sample_value("projector_dead_letters_total") or 0.0
    api = await stack.start_api(READ_TIERS="dynamodb")
    created = (await api.client.create_order(edge_request())).order
    assert created.delivery_location.latitude == 0.0
    assert created.delivery_location.longitude == 0.0

    async def from_dynamodb() -> bool:
        reply, info = await api.client.get_order_details_with_metadata(
            order_service_pb2.GetOrderDetailsRequest(order_id=created.order_id)
        )
        return info.served_by == "dynamodb" and reply.order == created

    await eventually(from_dynamodb, "the order's details from DynamoDB, equal to CreateOrder's")
    status, info = await api.client.get_order_status_with_metadata(
        order_service_pb2.GetOrderStatusRequest(order_id=created.order_id)
    )
    assert info.served_by == "dynamodb"
    assert status.order == wire.summary_from_order(created)
    assert (REGISTRY.get_sample_value("projector_dead_letters_total") or 0.0) == dead_letters
