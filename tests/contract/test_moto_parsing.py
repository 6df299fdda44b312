"""The local endpoint's compiled request parsing (uoom_orders_devstack/moto_parsing.py) gives
moto's handler the parameters moto's own parser gives it: for the bodies botocore sends for
the service's calls (random attribute values of every type, binary ones included), for
malformed bodies, and for every DynamoDB operation moto knows."""

from __future__ import annotations

import base64
import json
from typing import Any

import botocore.session
import pytest
from botocore.serialize import create_serializer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto.core.request import Request
from moto.core.responses import BaseResponse
from moto.core.utils import get_service_model
from moto.dynamodb.responses import DynamoHandler
from werkzeug.test import EnvironBuilder

from tests.support.dynamodb_values import attribute_values, names, order_item
from uoom_orders.dynamodb.tables import create_table_kwargs, time_to_live_kwargs
from uoom_orders_devstack import moto_parsing

_AUTH = (
    "AWS4-HMAC-SHA256 Credential=testing/20000101/us-east-1/dynamodb/aws4_request,"
    " SignedHeaders=host, Signature=0"
)
_MODEL = botocore.session.get_session().get_service_model("dynamodb")
_SERIALIZE = create_serializer("json", include_validation=False)

_JSON = "application/x-amz-json-1.0"

Outcome = tuple[str, Any]


def _body(action: str, params: dict[str, Any]) -> bytes:
    """The body botocore sends for this call."""
    request = _SERIALIZE.serialize_to_request(params, _MODEL.operation_model(action))
    body = request["body"]
    return body if isinstance(body, bytes) else body.encode()


def _parsed(
    action: str, body: bytes, *, compiled: bool, content_type: str, fallback: bool = True
) -> Outcome:
    """What moto's DynamoDB handler holds as the request's parameters after its setup
    (`fallback` False: with moto's own parser out of reach of the compiled one)."""
    environ = EnvironBuilder(
        method="POST",
        path="/",
        data=body,
        headers=[
            ("X-Amz-Target", f"DynamoDB_20120810.{action}"),
            ("Content-Type", content_type),
            ("Authorization", _AUTH),
        ],
    ).get_environ()
    request = Request(environ)
    handler = DynamoHandler()
    with pytest.MonkeyPatch.context() as patch:
        own = moto_parsing.parse_parameters if compiled else BaseResponse.parse_parameters
        patch.setattr(DynamoHandler, "parse_parameters", own)
        if not fallback:
            patch.setattr(BaseResponse, "parse_parameters", _not_called)
        try:
            handler.setup_class(request, request.raw_url, dict(request.headers))
        except Exception as error:
            return "error", (type(error), str(error))
    return "ok", handler.params


def _not_called(*_: Any) -> None:
    raise AssertionError("moto's own parser was called")


def _same(action: str, body: bytes, content_type: str = _JSON) -> Outcome:
    by_moto = _parsed(action, body, compiled=False, content_type=content_type)
    compiled = _parsed(action, body, compiled=True, content_type=content_type)
    assert compiled == by_moto
    # Equal and of the same types all the way down (1 == 1.0 == True in Python).
    assert repr(compiled) == repr(by_moto)
    return compiled


