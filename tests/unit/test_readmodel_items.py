"""The read-model item codec: exact round trips, the attribute layout, expiry."""

from __future__ import annotations

import random
import struct
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from uoom.orders.v1 import order_pb2

from uoom_orders import wire
from uoom_orders.domain.order import DeliveryLocation, Order, OrderItem, OrderStatus
from uoom_orders.dynamodb import items, times

CREATED = datetime(2024, 1, 15, 13, 0, 0, 123456, tzinfo=UTC)


def make_order(**changes: object) -> Order:
    order = Order(
        order_id=UUID("550e8400-e29b-41d4-a716-446655440000"),
        customer_id=UUID("123e4567-e89b-12d3-a456-426614174000"),
        restaurant_id=UUID("550e8400-e29b-41d4-a716-446655440001"),
        channel_id="default-channel",
        status=OrderStatus.CONFIRMED,
        currency_code="USD",
        items=(
            OrderItem("pizza-margherita", "Pizza Margherita", 1, 1599),
            OrderItem("cola", "Cola 0,33 l", 2, 500),
        ),
        delivery_location=DeliveryLocation(
            40.7128, -74.0060, "123 Main St, New York, NY 10001", "New York", "10001"
        ),
        estimated_delivery_time=datetime(2024, 1, 15, 14, 30, tzinfo=UTC),
        tracking_code="TRK23456789AB",
        created_at=CREATED,
        updated_at=CREATED + timedelta(minutes=5),
        version=2,
    )
    return replace(order, **changes)  # type: ignore[arg-type]


def test_status_item_has_the_reference_layout_with_money_in_minor_units() -> None:
    item = items.status_item(wire.order_to_proto(make_order()), 1_737_648_000)
    assert item == {
        "orderId": {"S": "550e8400-e29b-41d4-a716-446655440000"},
        "status": {"S": "CONFIRMED"},
        "customerId": {"S": "123e4567-e89b-12d3-a456-426614174000"},
        "restaurantId": {"S": "550e8400-e29b-41d4-a716-446655440001"},
        "channelId": {"S": "default-channel"},
        "totalAmountMinor": {"N": "2599"},
        "currencyCode": {"S": "USD"},
        "estimatedDeliveryTime": {"S": "2024-01-15T14:30:00.000000Z"},
        "trackingCode": {"S": "TRK23456789AB"},
        "createdAt": {"S": "2024-01-15T13:00:00.123456Z"},
        "updatedAt": {"S": "2024-01-15T13:05:00.123456Z"},
        "version": {"N": "2"},
        "ttl": {"N": "1737648000"},
    }


def test_details_item_adds_lines_and_location() -> None:
    item = items.details_item(wire.order_to_proto(make_order()), 1)
    assert item["items"] == {
        "L": [
            {
                "M": {
                    "itemId": {"S": "pizza-margherita"},
                    "name": {"S": "Pizza Margherita"},
                    "quantity": {"N": "1"},
                    "unitPriceMinor": {"N": "1599"},
                    "totalPriceMinor": {"N": "1599"},
                }
            },
            {
                "M": {
                    "itemId": {"S": "cola"},
                    "name": {"S": "Cola 0,33 l"},
                    "quantity": {"N": "2"},
                    "unitPriceMinor": {"N": "500"},
                    "totalPriceMinor": {"N": "1000"},
                }
            },
        ]
    }
    assert item["deliveryLocation"] == {
        "M": {
            "latitude": {"N": "40.7128"},
            "longitude": {"N": "-74.006"},
            "address": {"S": "123 Main St, New York, NY 10001"},
            "city": {"S": "New York"},
            "postalCode": {"S": "10001"},
        }
    }
    assert set(item) - set(items.status_item(wire.order_to_proto(make_order()), 1)) == {
        "items",
        "deliveryLocation",
    }


