"""Reads served from PostgreSQL, the source of truth and the read path's last tier."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import asyncpg
import pytest

from tests.builders import create_request, update_request
from uoom_orders_client import (
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    OrderServiceClient,
    order_pb2,
    order_service_pb2,
)

S = order_pb2


async def test_status_and_details_of_an_order(client: OrderServiceClient) -> None:
    created = (await client.create_order(create_request())).order
    status, info = await client.get_order_status_with_metadata(
        order_service_pb2.GetOrderStatusRequest(order_id=created.order_id)
    )
    assert info.served_by == "postgres"
    assert status.order.order_id == created.order_id
    assert status.order.total == created.total
    assert status.order.version == 1
    details = await client.get_order_details(
        order_service_pb2.GetOrderDetailsRequest(order_id=created.order_id)
    )
    assert details.order == created


async def test_missing_orders_are_not_found(client: OrderServiceClient) -> None:
    with pytest.raises(NotFoundError):
        await client.get_order_status(
            order_service_pb2.GetOrderStatusRequest(order_id=str(uuid.uuid4()))
        )
    with pytest.raises(NotFoundError):
        await client.get_order_details(
            order_service_pb2.GetOrderDetailsRequest(order_id=str(uuid.uuid4()))
        )


async def test_min_version_beyond_the_order_is_failed_precondition(
    client: OrderServiceClient,
) -> None:
    created = (await client.create_order(create_request())).order
    updated = await client.update_order_status(
        update_request(created.order_id, S.ORDER_STATUS_CONFIRMED)
    )
    ok = await client.get_order_status(
        order_service_pb2.GetOrderStatusRequest(order_id=created.order_id, min_version=2)
    )
    assert ok.order.version == updated.order.version == 2
    with pytest.raises(FailedPreconditionError) as raised:
        await client.get_order_status(
            order_service_pb2.GetOrderStatusRequest(order_id=created.order_id, min_version=3)
        )
    assert raised.value.reason == "VERSION_NOT_REACHED"


async def test_batch_keeps_request_order_dedups_and_lists_missing(
    client: OrderServiceClient,
) -> None:
    a = (await client.create_order(create_request())).order.order_id
    b = (await client.create_order(create_request())).order.order_id
    ghost = str(uuid.uuid4())
    response = await client.batch_get_order_status(
        order_service_pb2.BatchGetOrderStatusRequest(order_ids=[b, ghost, a, b, ghost])
    )
    assert [o.order_id for o in response.orders] == [b, a]
    assert list(response.missing_order_ids) == [ghost]


async def test_pages_cover_every_order_once_even_with_ties_in_updated_at(
    client: OrderServiceClient, db: asyncpg.Connection
) -> None:
    customer = str(uuid.uuid4())
    ids = [
        (await client.create_order(create_request(customer_id=customer))).order.order_id
        for _ in range(13)
    ]
    # Ties: groups of orders share one updated_at, so only order_id separates them.
    tie = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    await db.execute(
        "UPDATE orders SET updated_at = $1 WHERE order_id = ANY($2::uuid[])",
        tie,
        [uuid.UUID(i) for i in ids[:7]],
    )
    seen: list[str] = []
    token = ""
    pages = 0
    while True:
        page = await client.list_orders_by_customer(
            order_service_pb2.ListOrdersByCustomerRequest(
                customer_id=customer, page_size=3, page_token=token
            )
        )
        pages += 1
        assert 0 < len(page.orders) <= 3
        seen.extend(o.order_id for o in page.orders)
        token = page.next_page_token
        if not token:
            break
    assert pages == 5  # 13 orders in pages of 3: the last page is not empty
    assert sorted(seen) == sorted(ids)
    keys = [(o.updated_at.ToDatetime(), o.order_id) for o in await _all(client, customer)]
    assert keys == sorted(keys, reverse=True)  # newest first, then by order_id


async def _all(client: OrderServiceClient, customer: str) -> list[order_pb2.OrderSummary]:
    return [o async for o in client.iter_orders_by_customer(customer, page_size=100)]


async def test_list_by_restaurant_with_a_status_filter(client: OrderServiceClient) -> None:
    restaurant = str(uuid.uuid4())
    ids = [
        (await client.create_order(create_request(restaurant_id=restaurant))).order.order_id
        for _ in range(4)
    ]
    for order_id in ids[:2]:
        await client.update_order_status(update_request(order_id, S.ORDER_STATUS_CONFIRMED))
    confirmed = await client.list_orders_by_restaurant(
        order_service_pb2.ListOrdersByRestaurantRequest(
            restaurant_id=restaurant, status_filter=S.ORDER_STATUS_CONFIRMED
        )
    )
    assert sorted(o.order_id for o in confirmed.orders) == sorted(ids[:2])
    assert confirmed.next_page_token == ""
    everything = await client.list_orders_by_restaurant(
        order_service_pb2.ListOrdersByRestaurantRequest(restaurant_id=restaurant)
    )
    assert [o.order_id for o in everything.orders][:2] == ids[:2][::-1]  # changed last, first


async def test_an_unknown_owner_has_an_empty_list(client: OrderServiceClient) -> None:
    page = await client.list_orders_by_customer(
        order_service_pb2.ListOrdersByCustomerRequest(customer_id=str(uuid.uuid4()))
    )
    assert list(page.orders) == []
    assert page.next_page_token == ""


async def test_forged_or_foreign_page_tokens_are_invalid_argument(
    client: OrderServiceClient,
) -> None:
    customer = str(uuid.uuid4())
    for _ in range(3):
        await client.create_order(create_request(customer_id=customer))
    page = await client.list_orders_by_customer(
        order_service_pb2.ListOrdersByCustomerRequest(customer_id=customer, page_size=1)
    )
    token = page.next_page_token
    assert token
    for forged, owner in [
        (token[:-2] + ("AA" if token[-2:] != "AA" else "BB"), customer),
        ("not-a-token", customer),
        (token, str(uuid.uuid4())),  # another customer's query
    ]:
        with pytest.raises(InvalidArgumentError) as raised:
            await client.list_orders_by_customer(
                order_service_pb2.ListOrdersByCustomerRequest(customer_id=owner, page_token=forged)
            )
        assert [v.field for v in raised.value.field_violations] == ["page_token"]


@pytest.mark.parametrize(
    ("call", "request_message", "fields"),
    [
        ("get_order_status", order_service_pb2.GetOrderStatusRequest(), {"order_id"}),
        (
            "get_order_status",
            order_service_pb2.GetOrderStatusRequest(order_id="x", min_version=-1),
            {"order_id", "min_version"},
        ),
        ("get_order_details", order_service_pb2.GetOrderDetailsRequest(order_id="1"), {"order_id"}),
        ("batch_get_order_status", order_service_pb2.BatchGetOrderStatusRequest(), {"order_ids"}),
        (
            "list_orders_by_customer",
            order_service_pb2.ListOrdersByCustomerRequest(customer_id="c", page_size=-5),
            {"customer_id", "page_size"},
        ),
        (
            "list_orders_by_restaurant",
            order_service_pb2.ListOrdersByRestaurantRequest(status_filter=42),  # type: ignore[arg-type]
            {"restaurant_id", "status_filter"},
        ),
        (
            "create_order",
            order_service_pb2.CreateOrderRequest(request_id=str(uuid.uuid4())),
            {"customer_id", "restaurant_id", "items", "delivery_location"},
        ),
        (
            "update_order_status",
            order_service_pb2.UpdateOrderStatusRequest(request_id=str(uuid.uuid4())),
            {"order_id", "status"},
        ),
    ],
)
async def test_bad_input_is_invalid_argument_with_field_violations(
    client: OrderServiceClient, call: str, request_message: object, fields: set[str]
) -> None:
    with pytest.raises(InvalidArgumentError) as raised:
        await getattr(client, call)(request_message)
    assert {v.field for v in raised.value.field_violations} == fields
    assert raised.value.reason == "INVALID_ARGUMENT"
