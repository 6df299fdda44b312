"""PostgreSQL loses a commit whose event was already published (a failover to an asynchronous
replica, a point-in-time restore): the read model and every near cache hold a version
PostgreSQL never kept, and the next write reuses its number. Reconciliation repairs the read
model, and its correction event brings every replica's near cache back to PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC

import asyncpg
import pytest

from tests.builders import create_request, update_request
from tests.integration.pipeline import Api, Pipeline, dynamodb_item, pipeline
from tests.integration.projector_support import eventually
from tests.integration.test_read_path import served_by
from uoom_orders.dynamodb import items
from uoom_orders.dynamodb.client import dynamodb_client
from uoom_orders.projector import Reconciler, ReconcileReport
from uoom_orders_client import order_pb2, order_service_pb2
from uoom_orders_devstack import StackEndpoints

S = order_pb2


@pytest.fixture
async def stack(local_stack: StackEndpoints, database_url: str) -> AsyncIterator[Pipeline]:
    async with pipeline(local_stack, database_url) as running:
        yield running


async def _reconcile(stack: Pipeline, database_url: str) -> ReconcileReport:
    """One reconciliation pass over the pipeline's database and tables."""
    settings = stack.settings()
    async with (
        asyncpg.create_pool(database_url, min_size=1, max_size=4) as pool,
        dynamodb_client(region=settings.aws_region, endpoint=settings.dynamodb_endpoint) as ddb,
    ):
        return await Reconciler(pool, ddb, settings.dynamodb_table_prefix).run()


async def _move(api: Api, order_id: str, status: int) -> order_pb2.Order:
    return (await api.client.update_order_status(update_request(order_id, status))).order


async def _status(stack: Pipeline, client_index: int, order_id: str) -> tuple[int, int]:
    reply = await stack.apis[client_index].client.get_order_status(
        order_service_pb2.GetOrderStatusRequest(order_id=order_id)
    )
    return reply.order.version, reply.order.status


async def test_a_lost_commit_is_repaired_everywhere(stack: Pipeline, database_url: str) -> None:
    a, b = await stack.start_api(), await stack.start_api()
    order = (await a.client.create_order(create_request())).order
    kept = (
        await a.client.update_order_status(update_request(order.order_id, S.ORDER_STATUS_CONFIRMED))
    ).order
    lost = (
        await a.client.update_order_status(update_request(order.order_id, S.ORDER_STATUS_CANCELLED))
    ).order
    assert lost.version == 3

    async def everywhere(version: int, status: int) -> bool:
        item = await dynamodb_item(stack, order.order_id)
        if item is None or items.item_version(item) != version:
            return False
        for index in range(2):
            if await _status(stack, index, order.order_id) != (version, status):
                return False
            tier, _ = await served_by(stack.apis[index].client, order.order_id)
            if tier != "near-cache":
                return False
        return True

    await eventually(lambda: everywhere(3, S.ORDER_STATUS_CANCELLED), "v3 everywhere")

    # PostgreSQL is restored to before the CANCELLED commit; its event stays published.
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            "UPDATE orders SET status = 'CONFIRMED', version = 2, updated_at = $2"
            " WHERE order_id = $1::uuid",
            order.order_id,
            kept.updated_at.ToDatetime(tzinfo=UTC),
        )
    finally:
        await conn.close()
    # The next write reuses version 3; "newest version wins" alone would keep the lost one.
    reused = (
        await b.client.update_order_status(update_request(order.order_id, S.ORDER_STATUS_PREPARING))
    ).order
    assert reused.version == 3
    item = await dynamodb_item(stack, order.order_id)
    assert item is not None
    assert items.summary_from_item(item).status == S.ORDER_STATUS_CANCELLED  # stuck, until…

    report = await _reconcile(stack, database_url)
    assert {(d.table, d.kind.value) for d in report.differences} == {
        ("order-status", "content"),
        ("order-details", "content"),
    }
    assert report.corrections == 1
    await eventually(lambda: everywhere(3, S.ORDER_STATUS_PREPARING), "PostgreSQL's v3 everywhere")
    # And the order moves on normally from there.
    moved = (
        await a.client.update_order_status(
            update_request(order.order_id, S.ORDER_STATUS_READY_FOR_PICKUP)
        )
    ).order
    await eventually(lambda: everywhere(moved.version, S.ORDER_STATUS_READY_FOR_PICKUP), "v4")


async def test_a_lost_create_is_removed_everywhere(stack: Pipeline, database_url: str) -> None:
    a, b = await stack.start_api(), await stack.start_api()
    order = (await a.client.create_order(create_request())).order

    async def known(expected: bool) -> bool:
        item = await dynamodb_item(stack, order.order_id)
        if (item is not None) != expected:
            return False
        for api in (a, b):
            reply = await api.client.batch_get_order_status(
                order_service_pb2.BatchGetOrderStatusRequest(order_ids=[order.order_id])
            )
            if (len(reply.orders) == 1) != expected:
                return False
        return True

    await eventually(lambda: known(True), "the order everywhere")
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("DELETE FROM orders WHERE order_id = $1::uuid", order.order_id)
    finally:
        await conn.close()
    report = await _reconcile(stack, database_url)
    assert {(d.table, d.kind.value) for d in report.differences} == {
        ("order-status", "orphan"),
        ("order-details", "orphan"),
    }
    await eventually(lambda: known(False), "the order nowhere")
