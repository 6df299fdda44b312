"""The read model on a real DynamoDB endpoint: table creation and the versioned writer."""

from __future__ import annotations

import gc
import json
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from aiobotocore.awsrequest import AioAWSResponse
from prometheus_client import REGISTRY
from uoom.orders.v1 import order_pb2

from tests.integration.projector_support import (
    drop_tables,
    dynamodb,
    get_item,
    order_history,
    unique,
)
from uoom_orders import wire
from uoom_orders.dynamodb import (
    ReadModelThrottled,
    ReadModelUnavailable,
    ReadModelWriter,
    ReadModelWriteRejected,
    TableNames,
    create_tables,
    items,
    table_definitions,
)
from uoom_orders_devstack import StackEndpoints
from uoom_orders_devstack.ports import free_port


@pytest.fixture(autouse=True)
def _collect_garbage() -> Iterator[None]:
    # An unclosed client warns from its finaliser; collecting here blames the leaking test.
    yield
    gc.collect()


@pytest.fixture
async def writer(ddb: Any, tables: TableNames) -> ReadModelWriter:
    prefix = tables.status.removesuffix("order-status")
    return ReadModelWriter(ddb, prefix)


def _versions() -> list[order_pb2.Order]:
    return [wire.order_to_proto(event.order) for event in order_history()]


def _metric(name: str, labels: dict[str, str]) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_tables_are_created_as_the_reference_defines_them(
    ddb: Any, tables: TableNames
) -> None:
    assert tables.status.endswith("-order-status")
    assert tables.details.endswith("-order-details")
    for name in tables.all():
        table = (await ddb.describe_table(TableName=name))["Table"]
        assert table["TableStatus"] == "ACTIVE"
        assert table["KeySchema"] == [{"AttributeName": "orderId", "KeyType": "HASH"}]
        assert sorted(
            (d["AttributeName"], d["AttributeType"]) for d in table["AttributeDefinitions"]
        ) == [("customerId", "S"), ("orderId", "S"), ("restaurantId", "S"), ("updatedAt", "S")]
        indexes = {index["IndexName"]: index for index in table["GlobalSecondaryIndexes"]}
        assert set(indexes) == {"CustomerStatusIndex", "RestaurantStatusIndex"}
        for index_name, owner in (
            ("CustomerStatusIndex", "customerId"),
            ("RestaurantStatusIndex", "restaurantId"),
        ):
            assert indexes[index_name]["KeySchema"] == [
                {"AttributeName": owner, "KeyType": "HASH"},
                {"AttributeName": "updatedAt", "KeyType": "RANGE"},
            ]
            assert indexes[index_name]["Projection"] == {"ProjectionType": "ALL"}
        assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
        assert table["StreamSpecification"] == {
            "StreamEnabled": True,
            "StreamViewType": "NEW_AND_OLD_IMAGES",
        }
        ttl = (await ddb.describe_time_to_live(TableName=name))["TimeToLiveDescription"]
        assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "ttl"}


async def test_creating_twice_is_fine_and_enables_ttl_on_an_existing_table(ddb: Any) -> None:
    prefix = unique("rm2") + "-"
    names = TableNames.for_prefix(prefix)
    try:
        # A table made without TTL (by hand, or by an older version) gets it.
        await ddb.create_table(**table_definitions(prefix)[names.status])
        assert await create_tables(ddb, prefix) == [names.status, names.details]
        assert await create_tables(ddb, prefix) == [names.status, names.details]
        for name in names.all():
            ttl = (await ddb.describe_time_to_live(TableName=name))["TimeToLiveDescription"]
            assert ttl["TimeToLiveStatus"] == "ENABLED"
    finally:
        await drop_tables(ddb, names)


def test_definitions_are_plain_data() -> None:
    definitions = table_definitions("uoom-dev-")
    assert list(definitions) == ["uoom-dev-order-status", "uoom-dev-order-details"]
    # JSON-serialisable, so a CloudFormation template can be compared with it.
    assert json.loads(json.dumps(definitions)) == definitions


async def test_newer_version_wins_in_both_tables(
    ddb: Any, tables: TableNames, writer: ReadModelWriter
) -> None:
    versions = _versions()
    for order in versions:
        result = await writer.put_order(order, 2_000_000_000)
        assert (result.status_written, result.details_written) == (True, True)
    newest = versions[-1]
    details = await get_item(ddb, tables.details, newest.order_id)
    status = await get_item(ddb, tables.status, newest.order_id)
    assert details is not None
    assert status is not None
    assert items.order_from_item(details) == newest
    assert items.summary_from_item(status) == wire.summary_from_order(newest)
    assert status == items.status_item(newest, 2_000_000_000)
    assert details == items.details_item(newest, 2_000_000_000)


async def test_older_or_duplicate_version_is_a_stale_no_op(
    ddb: Any, tables: TableNames, writer: ReadModelWriter
) -> None:
    versions = _versions()
    newest = versions[-1]
    await writer.put_order(newest, 2_000_000_000)
    for order in [newest, *versions[:-1]]:
        # A different ttl shows that nothing at all was written.
        result = await writer.put_order(order, 2_100_000_000)
        assert not result.applied
        assert (result.order_id, result.version) == (order.order_id, order.version)
    for table, encode in ((tables.status, items.status_item), (tables.details, items.details_item)):
        assert await get_item(ddb, table, newest.order_id) == encode(newest, 2_000_000_000)


