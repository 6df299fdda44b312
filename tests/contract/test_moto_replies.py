"""The local endpoint's direct JSON replies (uoom_orders_devstack/moto_replies.py) say exactly
what moto's own serializer says: every reply of moto's DynamoDB handler is encoded both ways and
compared, for every operation the service and its tooling call, with random attribute values."""

from __future__ import annotations

import collections
import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto.dynamodb.responses import DynamoHandler

from tests.support.dynamodb_values import attribute_values, names, order_item
from tests.support.moto_in_process import dynamodb_with_table
from uoom_orders_devstack import moto_replies

TABLE = "contract-order-status"
INDEX = "CustomerStatusIndex"


class Comparison:
    """Wraps moto's serializer: each reply is encoded by moto and directly, and compared."""

    def __init__(self) -> None:
        self.direct: collections.Counter[str] = collections.Counter()
        self.left_to_moto: collections.Counter[str] = collections.Counter()
        self.mismatches: list[str] = []

    def wrap(self, moto_serialized: Any) -> Any:
        def serialized(handler: Any, action_result: Any) -> Any:
            by_moto = moto_serialized(handler, action_result)
            direct = moto_replies.direct_reply(handler, action_result)
            operation = handler._get_action()
            if direct is None:
                self.left_to_moto[operation] += 1
                return by_moto
            self.direct[operation] += 1
            status, headers, body = by_moto
            if (
                direct[0] != status
                or direct[1].get("Content-Type") != headers.get("Content-Type")
                or json.loads(direct[2]) != json.loads(body)
            ):
                self.mismatches.append(f"{operation}: moto {body[:300]} direct {direct[2][:300]}")
            return by_moto

        return serialized


@pytest.fixture
def compared(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, Comparison]]:
    comparison = Comparison()
    moto_serialized = getattr(DynamoHandler.serialized, "moto_serialized", DynamoHandler.serialized)
    monkeypatch.setattr(DynamoHandler, "serialized", comparison.wrap(moto_serialized))
    with dynamodb_with_table(monkeypatch, TABLE) as client:
        yield client, comparison


