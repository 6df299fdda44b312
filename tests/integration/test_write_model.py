"""Writes against the real PostgreSQL, through the gRPC API."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest
from uoom.orders.v1 import order_events_pb2

from tests.builders import PIZZA, create_request, update_request
from uoom_orders_client import (
    AbortedError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    OrderServiceClient,
    order_pb2,
)

S = order_pb2


async def test_create_writes_order_items_and_one_outbox_row(
    client: OrderServiceClient, db: asyncpg.Connection
) -> None:
    burger = order_pb2.OrderItem(
        item_id="burger",
        name="Burger",
        quantity=3,
        unit_price=order_pb2.Money(currency_code="USD", amount_minor=850),
    )
    response = await client.create_order(create_request(items=[PIZZA, burger]))
    order = response.order
    assert order.status == S.ORDER_STATUS_PENDING
    assert order.version == 1
    assert order.total.amount_minor == 1599 + 3 * 850
    assert [i.total_price.amount_minor for i in order.items] == [1599, 2550]
    assert order.tracking_code.startswith("TRK")

    order_id = uuid.UUID(order.order_id)
    assert await db.fetchval("SELECT count(*) FROM order_items WHERE order_id = $1", order_id) == 2
    rows = await db.fetch("SELECT * FROM outbox WHERE order_id = $1", order_id)
    assert len(rows) == 1
    event = order_events_pb2.OrderEvent.FromString(rows[0]["payload"])
    assert event.event_type == order_events_pb2.ORDER_EVENT_TYPE_CREATED
    assert event.version == 1
    assert event.order == order


async def test_a_retried_create_returns_the_first_response_and_creates_nothing(
    client: OrderServiceClient, db: asyncpg.Connection
) -> None:
    request = create_request()
    first = await client.create_order(request)
    again = await client.create_order(request)
    assert again == first
    assert await db.fetchval("SELECT count(*) FROM orders") == 1
    assert await db.fetchval("SELECT count(*) FROM outbox") == 1


async def test_concurrent_duplicates_create_one_order(
    client: OrderServiceClient, db: asyncpg.Connection
) -> None:
    request = create_request()
    responses = await asyncio.gather(*(client.create_order(request) for _ in range(8)))
    assert len({r.order.order_id for r in responses}) == 1
    assert await db.fetchval("SELECT count(*) FROM orders") == 1
    assert await db.fetchval("SELECT count(*) FROM outbox") == 1


async def test_a_request_id_reused_for_another_request_is_refused(
    client: OrderServiceClient,
) -> None:
    request = create_request()
    await client.create_order(request)
    other = create_request(request_id=request.request_id)
    with pytest.raises(InvalidArgumentError) as raised:
        await client.create_order(other)
    assert raised.value.reason == "REQUEST_ID_REUSED"


async def test_status_changes_follow_the_lifecycle(
    client: OrderServiceClient, db: asyncpg.Connection
) -> None:
    order = (await client.create_order(create_request())).order
    for version, status in enumerate(
        [S.ORDER_STATUS_CONFIRMED, S.ORDER_STATUS_PREPARING, S.ORDER_STATUS_READY_FOR_PICKUP],
        start=2,
    ):
        updated = (await client.update_order_status(update_request(order.order_id, status))).order
        assert (updated.status, updated.version) == (status, version)
        assert updated.updated_at.ToDatetime() >= order.updated_at.ToDatetime()
    versions = await db.fetch(
        "SELECT version FROM outbox WHERE order_id = $1 ORDER BY id", uuid.UUID(order.order_id)
    )
    assert [r["version"] for r in versions] == [1, 2, 3, 4]


async def test_an_illegal_move_is_failed_precondition_and_changes_nothing(
    client: OrderServiceClient, db: asyncpg.Connection
) -> None:
    order = (await client.create_order(create_request())).order
    with pytest.raises(FailedPreconditionError) as raised:
        await client.update_order_status(update_request(order.order_id, S.ORDER_STATUS_DELIVERED))
    assert raised.value.reason == "ILLEGAL_STATUS_TRANSITION"
    assert raised.value.metadata["current_status"] == "PENDING"
    await client.update_order_status(update_request(order.order_id, S.ORDER_STATUS_CANCELLED))
    with pytest.raises(FailedPreconditionError):
        await client.update_order_status(update_request(order.order_id, S.ORDER_STATUS_CONFIRMED))
    assert await db.fetchval("SELECT count(*) FROM outbox") == 2


async def test_a_stale_expected_version_is_aborted(client: OrderServiceClient) -> None:
    order = (await client.create_order(create_request())).order
    await client.update_order_status(
        update_request(order.order_id, S.ORDER_STATUS_CONFIRMED, expected_version=1)
    )
    with pytest.raises(AbortedError) as raised:
        await client.update_order_status(
            update_request(order.order_id, S.ORDER_STATUS_PREPARING, expected_version=1)
        )
    assert raised.value.reason == "VERSION_MISMATCH"
    assert raised.value.metadata["current_version"] == "2"


async def test_updating_a_missing_order_is_not_found(client: OrderServiceClient) -> None:
    with pytest.raises(NotFoundError) as raised:
        await client.update_order_status(
            update_request(str(uuid.uuid4()), S.ORDER_STATUS_CONFIRMED)
        )
    assert raised.value.reason == "ORDER_NOT_FOUND"


async def test_concurrent_updates_of_one_order_lose_nothing(
    client: OrderServiceClient, db: asyncpg.Connection
) -> None:
    """Many writers race to cancel or confirm: exactly the winners' versions exist, no gaps."""
    order = (await client.create_order(create_request())).order
    attempts = [S.ORDER_STATUS_CONFIRMED] * 6 + [S.ORDER_STATUS_CANCELLED] * 6
    results = await asyncio.gather(
        *(client.update_order_status(update_request(order.order_id, s)) for s in attempts),
        return_exceptions=True,
    )
    succeeded = [r for r in results if not isinstance(r, BaseException)]
    failed = [r for r in results if isinstance(r, BaseException)]
    assert all(isinstance(f, FailedPreconditionError) for f in failed)
    final = await db.fetchrow(
        "SELECT status, version FROM orders WHERE order_id = $1", uuid.UUID(order.order_id)
    )
    assert final["version"] == 1 + len(succeeded)
    outbox_versions = [
        r["version"] for r in await db.fetch("SELECT version FROM outbox ORDER BY id")
    ]
    assert outbox_versions == list(range(1, final["version"] + 1))
    assert final["status"] == "CANCELLED"  # cancelling is allowed from any earlier state