async def test_same_version_revives_an_expired_item_but_never_an_older_one(
    ddb: Any, tables: TableNames
) -> None:
    prefix = tables.status.removesuffix("order-status")
    now = 1_800_000_000.0
    writer = ReadModelWriter(ddb, prefix, clock=lambda: now)
    versions = _versions()
    await writer.put_order(versions[2], int(now) - 10)  # written long ago, now expired
    assert not (await writer.put_order(versions[1], int(now) + 3600)).applied
    result = await writer.put_order(versions[2], int(now) + 3600)
    assert (result.status_written, result.details_written) == (True, True)
    item = await get_item(ddb, tables.status, versions[2].order_id)
    assert item is not None
    assert not items.is_expired(item, now)
    assert not (await writer.put_order(versions[2], int(now) + 7200)).applied


def _error_reply(request: Any, error_type: str, message: str) -> AioAWSResponse:
    """What DynamoDB answers for a refused call (HTTP 400, its error type in `__type`), for a
    before-send hook to return instead of sending the request."""

    class _Body:
        async def read(self) -> bytes:
            return json.dumps({"__type": error_type, "message": message}).encode()

    headers = {"content-type": "application/x-amz-json-1.0", "x-amzn-requestid": "t"}
    return AioAWSResponse(request.url, 400, headers, _Body())


async def test_throttling_is_counted_and_retried(
    local_stack: StackEndpoints, tables: TableNames
) -> None:
    prefix = tables.status.removesuffix("order-status")
    throttled = 0

    def throttle_status_table(request: Any, **_: Any) -> AioAWSResponse | None:
        nonlocal throttled
        if throttled >= 2 or tables.status.encode() not in request.body:
            return None
        throttled += 1
        return _error_reply(request, "ThrottlingException", "Rate of requests exceeds")

    before = _metric("dynamodb_throttled_requests_total", {"operation": "PutItem"})
    # One botocore retry, then the writer's own retry: both layers see a throttle.
    async with dynamodb(local_stack, max_retries=1) as client:
        client.meta.events.register_first("before-send.dynamodb.PutItem", throttle_status_table)
        writer = ReadModelWriter(client, prefix, backoff_seconds=0.01)
        result = await writer.put_order(_versions()[0], 2_000_000_000)
    assert result.applied
    assert throttled == 2
    assert _metric("dynamodb_throttled_requests_total", {"operation": "PutItem"}) == before + 2


async def test_a_table_that_keeps_throttling_is_throttled_not_lost(
    local_stack: StackEndpoints, tables: TableNames
) -> None:
    prefix = tables.status.removesuffix("order-status")

    def throttle(request: Any, **_: Any) -> AioAWSResponse:
        return _error_reply(request, "ProvisionedThroughputExceededException", "Slow down")

    async with dynamodb(local_stack, max_retries=0) as client:
        client.meta.events.register_first("before-send.dynamodb.PutItem", throttle)
        writer = ReadModelWriter(client, prefix, attempts=2, backoff_seconds=0.01)
        # Still an outage to wait out (a subclass), but one in which nothing was lost.
        with pytest.raises(ReadModelThrottled, match="after 2 attempts"):
            await writer.put_order(_versions()[0], 2_000_000_000)


async def test_an_unreachable_endpoint_is_unavailable_not_rejected(
    local_stack: StackEndpoints,
) -> None:
    endpoints = replace(local_stack, dynamodb_endpoint=f"http://127.0.0.1:{free_port()}")
    async with dynamodb(endpoints, max_retries=0, timeout_ms=500) as client:
        writer = ReadModelWriter(client, "nowhere-", attempts=2, backoff_seconds=0.01)
        with pytest.raises(ReadModelUnavailable, match="after 2 attempts") as raised:
            await writer.put_order(_versions()[0], 2_000_000_000)
        assert not isinstance(raised.value, ReadModelThrottled)


async def test_a_missing_table_is_unavailable(ddb: Any) -> None:
    writer = ReadModelWriter(ddb, unique("missing") + "-", attempts=1)
    with pytest.raises(ReadModelUnavailable, match="ResourceNotFound"):
        await writer.put_order(_versions()[0], 2_000_000_000)


async def test_an_item_over_the_size_limit_is_rejected(writer: ReadModelWriter) -> None:
    order = _versions()[0]
    order.delivery_location.address = "x" * 450_000
    with pytest.raises(ReadModelWriteRejected, match="ValidationException"):
        await writer.put_order(order, 2_000_000_000)


async def test_an_owned_client_closes_twice(local_stack: StackEndpoints) -> None:
    from tests.integration.projector_support import aws_session

    writer = await ReadModelWriter.open(
        region=local_stack.aws_region,
        endpoint=local_stack.dynamodb_endpoint,
        table_prefix="unused-",
        session=aws_session(local_stack),
    )
    async with writer:
        assert (await writer.client.list_tables())["ResponseMetadata"]["HTTPStatusCode"] == 200
    await writer.aclose()
