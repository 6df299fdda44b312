"""Input validation: every bad field reported at once, with its path."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from uoom.orders.v1 import order_pb2, order_service_pb2

from uoom_orders import wire
from uoom_orders.api import request_parsing
from uoom_orders.domain import validation
from uoom_orders.domain.errors import InvalidInput
from uoom_orders.domain.order import OrderStatus
from uoom_orders.read.ports import ListScope


def valid_create(**overrides: object) -> order_service_pb2.CreateOrderRequest:
    request = order_service_pb2.CreateOrderRequest(
        request_id=str(uuid.uuid4()),
        customer_id=str(uuid.uuid4()),
        restaurant_id=str(uuid.uuid4()),
        items=[
            order_pb2.OrderItem(
                item_id="pizza-margherita",
                name="Pizza Margherita",
                quantity=1,
                unit_price=order_pb2.Money(currency_code="USD", amount_minor=1599),
            )
        ],
        delivery_location=order_pb2.DeliveryLocation(
            latitude=40.7128, longitude=-74.006, address="123 Main St", city="NYC", postal_code="1"
        ),
    )
    for name, value in overrides.items():
        if isinstance(value, list):
            request.ClearField(name)  # type: ignore[arg-type]
            getattr(request, name).extend(value)
        else:
            setattr(request, name, value)
    return request


def fields_of(error: pytest.ExceptionInfo[InvalidInput]) -> set[str]:
    return {v.field for v in error.value.violations}


def test_a_valid_request_becomes_a_command() -> None:
    command = request_parsing.create_order(valid_create())
    assert command.channel_id == "default-channel"
    assert command.currency_code == "USD"
    assert command.items[0].unit_price_minor == 1599


def test_the_fingerprint_ignores_request_id_and_sees_content() -> None:
    a = request_parsing.create_order(valid_create(customer_id=str(uuid.UUID(int=1))))
    b = request_parsing.create_order(valid_create(customer_id=str(uuid.UUID(int=1))))
    c = request_parsing.create_order(valid_create(customer_id=str(uuid.UUID(int=2))))
    # restaurant ids differ per call, so set them equal for a and b
    request = valid_create()
    first = request_parsing.create_order(request)
    request.request_id = str(uuid.uuid4())
    second = request_parsing.create_order(request)
    assert first.fingerprint == second.fingerprint
    assert a.fingerprint != c.fingerprint
    assert a.fingerprint != b.fingerprint  # restaurant_id differs


def test_every_violation_is_reported_at_once() -> None:
    bad_item = order_pb2.OrderItem(
        item_id="",
        name="x" * 201,
        quantity=0,
        unit_price=order_pb2.Money(currency_code="usd", amount_minor=-1),
    )
    request = valid_create(
        request_id="not-a-uuid", customer_id="", channel_id="bad channel!", items=[bad_item]
    )
    request.delivery_location.latitude = 91
    request.delivery_location.longitude = float("nan")
    with pytest.raises(InvalidInput) as raised:
        request_parsing.create_order(request)
    assert fields_of(raised) == {
        "request_id",
        "customer_id",
        "channel_id",
        "items[0].item_id",
        "items[0].name",
        "items[0].quantity",
        "items[0].unit_price.currency_code",
        "items[0].unit_price.amount_minor",
        "delivery_location.latitude",
        "delivery_location.longitude",
    }


def test_items_must_exist_share_one_currency_and_be_bounded() -> None:
    with pytest.raises(InvalidInput) as raised:
        request_parsing.create_order(valid_create(items=[]))
    assert fields_of(raised) == {"items"}

    item = valid_create().items[0]
    euro = order_pb2.OrderItem()
    euro.CopyFrom(item)
    euro.unit_price.currency_code = "EUR"
    with pytest.raises(InvalidInput) as raised:
        request_parsing.create_order(valid_create(items=[item, euro]))
    assert fields_of(raised) == {"items[1].unit_price.currency_code"}

    with pytest.raises(InvalidInput) as raised:
        request_parsing.create_order(valid_create(items=[item] * 101))
    assert fields_of(raised) == {"items"}


def test_missing_location_and_past_estimate_are_invalid() -> None:
    request = valid_create()
    request.ClearField("delivery_location")
    request.estimated_delivery_time.CopyFrom(
        wire.timestamp(datetime.now(UTC) - timedelta(minutes=1))
    )
    with pytest.raises(InvalidInput) as raised:
        request_parsing.create_order(request)
    assert fields_of(raised) == {"delivery_location", "estimated_delivery_time"}


def test_update_needs_a_known_status_and_a_non_negative_version() -> None:
    request = order_service_pb2.UpdateOrderStatusRequest(
        request_id=str(uuid.uuid4()), order_id=str(uuid.uuid4()), expected_version=-1
    )
    with pytest.raises(InvalidInput) as raised:
        request_parsing.update_order_status(request)
    assert fields_of(raised) == {"status", "expected_version"}
    request.status = order_pb2.ORDER_STATUS_CONFIRMED
    request.expected_version = 0
    command = request_parsing.update_order_status(request)
    assert command.status is OrderStatus.CONFIRMED
    assert command.expected_version is None


@pytest.mark.parametrize(
    ("page_size", "expected"), [(0, 20), (1, 1), (100, 100), (101, 100), (10_000, 100)]
)
def test_page_size_follows_aip_158(page_size: int, expected: int) -> None:
    query = request_parsing.list_query(
        ListScope.CUSTOMER, "customer_id", str(uuid.uuid4()), page_size, 0
    )
    assert query.limit == expected


def test_negative_page_size_is_invalid() -> None:
    with pytest.raises(InvalidInput) as raised:
        request_parsing.list_query(ListScope.CUSTOMER, "customer_id", "x", -1, 99)
    assert fields_of(raised) == {"customer_id", "page_size", "status_filter"}


def test_batch_ids_are_bounded_and_each_checked() -> None:
    with pytest.raises(InvalidInput) as raised:
        request_parsing.batch_ids([])
    assert fields_of(raised) == {"order_ids"}
    with pytest.raises(InvalidInput) as raised:
        request_parsing.batch_ids([str(uuid.uuid4())] * 101)
    assert fields_of(raised) == {"order_ids"}
    with pytest.raises(InvalidInput) as raised:
        request_parsing.batch_ids([str(uuid.uuid4()), "nope"])
    assert fields_of(raised) == {"order_ids[1]"}


def test_ids_have_one_spelling_and_other_spellings_are_told_the_canonical_one() -> None:
    canonical = str(uuid.uuid4())
    for spelling in (canonical.upper(), "{" + canonical + "}", "urn:uuid:" + canonical):
        with pytest.raises(InvalidInput) as raised:
            request_parsing.order_id_and_min_version(spelling, 0)
        (violation,) = raised.value.violations
        assert violation.field == "order_id"
        assert "canonical form" in violation.description
    with pytest.raises(InvalidInput) as raised:
        request_parsing.batch_ids([canonical, canonical.replace("4", "\uff14")])  # v4: has a 4
    assert fields_of(raised) == {"order_ids[1]"}
    assert request_parsing.batch_ids([canonical]) == [uuid.UUID(canonical)]


def test_a_callers_value_is_quoted_short_and_in_printable_ascii() -> None:
    assert validation.echo("USD") == "'USD'"
    assert validation.echo("caf\u00e9\x00") == "'caf\\xe9\\x00'"
    huge = validation.echo("A" * (1024 * 1024))
    assert huge == "'" + "A" * validation.ECHO_MAX_CHARS + "'... (1048576 characters)"


def test_a_huge_currency_code_costs_a_short_description() -> None:
    # The case: a 1 MiB currency code echoed into the error's metadata, three times.
    item = valid_create().items[0]
    huge = order_pb2.OrderItem()
    huge.CopyFrom(item)
    huge.unit_price.currency_code = "X" * (1024 * 1024)
    with pytest.raises(InvalidInput) as raised:
        request_parsing.create_order(valid_create(items=[item, huge]))
    assert fields_of(raised) == {"items[1].unit_price.currency_code"}
    assert max(len(v.description) for v in raised.value.violations) < 160
    assert len(raised.value.message) < 400


def test_the_message_names_the_first_violations_and_counts_the_rest() -> None:
    item = valid_create().items[0]
    item.quantity = 0
    with pytest.raises(InvalidInput) as raised:
        request_parsing.create_order(valid_create(items=[item] * 100))
    assert len(raised.value.violations) == 100
    assert raised.value.message.startswith("invalid request (100 field violations): items[0]")
    assert raised.value.message.endswith("; and 97 more")