async def test_concurrent_expected_version_updates_exactly_one_wins(
    client: OrderServiceClient,
) -> None:
    order = (await client.create_order(create_request())).order
    results = await asyncio.gather(
        *(
            client.update_order_status(
                update_request(order.order_id, S.ORDER_STATUS_CONFIRMED, expected_version=1)
            )
            for _ in range(10)
        ),
        return_exceptions=True,
    )
    assert sum(not isinstance(r, BaseException) for r in results) == 1
    assert all(
        isinstance(r, AbortedError | FailedPreconditionError)
        for r in results
        if isinstance(r, BaseException)
    )


async def test_a_retried_update_returns_the_first_response(client: OrderServiceClient) -> None:
    order = (await client.create_order(create_request())).order
    request = update_request(order.order_id, S.ORDER_STATUS_CONFIRMED)
    first = await client.update_order_status(request)
    # The order moved on meanwhile; the retry still gets its own first answer.
    await client.update_order_status(update_request(order.order_id, S.ORDER_STATUS_PREPARING))
    assert await client.update_order_status(request) == first


async def test_concurrent_duplicates_of_an_update_change_the_order_once(
    client: OrderServiceClient, db: asyncpg.Connection
) -> None:
    """The same request sent ten times at once: one change, and every copy gets its answer."""
    order = (await client.create_order(create_request())).order
    request = update_request(order.order_id, S.ORDER_STATUS_CONFIRMED)
    answers = await asyncio.gather(*(client.update_order_status(request) for _ in range(10)))
    assert all(answer == answers[0] for answer in answers)
    assert answers[0].order.version == 2
    versions = await db.fetch(
        "SELECT version FROM outbox WHERE order_id = $1 ORDER BY id", uuid.UUID(order.order_id)
    )
    assert [row["version"] for row in versions] == [1, 2]


async def test_racing_changes_of_many_orders_leave_every_version_once(
    client: OrderServiceClient, db: asyncpg.Connection
) -> None:
    """Writers race through each order's whole lifecycle: every order ends DELIVERED at
    version 6, with one outbox row per version and one logged request per change."""
    orders = [(await client.create_order(create_request())).order for _ in range(5)]
    steps = [
        S.ORDER_STATUS_CONFIRMED,
        S.ORDER_STATUS_PREPARING,
        S.ORDER_STATUS_READY_FOR_PICKUP,
        S.ORDER_STATUS_OUT_FOR_DELIVERY,
        S.ORDER_STATUS_DELIVERED,
    ]

    async def walk(order_id: str) -> None:
        for status in steps:
            # Three writers per step; the step is done when one of them made it.
            results = await asyncio.gather(
                *(client.update_order_status(update_request(order_id, status)) for _ in range(3)),
                return_exceptions=True,
            )
            assert any(not isinstance(r, BaseException) for r in results), results

    await asyncio.gather(*(walk(o.order_id) for o in orders))
    for order in orders:
        rows = await db.fetch(
            "SELECT version FROM outbox WHERE order_id = $1 ORDER BY id", uuid.UUID(order.order_id)
        )
        assert [row["version"] for row in rows] == [1, 2, 3, 4, 5, 6]
        final = await db.fetchrow(
            "SELECT status, version FROM orders WHERE order_id = $1", uuid.UUID(order.order_id)
        )
        assert (final["status"], final["version"]) == ("DELIVERED", 6)
