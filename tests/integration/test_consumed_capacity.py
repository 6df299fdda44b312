"""The capacity the service's DynamoDB calls consume, as DynamoDB reports it (the local
endpoint, moto, reports fixed units: PutItem 1, GetItem 0.5, one per BatchGetItem key), and
the conditional writes it refuses, which consume capacity no reply reports."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from prometheus_client import REGISTRY

from tests.integration.projector_support import order_history
from uoom_orders import wire
from uoom_orders.dynamodb import ReadModelWriter, TableNames, items
from uoom_orders.read.item_store import ItemReadStore

STATUS, DETAILS = "order-status", "order-details"


def consumed(operation: str, table: str) -> float:
    labels = {"operation": operation, "table": table}
    return REGISTRY.get_sample_value("dynamodb_consumed_capacity_units_total", labels) or 0.0


def refused(operation: str, table: str) -> float:
    labels = {"operation": operation, "table": table}
    return REGISTRY.get_sample_value("dynamodb_conditional_check_failed_total", labels) or 0.0


def prefix_of(tables: TableNames) -> str:
    return tables.status.removesuffix(STATUS)


async def test_writes_count_what_they_consumed_and_refused_conditions(
    ddb: Any, tables: TableNames
) -> None:
    writer = ReadModelWriter(ddb, prefix_of(tables))
    order = wire.order_to_proto(order_history()[0].order)
    ttl = items.ttl_after(72, time.time())
    before = {t: (consumed("PutItem", t), refused("PutItem", t)) for t in (STATUS, DETAILS)}
    assert (await writer.put_order(order, ttl)).applied
    assert not (await writer.put_order(order, ttl)).applied  # the same version: refused
    for table in (STATUS, DETAILS):
        assert consumed("PutItem", table) - before[table][0] == pytest.approx(1.0)
        assert refused("PutItem", table) - before[table][1] == 1


async def test_the_dynamodb_tier_counts_its_reads_and_an_uncounted_store_does_not(
    ddb: Any, tables: TableNames
) -> None:
    writer = ReadModelWriter(ddb, prefix_of(tables))
    orders = [wire.order_to_proto(order_history()[0].order) for _ in range(3)]
    for order in orders:
        await writer.put_order(order, items.ttl_after(72, time.time()))
    ids = [uuid.UUID(o.order_id) for o in orders]
    counted = ItemReadStore(ddb, tables, name="dynamodb", count_capacity=True)
    silent = ItemReadStore(ddb, tables, name="dax")
    get_before, batch_before = consumed("GetItem", STATUS), consumed("BatchGetItem", STATUS)
    assert await silent.get_summary(ids[0]) is not None
    assert len(await silent.get_summaries(ids)) == 3
    assert consumed("GetItem", STATUS) == get_before
    assert consumed("BatchGetItem", STATUS) == batch_before
    assert await counted.get_summary(ids[0]) is not None
    assert len(await counted.get_summaries(ids)) == 3
    assert consumed("GetItem", STATUS) - get_before == pytest.approx(0.5)
    assert consumed("BatchGetItem", STATUS) - batch_before == pytest.approx(3.0)
