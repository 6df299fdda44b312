"""The contract's comments and the validator cannot drift apart.

Every input rule lives once, in `domain/contract_rules.py`. These tests hold it to both sides:
each rule's text is in the `.proto` comment of its field (read from protoc's source info), every
field of every request message has a rule, and each rule's boundaries are the ones the
validator applies (just inside accepted, just outside refused, on that field's path).
"""

from __future__ import annotations

import importlib.resources
import math
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import descriptor_pb2
from google.protobuf.descriptor import Descriptor
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from grpc_tools import protoc  # type: ignore[import-untyped]
from uoom.orders.v1 import order_pb2, order_service_pb2

from uoom_orders import wire
from uoom_orders.api import request_parsing, status_mapping
from uoom_orders.domain import contract_rules as rules
from uoom_orders.domain import validation
from uoom_orders.domain.errors import InvalidInput
from uoom_orders.read.ports import ListScope

PROTOS = Path(__file__).resolve().parents[2] / "protos"
PACKAGE = "uoom.orders.v1"
SERVICE = order_service_pb2.DESCRIPTOR.services_by_name["OrderService"]
# Kinds of `DescriptorProto`/`FileDescriptorProto` paths in SourceCodeInfo.
_MESSAGE_TYPE, _FIELD, _SERVICE = 4, 2, 6


