"""Every value the API accepts is storable: an order built from any request the validator
accepts encodes into items of both read-model tables that DynamoDB would accept, and decodes
back to the same order (issue 8: a latitude of 1e-300 was accepted, then dead-lettered)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from uoom.orders.v1 import order_pb2, order_service_pb2

from tests.support.dynamodb_limits import (
    MAX_ITEM_BYTES,
    as_dynamodb_returns,
    item_problems,
    item_size,
)
from uoom_orders import wire
from uoom_orders.api import request_parsing
from uoom_orders.application.handlers import new_tracking_code
from uoom_orders.domain import contract_rules as rules
from uoom_orders.domain.errors import InvalidInput
from uoom_orders.domain.lifecycle import place_order
from uoom_orders.dynamodb import items

# The read model's key attributes: the tables' hash key and the GSIs' keys.
KEYS = (items.ORDER_ID, items.CUSTOMER_ID, items.RESTAURANT_ID, items.UPDATED_AT)
NOW = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
TTL = 1_900_000_000

# Any character a protobuf string can hold (no lone surrogates), controls included: the
# validator refuses some of them, and whatever it accepts must be storable.
any_char = st.characters(exclude_categories=["Cs"])
# Mostly what the validator accepts, so most examples get through to the codec.
printable = st.characters(exclude_categories=["Cs", "Cc"])


def text(rule: rules.TextField) -> st.SearchStrategy[str]:
    return st.one_of(
        st.text(printable, min_size=1, max_size=rule.max_len),
        st.text(any_char, max_size=rule.max_len + 2),
        st.just("\U0001f355" * rule.max_len),  # the most bytes per character
    )


def coordinate(rule: rules.Coordinate) -> st.SearchStrategy[float]:
    return st.one_of(
        st.floats(min_value=-rule.limit, max_value=rule.limit),  # subnormals and -0.0 too
        st.sampled_from([1e-300, -5e-324, 1e-130, 1e-9, 9.99e-10, rule.limit, -rule.limit]),
        st.floats(),  # NaN, infinities, out of range: refused
    )


order_items = st.builds(
    order_pb2.OrderItem,
    item_id=text(rules.ITEM_ID),
    name=text(rules.ITEM_NAME),
    quantity=st.integers(rules.QUANTITY.low, rules.QUANTITY.high),
    unit_price=st.builds(
        order_pb2.Money,
        currency_code=st.just("EUR"),
        amount_minor=st.integers(rules.UNIT_PRICE_MINOR.low, rules.UNIT_PRICE_MINOR.high),
    ),
)

requests = st.builds(
    order_service_pb2.CreateOrderRequest,
    request_id=st.uuids().map(str),
    customer_id=st.uuids().map(str),
    restaurant_id=st.uuids().map(str),
    channel_id=st.one_of(st.just(""), st.from_regex(r"[A-Za-z0-9._-]{1,100}", fullmatch=True)),
    items=st.lists(order_items, min_size=1, max_size=rules.ITEMS.max_items),
    delivery_location=st.builds(
        order_pb2.DeliveryLocation,
        latitude=coordinate(rules.LATITUDE),
        longitude=coordinate(rules.LONGITUDE),
        address=text(rules.ADDRESS),
        city=text(rules.CITY),
        postal_code=text(rules.POSTAL_CODE),
    ),
)
# Any second up to the last day of year 9999, with nanoseconds the server drops.
LAST_SECOND = int((datetime(9999, 12, 31, tzinfo=UTC) - NOW).total_seconds())
future_times = st.tuples(st.integers(1, LAST_SECOND), st.integers(0, 999_999_999))


def accepted_order(
    request: order_service_pb2.CreateOrderRequest, eta: tuple[int, int] | None
) -> order_pb2.Order:
    """The order the service would store for `request` (rejecting the example when the
    validator refuses it), as the projector receives it."""
    request = order_service_pb2.CreateOrderRequest.FromString(request.SerializeToString())
    if eta is not None:
        seconds, nanos = eta
        request.estimated_delivery_time.FromDatetime(NOW + timedelta(seconds=seconds))
        request.estimated_delivery_time.nanos = nanos
    try:
        command = request_parsing.create_order(request)
    except InvalidInput:
        assume(False)
        raise
    order = place_order(command, order_id=uuid.uuid4(), tracking_code=new_tracking_code(), now=NOW)
    return wire.order_to_proto(order)


LARGEST = order_service_pb2.CreateOrderRequest(
    request_id=str(uuid.uuid4()),
    customer_id=str(uuid.uuid4()),
    restaurant_id=str(uuid.uuid4()),
    channel_id="c" * rules.CHANNEL_ID.max_len,
    items=[
        order_pb2.OrderItem(
            item_id="\U0001f355" * rules.ITEM_ID.max_len,
            name="\U0001f355" * rules.ITEM_NAME.max_len,
            quantity=rules.QUANTITY.high,
            unit_price=order_pb2.Money(currency_code="EUR", amount_minor=10_000_000),
        )
    ]
    * rules.ITEMS.max_items,
    delivery_location=order_pb2.DeliveryLocation(
        latitude=-1e-300,
        longitude=179.99999999999997,
        address="\U0001f355" * rules.ADDRESS.max_len,
        city="\U0001f355" * rules.CITY.max_len,
        postal_code="\U0001f355" * rules.POSTAL_CODE.max_len,
    ),
)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(request=requests, eta=st.none() | future_times)
@example(
    request=LARGEST,
    eta=(int((datetime(9999, 12, 31, tzinfo=UTC) - NOW).total_seconds()), 999_999_999),
)
def test_every_accepted_order_is_storable_in_both_tables_and_decodes_equal(
    request: order_service_pb2.CreateOrderRequest, eta: tuple[int, int] | None
) -> None:
    order = accepted_order(request, eta)

    status_item = items.status_item(order, TTL)
    details_item = items.details_item(order, TTL)
    assert item_problems(status_item, KEYS) == []
    assert item_problems(details_item, KEYS) == []

    for stored in (details_item, as_dynamodb_returns(details_item)):
        assert items.order_from_item(stored) == order
        assert items.summary_from_item(stored) == wire.summary_from_order(order)
    for stored in (status_item, as_dynamodb_returns(status_item)):
        assert items.summary_from_item(stored) == wire.summary_from_order(order)


def test_the_largest_accepted_order_is_far_below_the_item_size_limit() -> None:
    order = accepted_order(LARGEST, None)
    size = item_size(items.details_item(order, TTL))
    assert 100 * 1024 < size < MAX_ITEM_BYTES // 2


def test_the_issues_latitude_is_stored_as_zero() -> None:
    request = order_service_pb2.CreateOrderRequest()
    request.CopyFrom(LARGEST)
    request.delivery_location.latitude = 1e-300
    order = accepted_order(request, None)
    assert order.delivery_location.latitude == 0.0
    assert item_problems(items.details_item(order, TTL), KEYS) == []
