"""Deadlines and request size: a call whose deadline passes stops its work; an oversized
request is refused before it costs anything."""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from tests.builders import PIZZA, create_request, update_request
from tests.integration.projector_support import eventually
from uoom_orders_client import (
    DeadlineExceededError,
    OrderServiceClient,
    ResourceExhaustedError,
    order_pb2,
)


async def test_a_call_past_its_deadline_stops_and_writes_nothing(
    client: OrderServiceClient, db: asyncpg.Connection
) -> None:
    order = (await client.create_order(create_request())).order
    order_id = uuid.UUID(order.order_id)
    # Hold the order's row lock, so the update waits inside its transaction.
    blocker = db.transaction()
    await blocker.start()
    await db.execute("SELECT 1 FROM orders WHERE order_id = $1 FOR UPDATE", order_id)
    try:
        with pytest.raises(DeadlineExceededError):
            await client.update_order_status(
                update_request(order.order_id, order_pb2.ORDER_STATUS_CONFIRMED),
                timeout=0.5,
            )

        # The server cancelled its work: no session is left waiting on the lock.
        async def nobody_waits() -> bool:
            waiting = await db.fetchval(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE wait_event_type = 'Lock' AND datname = current_database()"
            )
            return bool(waiting == 0)

        await eventually(nobody_waits, "the cancelled update to leave the lock queue", timeout=10)
    finally:
        await blocker.rollback()
    version = await db.fetchval("SELECT version FROM orders WHERE order_id = $1", order_id)
    assert version == 1
    assert await db.fetchval("SELECT count(*) FROM outbox WHERE order_id = $1", order_id) == 1


async def test_an_oversized_request_is_refused(client: OrderServiceClient) -> None:
    huge = order_pb2.OrderItem()
    huge.CopyFrom(PIZZA)
    huge.name = "x" * (5 * 1024 * 1024)
    with pytest.raises(ResourceExhaustedError):
        await client.create_order(create_request(items=[huge]))