def _normalise(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture(scope="module")
def comments(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Each field's comment by "Message.field", and the service's by its name."""
    out = tmp_path_factory.mktemp("descriptors") / "contract.pb"
    include = str(importlib.resources.files("grpc_tools") / "_proto")
    files = sorted(str(p.relative_to(PROTOS)) for p in PROTOS.rglob("*.proto"))
    status = protoc.main(
        [
            "protoc",
            f"-I{PROTOS}",
            f"-I{include}",
            "--include_source_info",
            f"--descriptor_set_out={out}",
            *files,
        ]
    )
    assert status == 0
    found: dict[str, str] = {}
    for file in descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes()).file:
        for location in file.source_code_info.location:
            text = _normalise(location.leading_comments + " " + location.trailing_comments)
            path = list(location.path)
            if len(path) == 4 and path[0] == _MESSAGE_TYPE and path[2] == _FIELD:
                message = file.message_type[path[1]]
                found[f"{message.name}.{message.field[path[3]].name}"] = text
            elif len(path) == 2 and path[0] == _SERVICE:
                found[file.service[path[1]].name] = text
    return found


def _request_fields() -> set[str]:
    """Every field of the service's request messages and of the messages inside them."""
    fields: set[str] = set()
    pending: list[Descriptor] = [method.input_type for method in SERVICE.methods]
    seen: set[str] = set()
    while pending:
        message = pending.pop()
        if message.full_name in seen or not message.full_name.startswith(PACKAGE):
            continue
        seen.add(message.full_name)
        for field in message.fields:
            fields.add(f"{message.name}.{field.name}")
            if field.message_type is not None:
                pending.append(field.message_type)
    return fields


def test_every_field_of_every_request_has_a_rule() -> None:
    assert set(rules.FIELD_RULES) == _request_fields()


@pytest.mark.parametrize("field", sorted(rules.FIELD_RULES))
def test_each_rule_is_stated_in_its_fields_comment(field: str, comments: dict[str, str]) -> None:
    assert _normalise(rules.FIELD_RULES[field].doc) in comments[field]


def test_the_service_comment_states_the_id_spelling_and_the_error_bounds(
    comments: dict[str, str],
) -> None:
    text = comments["OrderService"]
    assert _normalise(rules.UUID_SPELLINGS_DOC) in text
    assert f"at most {status_mapping.MAX_FIELD_VIOLATIONS} of them" in text
    assert f"at most {validation.ECHO_MAX_CHARS} characters long" in text
    assert f"under {status_mapping.ERROR_BUDGET_BYTES // 1024} KiB" in text


# --- the boundaries the validator applies are the rules' -----------------------------------
def _valid_create() -> order_service_pb2.CreateOrderRequest:
    return order_service_pb2.CreateOrderRequest(
        request_id=str(uuid.uuid4()),
        customer_id=str(uuid.uuid4()),
        restaurant_id=str(uuid.uuid4()),
        items=[
            order_pb2.OrderItem(
                item_id="pizza",
                name="Pizza",
                quantity=1,
                unit_price=order_pb2.Money(currency_code="USD", amount_minor=1599),
            )
        ],
        delivery_location=order_pb2.DeliveryLocation(
            latitude=1, longitude=1, address="Main St 1", city="Berlin", postal_code="10115"
        ),
    )


Outcome = object  # what the validator made of the value (the parsed command or query)
Probe = Callable[[object], Outcome]


def _create(set_field: Callable[[Message, object], None]) -> Probe:
    def probe(value: object) -> Outcome:
        request = _valid_create()
        set_field(request, value)
        return request_parsing.create_order(request)

    return probe


def _set(path: str) -> Callable[[Message, object], None]:
    """Sets the field at `path` (e.g. "items[0].unit_price.amount_minor"); None clears it."""

    def set_field(request: Message, value: object) -> None:
        *parents, name = path.split(".")
        target: Any = request
        for parent in parents:
            target = target.items[0] if parent == "items[0]" else getattr(target, parent)
        if value is None:
            target.ClearField(name)
        elif isinstance(value, list):
            field = getattr(target, name)
            del field[:]
            field.extend(value)
        elif isinstance(value, Message):
            getattr(target, name).CopyFrom(value)
        else:
            setattr(target, name, value)

    return set_field


def _update(field: str) -> Probe:
    def probe(value: object) -> Outcome:
        request = order_service_pb2.UpdateOrderStatusRequest(
            request_id=str(uuid.uuid4()),
            order_id=str(uuid.uuid4()),
            status=order_pb2.ORDER_STATUS_CONFIRMED,
        )
        _set(field)(request, value)
        return request_parsing.update_order_status(request)

    return probe


def _get(field: str) -> Probe:
    def probe(value: object) -> Outcome:
        args: dict[str, object] = {"order_id": str(uuid.uuid4()), "min_version": 0, field: value}
        return request_parsing.order_id_and_min_version(**args)  # type: ignore[arg-type]

    return probe


def _watch(field: str) -> Probe:
    def probe(value: object) -> Outcome:
        args: dict[str, object] = {"order_id": str(uuid.uuid4()), "after_version": 0, field: value}
        return request_parsing.order_id_and_min_version(
            args["order_id"],  # type: ignore[arg-type]
            args["after_version"],  # type: ignore[arg-type]
            version_field="after_version",
        )

    return probe


def _batch(value: object) -> Outcome:
    return request_parsing.batch_ids(value)  # type: ignore[arg-type]


def _list(scope: ListScope, owner: str, field: str) -> Probe:
    def probe(value: object) -> Outcome:
        args: dict[str, object] = {
            "owner_id": str(uuid.uuid4()),
            "page_size": 0,
            "status_filter": 0,
        }
        args["owner_id" if field == owner else field] = value
        return request_parsing.list_query(scope, owner, **args)  # type: ignore[arg-type]

    return probe


# The field each rule belongs to, the validator call that checks it, and the violation path.
PROBES: dict[str, tuple[Probe, str]] = {
    "CreateOrderRequest.request_id": (_create(_set("request_id")), "request_id"),
    "CreateOrderRequest.customer_id": (_create(_set("customer_id")), "customer_id"),
    "CreateOrderRequest.restaurant_id": (_create(_set("restaurant_id")), "restaurant_id"),
    "CreateOrderRequest.channel_id": (_create(_set("channel_id")), "channel_id"),
    "CreateOrderRequest.items": (_create(_set("items")), "items"),
    "CreateOrderRequest.delivery_location": (
        _create(_set("delivery_location")),
        "delivery_location",
    ),
    "CreateOrderRequest.estimated_delivery_time": (
        _create(_set("estimated_delivery_time")),
        "estimated_delivery_time",
    ),
    "OrderItem.item_id": (_create(_set("items[0].item_id")), "items[0].item_id"),
    "OrderItem.name": (_create(_set("items[0].name")), "items[0].name"),
    "OrderItem.quantity": (_create(_set("items[0].quantity")), "items[0].quantity"),
    "OrderItem.unit_price": (_create(_set("items[0].unit_price")), "items[0].unit_price"),
    "OrderItem.total_price": (_create(_set("items[0].total_price")), "items[0].total_price"),
    "Money.currency_code": (
        _create(_set("items[0].unit_price.currency_code")),
        "items[0].unit_price.currency_code",
    ),
    "Money.amount_minor": (
        _create(_set("items[0].unit_price.amount_minor")),
        "items[0].unit_price.amount_minor",
    ),
    "DeliveryLocation.latitude": (
        _create(_set("delivery_location.latitude")),
        "delivery_location.latitude",
    ),
    "DeliveryLocation.longitude": (
        _create(_set("delivery_location.longitude")),
        "delivery_location.longitude",
    ),
    "DeliveryLocation.address": (
        _create(_set("delivery_location.address")),
        "delivery_location.address",
    ),
    "DeliveryLocation.city": (_create(_set("delivery_location.city")), "delivery_location.city"),
    "DeliveryLocation.postal_code": (
        _create(_set("delivery_location.postal_code")),
        "delivery_location.postal_code",
    ),
    "UpdateOrderStatusRequest.request_id": (_update("request_id"), "request_id"),
    "UpdateOrderStatusRequest.order_id": (_update("order_id"), "order_id"),
    "UpdateOrderStatusRequest.status": (_update("status"), "status"),
    "UpdateOrderStatusRequest.expected_version": (_update("expected_version"), "expected_version"),
    "UpdateOrderStatusRequest.estimated_delivery_time": (
        _update("estimated_delivery_time"),
        "estimated_delivery_time",
    ),
    "GetOrderStatusRequest.order_id": (_get("order_id"), "order_id"),
    "GetOrderStatusRequest.min_version": (_get("min_version"), "min_version"),
    "BatchGetOrderStatusRequest.order_ids": (_batch, "order_ids"),
    "GetOrderDetailsRequest.order_id": (_get("order_id"), "order_id"),
    "GetOrderDetailsRequest.min_version": (_get("min_version"), "min_version"),
    "ListOrdersByCustomerRequest.customer_id": (
        _list(ListScope.CUSTOMER, "customer_id", "customer_id"),
        "customer_id",
    ),
    "ListOrdersByCustomerRequest.page_size": (
        _list(ListScope.CUSTOMER, "customer_id", "page_size"),
        "page_size",
    ),
    "ListOrdersByCustomerRequest.status_filter": (
        _list(ListScope.CUSTOMER, "customer_id", "status_filter"),
        "status_filter",
    ),
    "ListOrdersByRestaurantRequest.restaurant_id": (
        _list(ListScope.RESTAURANT, "restaurant_id", "restaurant_id"),
        "restaurant_id",
    ),
    "ListOrdersByRestaurantRequest.page_size": (
        _list(ListScope.RESTAURANT, "restaurant_id", "page_size"),
        "page_size",
    ),
    "ListOrdersByRestaurantRequest.status_filter": (
        _list(ListScope.RESTAURANT, "restaurant_id", "status_filter"),
        "status_filter",
    ),
    "WatchOrderStatusRequest.order_id": (_watch("order_id"), "order_id"),
    "WatchOrderStatusRequest.after_version": (_watch("after_version"), "after_version"),
    # The board's request is parsed as the restaurant's list query.
    "WatchRestaurantOrdersRequest.restaurant_id": (
        _list(ListScope.RESTAURANT, "restaurant_id", "restaurant_id"),
        "restaurant_id",
    ),
    "WatchRestaurantOrdersRequest.status_filter": (
        _list(ListScope.RESTAURANT, "restaurant_id", "status_filter"),
        "status_filter",
    ),
}
# Page and resume tokens are checked against the token's HMAC (tests/unit/test_page_token.py
# and the integration tests), not by the request validator.
NOT_PROBED = {
    "ListOrdersByCustomerRequest.page_token",
    "ListOrdersByRestaurantRequest.page_token",
    "WatchRestaurantOrdersRequest.resume_token",
}

CANONICAL = "550e8400-e29b-41d4-a716-446655440000"
OTHER_SPELLINGS = [
    CANONICAL.upper(),
    "{" + CANONICAL + "}",
    "urn:uuid:" + CANONICAL,
    CANONICAL.replace("-", ""),
    " " + CANONICAL,
    CANONICAL + "\n",
    CANONICAL.replace("5", "\uff15"),  # full-width digit five
    CANONICAL.replace("-", "_"),
    "nope",
]


def _future(**delta: float) -> object:
    return wire.timestamp(datetime.now(UTC) + timedelta(**delta))


def _cases(rule: rules.Rule) -> tuple[list[object], list[object]]:
    """Values the rule accepts and values it refuses, at its boundaries."""
    match rule:
        case rules.UuidField():
            return [CANONICAL], ["", *OTHER_SPELLINGS]
        case rules.TextField(max_len=n):
            return ["x", "é" * n, "  padded  "], ["", "   ", "x" * (n + 1), "a\x07b", "a\x85b"]
        case rules.IntRange(low=low, high=high):
            return [low, high], [low - 1, high + 1]
        case rules.Coordinate(limit=limit):
            return (
                [-limit, limit, 0.0, 1e-300],
                [math.nextafter(limit, math.inf), -limit - 1, math.nan, math.inf],
            )
        case rules.CurrencyCode():
            return ["USD"], ["usd", "US", "USDX", "\uff35SD", ""]
        case rules.ChannelId(max_len=n):
            return ["", "a" * n, "web.app_1-x"], ["a" * (n + 1), "a b", "caf\u00e9"]
        case rules.ItemList(max_items=n):
            item = _valid_create().items[0]
            return [[item] * n], [[], [item] * (n + 1)]
        case rules.IdList(max_ids=n):
            return [[CANONICAL] * n], [[], [CANONICAL] * (n + 1), *([s] for s in OTHER_SPELLINGS)]
        case rules.FutureTime():
            past = wire.timestamp(datetime.now(UTC) - timedelta(seconds=1))
            return (
                [None, _future(days=1)],
                [past, Timestamp(seconds=253_402_300_800), Timestamp(seconds=1, nanos=-1)],
            )
        case rules.NonNegative():
            return [0, 1], [-1]
        case rules.StatusRequired():
            return [order_pb2.ORDER_STATUS_CANCELLED], [0, 99]
        case rules.StatusFilter():
            return [0, order_pb2.ORDER_STATUS_DELIVERED], [99, -1]
        case rules.PageSize():
            return [0, 1, rule.maximum + 1], [-1]
        case rules.Required():
            return [], [None]
        case rules.OutputOnly():
            return [order_pb2.Money(currency_code="???", amount_minor=-5)], []
    raise AssertionError(f"no cases for {rule!r}")


def test_every_rule_is_probed() -> None:
    assert set(PROBES) | NOT_PROBED == set(rules.FIELD_RULES)


@pytest.mark.parametrize("field", sorted(PROBES))
def test_the_validator_applies_each_rule_at_its_boundaries(field: str) -> None:
    probe, path = PROBES[field]
    accepted, refused = _cases(rules.FIELD_RULES[field])
    for value in accepted:
        probe(value)  # raises InvalidInput if refused
    for value in refused:
        with pytest.raises(InvalidInput) as raised:
            probe(value)
        paths = {v.field for v in raised.value.violations}
        assert any(p == path or re.fullmatch(rf"{re.escape(path)}\[\d+\]", p) for p in paths), (
            f"{field}={value!r}: violations on {paths}, not {path}"
        )


def test_page_size_maps_as_documented() -> None:
    probe, _ = PROBES["ListOrdersByCustomerRequest.page_size"]
    rule = rules.PAGE_SIZE
    sizes = {n: probe(n).limit for n in (0, 1, rule.maximum, rule.maximum + 1)}  # type: ignore[attr-defined]
    assert sizes == {
        0: rule.default,
        1: 1,
        rule.maximum: rule.maximum,
        rule.maximum + 1: rule.maximum,
    }


def test_trimmed_text_and_tiny_coordinates_are_stored_as_documented() -> None:
    request = _valid_create()
    request.items[0].name = "  Pizza  "
    request.delivery_location.latitude = 1e-300
    request.delivery_location.longitude = -(rules.COORDINATE_ZERO_BELOW / 2)
    command = request_parsing.create_order(request)
    assert command.items[0].name == "Pizza"
    assert command.delivery_location.latitude == 0.0
    assert command.delivery_location.longitude == 0.0
    assert math.copysign(1, command.delivery_location.longitude) == 1  # not -0.0
    request.delivery_location.latitude = rules.COORDINATE_ZERO_BELOW
    assert request_parsing.create_order(request).delivery_location.latitude == 1e-9
