"""One suite, two adapters of the DynamoDB/DAX read tier: the aioboto3 client against the
real DynamoDB-protocol endpoint (moto_server) here, and the DAX client adapter over the real
amazon-dax-client against the DAX-protocol endpoint in test_item_read_store_contract_dax.py,
which collects these tests again with its own `env`."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from uoom.orders.v1 import order_pb2

from tests.integration.projector_support import drop_tables, dynamodb, order_history
from uoom_orders import wire
from uoom_orders.domain.order import OrderStatus
from uoom_orders.dynamodb.tables import TableNames, create_tables
from uoom_orders.dynamodb.writer import ReadModelWriter
from uoom_orders.read.item_store import ItemReadStore
from uoom_orders.read.ports import ListQuery, ListScope, PageCursor
from uoom_orders_devstack import StackEndpoints

pytestmark = pytest.mark.integration

DAY = 86_400


class Env:
    def __init__(self, store: ItemReadStore, writer: ReadModelWriter):
        self.store = store
        self.writer = writer

    async def put(self, order: order_pb2.Order, *, expired: bool = False) -> None:
        ttl = int(time.time()) + (-60 if expired else DAY)
        await self.writer.put_order(order, ttl)


def an_order(*, customer: uuid.UUID | None = None, at: datetime | None = None) -> order_pb2.Order:
    event = order_history(0, customer=customer, start=at)[0]
    return wire.order_to_proto(event.order)


@pytest.fixture
async def env(local_stack: StackEndpoints) -> AsyncIterator[Env]:
    prefix = f"contract-{uuid.uuid4().hex[:10]}-"
    tables = TableNames.for_prefix(prefix)
    async with dynamodb(local_stack) as client:
        await create_tables(client, prefix)
        try:
            store = ItemReadStore(client, tables, name="dynamodb")
            yield Env(store, ReadModelWriter(client, prefix))
        finally:
            await drop_tables(client, tables)


async def test_a_written_order_reads_back_exactly(env: Env) -> None:
    order = an_order()
    await env.put(order)
    oid = uuid.UUID(order.order_id)
    assert await env.store.get_summary(oid) == wire.summary_from_order(order)
    assert await env.store.get_order(oid) == order


async def test_absent_and_expired_orders_are_none(env: Env) -> None:
    expired = an_order()
    await env.put(expired, expired=True)
    for oid in (uuid.uuid4(), uuid.UUID(expired.order_id)):
        assert await env.store.get_summary(oid) is None
        assert await env.store.get_order(oid) is None


async def test_batches_span_chunks_and_leave_out_absent_and_expired(env: Env) -> None:
    live = [an_order() for _ in range(120)]
    expired = an_order()
    for order in live:
        await env.put(order)
    await env.put(expired, expired=True)
    ids = [uuid.UUID(o.order_id) for o in live] + [uuid.UUID(expired.order_id), uuid.uuid4()]
    found = await env.store.get_summaries(ids)
    assert set(found) == {uuid.UUID(o.order_id).int for o in live}
    assert found[uuid.UUID(live[7].order_id).int] == wire.summary_from_order(live[7])


async def test_lists_run_newest_first_filter_and_continue_from_a_cursor(env: Env) -> None:
    customer = uuid.uuid4()
    base = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    orders = [an_order(customer=customer, at=base + timedelta(seconds=i)) for i in range(7)]
    for order in orders:
        await env.put(order)
    old = an_order(customer=customer, at=base - timedelta(days=1))
    await env.put(old, expired=True)
    newest_first = [o.order_id for o in reversed(orders)]

    query = ListQuery(ListScope.CUSTOMER, customer, None, 4, None)
    first = await env.store.list_summaries(query)
    assert [s.order_id for s in first] == newest_first[:4]
    last = first[-1]
    cursor = PageCursor(last.updated_at.ToDatetime(tzinfo=UTC), uuid.UUID(last.order_id))
    rest = await env.store.list_summaries(ListQuery(ListScope.CUSTOMER, customer, None, 10, cursor))
    assert [s.order_id for s in rest] == newest_first[4:]  # the expired one is left out

    pending = await env.store.list_summaries(
        ListQuery(ListScope.CUSTOMER, customer, OrderStatus.PENDING, 10, None)
    )
    assert len(pending) == 7
    none = await env.store.list_summaries(
        ListQuery(ListScope.CUSTOMER, customer, OrderStatus.DELIVERED, 10, None)
    )
    assert none == []