def test_every_operation_the_service_calls_is_encoded_alike(
    compared: tuple[Any, Comparison],
) -> None:
    client, comparison = compared
    condition = "attribute_not_exists(orderId) OR version < :v OR (version = :v AND #ttl < :now)"
    for n in range(12):
        client.put_item(
            TableName=TABLE,
            Item=order_item(f"order-{n:02}", 1),
            ConditionExpression=condition,
            ExpressionAttributeNames={"#ttl": "ttl"},
            ExpressionAttributeValues={":v": {"N": "1"}, ":now": {"N": "1800000000"}},
            ReturnConsumedCapacity="TOTAL",
        )
    client.put_item(
        TableName=TABLE,
        Item=order_item("order-00", 2),
        ReturnValues="ALL_OLD",
        ReturnConsumedCapacity="INDEXES",
    )
    with pytest.raises(client.exceptions.ConditionalCheckFailedException):
        client.put_item(
            TableName=TABLE,
            Item=order_item("order-00", 1),
            ConditionExpression="version < :v",
            ExpressionAttributeValues={":v": {"N": "1"}},
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    client.get_item(TableName=TABLE, Key={"orderId": {"S": "order-01"}}, ConsistentRead=True)
    client.get_item(TableName=TABLE, Key={"orderId": {"S": "no-such-order"}})
    client.get_item(
        TableName=TABLE,
        Key={"orderId": {"S": "order-01"}},
        ProjectionExpression="version, #s",
        ExpressionAttributeNames={"#s": "status"},
        ReturnConsumedCapacity="TOTAL",
    )
    client.batch_get_item(
        RequestItems={
            TABLE: {
                "Keys": [{"orderId": {"S": f"order-{n:02}"}} for n in range(14)],
                "ConsistentRead": True,
            }
        },
        ReturnConsumedCapacity="TOTAL",
    )
    client.query(
        TableName=TABLE,
        IndexName=INDEX,
        KeyConditionExpression="customerId = :c",
        ExpressionAttributeValues={":c": {"S": "customer-1"}},
        Limit=5,
        ScanIndexForward=False,
    )
    client.query(
        TableName=TABLE,
        KeyConditionExpression="orderId = :o",
        ExpressionAttributeValues={":o": {"S": "order-03"}},
        Select="COUNT",
    )
    client.scan(TableName=TABLE, Segment=1, TotalSegments=2)
    scanned = client.scan(TableName=TABLE, Limit=4)
    client.scan(
        TableName=TABLE,
        ExclusiveStartKey=scanned["LastEvaluatedKey"],
        FilterExpression="version > :v",
        ExpressionAttributeValues={":v": {"N": "1"}},
    )
    client.update_item(
        TableName=TABLE,
        Key={"orderId": {"S": "order-02"}},
        UpdateExpression="SET version = :v",
        ExpressionAttributeValues={":v": {"N": "3"}},
        ReturnValues="ALL_NEW",
    )
    client.delete_item(
        TableName=TABLE,
        Key={"orderId": {"S": "order-04"}},
        ReturnValues="ALL_OLD",
        ConditionExpression="version = :v",
        ExpressionAttributeValues={":v": {"N": "1"}},
    )
    client.batch_write_item(
        RequestItems={
            TABLE: [
                {"PutRequest": {"Item": order_item("order-20", 1)}},
                {"DeleteRequest": {"Key": {"orderId": {"S": "order-05"}}}},
            ]
        }
    )
    client.transact_write_items(
        TransactItems=[
            {"Put": {"TableName": TABLE, "Item": order_item("order-21", 1)}},
            {"Delete": {"TableName": TABLE, "Key": {"orderId": {"S": "order-06"}}}},
        ]
    )
    client.transact_get_items(
        TransactItems=[{"Get": {"TableName": TABLE, "Key": {"orderId": {"S": "order-07"}}}}]
    )
    client.describe_table(TableName=TABLE)
    client.describe_time_to_live(TableName=TABLE)
    client.list_tables()

    assert comparison.mismatches == []
    # The calls made in bulk (projection, reads, reconciliation, checks) are encoded directly;
    # the rest (DeleteItem's reply, table descriptions) may be left to moto.
    for operation in (
        "PutItem",
        "GetItem",
        "BatchGetItem",
        "Query",
        "Scan",
        "UpdateItem",
        "BatchWriteItem",
        "TransactWriteItems",
        "TransactGetItems",
    ):
        assert comparison.direct[operation] > 0, (operation, comparison.left_to_moto)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(extra=st.dictionaries(names.map(lambda n: "x" + n), attribute_values, max_size=5))
def test_any_attribute_values_are_encoded_alike(
    compared: tuple[Any, Comparison], extra: dict[str, Any]
) -> None:
    client, comparison = compared
    comparison.mismatches.clear()
    order_id = f"order-{len(extra)}"
    client.put_item(TableName=TABLE, Item=order_item(order_id, 1, extra))
    got = client.get_item(TableName=TABLE, Key={"orderId": {"S": order_id}}, ConsistentRead=True)
    client.batch_get_item(RequestItems={TABLE: {"Keys": [{"orderId": {"S": order_id}}]}})
    client.query(
        TableName=TABLE,
        KeyConditionExpression="orderId = :o",
        ExpressionAttributeValues={":o": {"S": order_id}},
    )
    client.scan(TableName=TABLE)
    assert comparison.mismatches == []
    assert comparison.direct["GetItem"] > 0
    assert comparison.direct["Scan"] > 0
    assert set(got["Item"]) == set(order_item(order_id, 1, extra))


def test_install_routes_replies_through_direct_encoding() -> None:
    moto_serialized = getattr(DynamoHandler.serialized, "moto_serialized", DynamoHandler.serialized)
    try:
        assert moto_replies.install() is True
        assert DynamoHandler.serialized.moto_serialized is moto_serialized  # type: ignore[attr-defined]
        assert moto_replies.install() is True  # a second install changes nothing
        assert DynamoHandler.serialized.moto_serialized is moto_serialized  # type: ignore[attr-defined]
    finally:
        setattr(DynamoHandler, "serialized", moto_serialized)  # noqa: B010