def _only_plain_values(value: object) -> bool:
    """True when the structure holds only dicts, lists and str (no Decimal, float or int)."""
    if isinstance(value, dict):
        return all(isinstance(k, str) and _only_plain_values(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_only_plain_values(v) for v in value)
    return isinstance(value, str)


@pytest.mark.parametrize(
    "order",
    [
        make_order(),
        make_order(estimated_delivery_time=None, status=OrderStatus.PENDING, version=1),
        make_order(items=(), currency_code="EUR"),
        make_order(channel_id="", tracking_code="", status=OrderStatus.CANCELLED),
        make_order(
            created_at=datetime(1, 1, 1, tzinfo=UTC),
            updated_at=datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
            version=2**62,
        ),
        make_order(
            delivery_location=DeliveryLocation(-90.0, 180.0, "", "", ""),
            items=(OrderItem("x" * 100, "ü" * 200, 1000, 2**40),),
        ),
    ],
    ids=["full", "no-eta", "no-items", "empty-strings", "extreme-times", "extreme-values"],
)
def test_round_trip_is_exact_for_both_tables(order: Order) -> None:
    message = wire.order_to_proto(order)
    status = items.status_item(message, 1_700_000_000)
    details = items.details_item(message, 1_700_000_000)
    assert _only_plain_values(status)
    assert _only_plain_values(details)
    assert items.order_from_item(details) == message
    assert items.summary_from_item(details) == wire.summary_from_order(message)
    assert items.summary_from_item(status) == wire.summary_from_order(message)
    assert wire.order_from_proto(items.order_from_item(details)) == order


def test_coordinates_survive_exactly() -> None:
    rng = random.Random(20240115)
    awkward = [0.1 + 0.2, 1e-5, -1e-7, 89.99999999999999, -179.99999999999997, 5e-100, 0.0]
    randoms = [rng.uniform(-90, 90) for _ in range(500)]
    # Random bit patterns inside the valid range cover every mantissa shape.
    bits = [struct.unpack("<d", rng.randbytes(8))[0] for _ in range(2000)]
    finite_in_range = [value for value in bits if abs(value) <= 180 and value == value]
    for value in awkward + randoms + finite_in_range:
        location = DeliveryLocation(value, -value, "a", "c", "p")
        message = wire.order_to_proto(make_order(delivery_location=location))
        back = items.order_from_item(items.details_item(message, 0)).delivery_location
        assert (back.latitude, back.longitude) == (value, -value), value


def test_non_finite_coordinates_are_refused() -> None:
    location = DeliveryLocation(float("nan"), 0.0, "a", "c", "p")
    with pytest.raises(ValueError, match="not a number"):
        items.details_item(wire.order_to_proto(make_order(delivery_location=location)), 0)


def test_times_sort_as_strings_in_time_order() -> None:
    rng = random.Random(7)
    moments = sorted(
        datetime(2000, 1, 1, tzinfo=UTC) + timedelta(microseconds=rng.randrange(10**15))
        for _ in range(300)
    )
    texts = [times.format_timestamp(wire.timestamp(moment)) for moment in moments]
    assert texts == sorted(texts)
    assert texts == [times.format_datetime(moment) for moment in moments]
    assert all(len(text) == len("2024-01-15T13:00:00.000000Z") for text in texts)


def test_sub_microsecond_nanos_truncate() -> None:
    text = times.format_timestamp(Timestamp(seconds=0, nanos=999_999_999))
    assert text == "1970-01-01T00:00:00.999999Z"


@pytest.mark.parametrize(
    "text",
    ["2024-01-15T13:00:00Z", "2024-1-15T13:00:00.0000000Z", "2024-01-15T13:00:00.000000", ""],
)
def test_malformed_times_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not a"):
        times.parse_timestamp(text)


def test_unspecified_or_unknown_status_is_refused() -> None:
    message = wire.order_to_proto(make_order())
    message.status = order_pb2.ORDER_STATUS_UNSPECIFIED
    with pytest.raises(ValueError, match="unspecified"):
        items.status_item(message, 0)
    message.status = 99  # type: ignore[assignment]
    with pytest.raises(ValueError, match="unknown order status"):
        items.status_item(message, 0)
    item = items.status_item(wire.order_to_proto(make_order()), 0)
    item["status"] = {"S": "TELEPORTED"}
    with pytest.raises(ValueError, match="unknown order status"):
        items.summary_from_item(item)


def test_item_in_another_currency_is_refused() -> None:
    message = wire.order_to_proto(make_order())
    message.items[0].unit_price.currency_code = "EUR"
    with pytest.raises(ValueError, match="not priced in"):
        items.details_item(message, 0)


def test_malformed_item_raises_value_error() -> None:
    item = items.details_item(wire.order_to_proto(make_order()), 0)
    del item["updatedAt"]
    with pytest.raises(ValueError, match="updatedAt"):
        items.summary_from_item(item)
    item = items.details_item(wire.order_to_proto(make_order()), 0)
    item["items"] = {"L": [{"S": "not a map"}]}
    with pytest.raises(ValueError, match="not a map"):
        items.order_from_item(item)


def test_expiry_reads_ttl_strictly_before_now() -> None:
    item = items.status_item(wire.order_to_proto(make_order()), 1000)
    assert not items.is_expired(item, 999)
    assert not items.is_expired(item, 1000)
    assert items.is_expired(item, 1001)
    del item["ttl"]
    assert not items.is_expired(item, 10**12)


def test_ttl_after_counts_hours_from_now() -> None:
    assert items.ttl_after(72, 1_700_000_000.9) == 1_700_000_000 + 72 * 3600