def _service_calls(item: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Every kind of call the service and its tools make, around `item`."""
    table = "parsing-order-status"
    key = {"orderId": item["orderId"]}
    return [
        (
            "PutItem",
            {
                "TableName": table,
                "Item": item,
                "ConditionExpression": "attribute_not_exists(orderId) OR version < :v",
                "ExpressionAttributeNames": {"#ttl": "ttl"},
                "ExpressionAttributeValues": {":v": {"N": "2"}, ":now": {"N": "1900000000"}},
                "ReturnConsumedCapacity": "TOTAL",
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            },
        ),
        ("GetItem", {"TableName": table, "Key": key, "ConsistentRead": True}),
        (
            "BatchGetItem",
            {"RequestItems": {table: {"Keys": [key, key], "ConsistentRead": False}}},
        ),
        (
            "Query",
            {
                "TableName": table,
                "IndexName": "customerId-updatedAt-index",
                "KeyConditionExpression": "customerId = :c",
                "ExpressionAttributeValues": {":c": {"S": "customer-1"}},
                "ScanIndexForward": False,
                "Limit": 25,
                "ExclusiveStartKey": {**key, "updatedAt": {"S": "2026"}},
            },
        ),
        ("Scan", {"TableName": table, "Segment": 1, "TotalSegments": 4, "Limit": 7}),
        ("DeleteItem", {"TableName": table, "Key": key, "ReturnValues": "ALL_OLD"}),
        (
            "TransactWriteItems",
            {
                "TransactItems": [
                    {"Put": {"TableName": table, "Item": item}},
                    {
                        "ConditionCheck": {
                            "TableName": table,
                            "Key": key,
                            "ConditionExpression": "attribute_exists(orderId)",
                        }
                    },
                ]
            },
        ),
        ("BatchWriteItem", {"RequestItems": {table: [{"PutRequest": {"Item": item}}]}}),
        ("CreateTable", create_table_kwargs(table)),
        ("UpdateTimeToLive", time_to_live_kwargs(table)),
        ("DescribeTable", {"TableName": table}),
        ("ListTables", {"Limit": 10}),
    ]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(extra=st.dictionaries(names.map(lambda n: "x" + n), attribute_values, max_size=5))
def test_the_service_s_calls_are_parsed_as_moto_parses_them(extra: dict[str, Any]) -> None:
    for action, params in _service_calls(order_item("o-1", 3, extra)):
        body = _body(action, params)
        expected = _same(action, body)
        assert expected[0] == "ok", action
        # Parsed by the compiled parse alone, not handed on to moto's.
        alone = _parsed(action, body, compiled=True, content_type=_JSON, fallback=False)
        assert alone == expected


def test_binary_values_are_decoded_and_numbers_cast() -> None:
    item = order_item("o-1", 1, {"xb": {"B": b"\x00\xff"}, "xs": {"BS": [b"a", b"b"]}})
    _, params = _same("PutItem", _body("PutItem", {"TableName": "t", "Item": item}))
    assert params["Item"]["xb"] == {"B": b"\x00\xff"}
    assert params["Item"]["xs"] == {"BS": [b"a", b"b"]}
    _, scan = _same("Scan", _body("Scan", {"TableName": "t", "Segment": 1, "TotalSegments": 2}))
    assert scan["Segment"] == 1


_MALFORMED: list[tuple[str, bytes]] = [
    ("PutItem", b""),
    ("PutItem", b"not json"),
    ("PutItem", b"[1, 2]"),
    ("PutItem", b"null"),
    ("PutItem", b'{"TableName": "t", "Item": null}'),
    ("PutItem", b'{"TableName": "t", "Item": "x"}'),
    ("PutItem", b'{"TableName": "t", "Item": {"a": null, "b": {"S": null, "N": "1"}}}'),
    ("PutItem", b'{"TableName": "t", "Item": {"a": {"B": "***"}}}'),
    ("PutItem", b'{"TableName": "t", "Item": {"a": {"L": {"x": 1}}}}'),
    ("PutItem", b'{"TableName": "t", "Item": {"a": {"L": [null]}}}'),
    ("PutItem", b'{"TableName": "t", "Unknown": 1, "Item": {"a": {"Q": "x", "S": 1}}}'),
    ("PutItem", '{"TableName": "t\u00e9", "Item": {"\u00e9": {"S": "\u2603"}}}'.encode()),
    ("PutItem", b'{"TableName": "t", "Item": {"a": {"S": "\xff"}}}'),
    ("Scan", b'{"TableName": "t", "Segment": "2", "Limit": 1.5}'),
    ("Scan", b'{"TableName": "t", "Segment": "two"}'),
    ("Scan", b'{"TableName": "t", "Segment": true, "ConsistentRead": "yes"}'),
    ("Query", b'{"TableName": "t", "ExclusiveStartKey": [1]}'),
    ("BatchGetItem", b'{"RequestItems": {"t": {"Keys": [{"k": {"S": "1"}}, null]}}}'),
    ("NoSuchOperation", b'{"TableName": "t"}'),
    ("ListTables", b"{}"),
]


@pytest.mark.parametrize(("action", "body"), _MALFORMED)
def test_malformed_bodies_get_what_moto_gives_them(action: str, body: bytes) -> None:
    _same(action, body)


@pytest.mark.parametrize("content_type", ["application/json", "application/x-amz-json-1.1", ""])
def test_other_content_types_get_what_moto_gives_them(content_type: str) -> None:
    _same("GetItem", b'{"TableName": "t", "Key": {"k": {"S": "1"}}}', content_type)


def test_every_operation_moto_models_has_a_compiled_parse() -> None:
    model = get_service_model("dynamodb")
    missing = [
        name
        for name in model.operation_names
        if model.operation_model(name).input_shape is not None
        and moto_parsing._operation_parse(model, name) is None
    ]
    assert missing == []


def test_recursive_values_are_parsed_at_any_depth() -> None:
    value: dict[str, Any] = {"B": base64.b64encode(b"deep").decode()}
    for depth in range(30):
        value = {"M": {f"m{depth}": value}} if depth % 2 else {"L": [value, {"N": "1"}]}
    body = json.dumps({"TableName": "t", "Item": {"k": {"S": "1"}, "deep": value}}).encode()
    _, params = _same("PutItem", body)
    assert "deep" in params["Item"]


def test_install_puts_it_in_moto_s_handler() -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(DynamoHandler, "parse_parameters", BaseResponse.parse_parameters)
        assert moto_parsing.install() is True
        assert DynamoHandler.parse_parameters is moto_parsing.parse_parameters
        assert moto_parsing.install() is True
