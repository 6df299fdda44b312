"""The local endpoint's direct WSGI path to moto's DynamoDB handler
(uoom_orders_devstack/moto_direct.py) answers what moto's own Flask app answers: status, body
and headers, for calls that succeed, fail, or are not DynamoDB calls at all."""

from __future__ import annotations

import json
from typing import Any

import pytest
from moto.moto_server import werkzeug_app
from werkzeug.test import Client

from uoom_orders.dynamodb.tables import create_table_kwargs
from uoom_orders_devstack.moto_direct import direct_app

TABLE = "direct-contract-order-status"
_AUTH = (
    "AWS4-HMAC-SHA256 Credential=testing/20000101/us-east-1/dynamodb/aws4_request,"
    " SignedHeaders=host, Signature=0"
)
# Differ between any two answers, whoever gives them.
_PER_CALL_HEADERS = {"date", "x-amzn-requestid", "x-amz-id-2"}


@pytest.fixture(scope="module")
def clients() -> tuple[Client, Client]:
    # As the local endpoint builds it (moto_dynamodb.py: no CORS, not in debug mode).
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(werkzeug_app, "DISABLE_GLOBAL_CORS", True)
        flask_app = werkzeug_app.create_backend_app("dynamodb")
    flask_app.debug = False
    return Client(flask_app), Client(direct_app(flask_app))


def _call(
    client: Client, target: str | None, body: Any, path: str = "/"
) -> tuple[int, Any, dict[str, str]]:
    headers = {"Content-Type": "application/x-amz-json-1.0", "Authorization": _AUTH}
    if target is not None:
        headers["X-Amz-Target"] = f"DynamoDB_20120810.{target}"
    response = client.post(path, data=json.dumps(body), headers=headers)
    text = response.get_data(as_text=True)
    try:
        parsed: Any = json.loads(text)
    except ValueError:
        parsed = text
    kept = {k.lower(): v for k, v in response.headers.items() if k.lower() not in _PER_CALL_HEADERS}
    return response.status_code, parsed, kept


def _item(order_id: str, version: int) -> dict[str, Any]:
    return {
        "orderId": {"S": order_id},
        "customerId": {"S": "c-1"},
        "restaurantId": {"S": "r-1"},
        "updatedAt": {"S": "2026-11-30T12:00:00.000000Z"},
        "version": {"N": str(version)},
        "lines": {"L": [{"M": {"n": {"N": "2"}, "name": {"S": "pizza"}}}]},
    }


def _same(clients: tuple[Client, Client], target: str | None, body: Any, path: str = "/") -> Any:
    by_flask, direct = (_call(c, target, body, path) for c in clients)
    assert direct == by_flask
    return by_flask


def test_reads_and_refused_writes_are_answered_alike(clients: tuple[Client, Client]) -> None:
    flask, _ = clients
    kwargs = create_table_kwargs(TABLE)
    status, _, _ = _call(flask, "CreateTable", kwargs)
    assert status == 200
    for n in range(5):
        assert _call(flask, "PutItem", {"TableName": TABLE, "Item": _item(f"o-{n}", 2)})[0] == 200

    assert (
        _same(clients, "GetItem", {"TableName": TABLE, "Key": {"orderId": {"S": "o-1"}}})[0] == 200
    )
    _same(clients, "GetItem", {"TableName": TABLE, "Key": {"orderId": {"S": "none"}}})
    _same(
        clients,
        "BatchGetItem",
        {"RequestItems": {TABLE: {"Keys": [{"orderId": {"S": f"o-{n}"}} for n in range(7)]}}},
    )
    _same(
        clients,
        "Query",
        {
            "TableName": TABLE,
            "IndexName": "CustomerStatusIndex",
            "KeyConditionExpression": "customerId = :c",
            "ExpressionAttributeValues": {":c": {"S": "c-1"}},
            "Limit": 2,
        },
    )
    _same(clients, "Scan", {"TableName": TABLE, "Limit": 3})
    _same(clients, "DescribeTable", {"TableName": TABLE})
    _same(clients, "ListTables", {})
    # Refused: the condition, a missing table, a malformed request, an unknown operation.
    refused = _same(
        clients,
        "PutItem",
        {
            "TableName": TABLE,
            "Item": _item("o-1", 1),
            "ConditionExpression": "version < :v",
            "ExpressionAttributeValues": {":v": {"N": "1"}},
        },
    )
    assert refused[0] == 400
    assert "ConditionalCheckFailed" in json.dumps(refused[1])
    assert (
        _same(clients, "GetItem", {"TableName": "nope", "Key": {"orderId": {"S": "x"}}})[0] == 400
    )
    assert (
        _same(clients, "PutItem", {"TableName": TABLE, "Item": {"version": {"N": "1"}}})[0] == 400
    )
    _same(clients, "NoSuchOperation", {})
    _same(clients, None, {})  # no X-Amz-Target: not a DynamoDB call
    _same(clients, "ListTables", {}, path="/elsewhere")


def test_writes_are_answered_alike(clients: tuple[Client, Client]) -> None:
    flask, direct = clients
    for name, client in (("flask", flask), ("direct", direct)):
        assert _call(client, "CreateTable", create_table_kwargs(f"{TABLE}-{name}"))[0] == 200
    answers = [
        _call(
            client,
            "PutItem",
            {
                "TableName": f"{TABLE}-{name}",
                "Item": _item("w-1", 1),
                "ConditionExpression": "attribute_not_exists(orderId)",
                "ReturnConsumedCapacity": "TOTAL",
            },
        )
        for name, client in (("flask", flask), ("direct", direct))
    ]
    (status, by_flask, flask_headers), (direct_status, by_direct, direct_headers) = answers
    assert status == direct_status == 200
    assert by_flask["ConsumedCapacity"]["TableName"] == f"{TABLE}-flask"
    assert by_direct["ConsumedCapacity"]["TableName"] == f"{TABLE}-direct"
    flask_headers.pop("x-amz-crc32")
    direct_headers.pop("x-amz-crc32")
    flask_headers.pop("content-length")
    direct_headers.pop("content-length")
    assert flask_headers == direct_headers


def test_the_cached_method_names_are_moto_s_own(monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.core import responses, utils
    from moto.dynamodb.responses import DynamoHandler

    from uoom_orders_devstack.moto_direct import cache_method_names

    # Put back after the test.
    moto_s = getattr(responses, "method_names_from_class")  # noqa: B009 (not exported)
    monkeypatch.setattr(responses, "method_names_from_class", moto_s)
    assert cache_method_names()
    assert cache_method_names()  # a second install changes nothing
    cached = getattr(responses, "method_names_from_class")  # noqa: B009
    assert cached is not utils.method_names_from_class
    # The same list moto works out on each request, once per class.
    assert cached(DynamoHandler) == utils.method_names_from_class(DynamoHandler)
    assert "put_item" in cached(DynamoHandler)
    assert cached(DynamoHandler) is cached(DynamoHandler)
