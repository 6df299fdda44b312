"""The read model's item codec: `order_pb2` messages to and from DynamoDB items, both tables.

Items are in the low-level attribute-value form (`{"S": ...}`, `{"N": ...}`) that the aioboto3
client speaks, so no `Decimal` and no boto3 TypeSerializer is involved anywhere.

Attributes follow the reference write-up's sample records, with two deliberate changes:
money is integer minor units plus a currency code (`totalAmountMinor` + `currencyCode`, never a
float), and every item carries `version` for the projector's "newest version wins" condition.
Times are ISO-8601 UTC strings with a fixed six-digit fraction ("2024-01-15T13:00:00.000000Z"):
fixed width makes string order equal time order, which the GSIs' `updatedAt` range key needs.

The inverse functions are exact: proto → item → proto gives an equal message for every order
the service produces (times at microsecond precision, as PostgreSQL keeps them; one currency
per order; `total`, `created_at`, `updated_at` and `delivery_location` set).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from uoom.orders.v1 import order_pb2

from uoom_orders.dynamodb.times import format_timestamp, parse_timestamp
from uoom_orders.wire import order_from_summary

# A DynamoDB attribute value in the low-level form, e.g. {"S": "x"} or {"M": {...}}.
AttributeValue = dict[str, Any]
Item = dict[str, AttributeValue]

# --- attribute names (the read path queries by them) ---------------------------------------
ORDER_ID = "orderId"
STATUS = "status"
CUSTOMER_ID = "customerId"
RESTAURANT_ID = "restaurantId"
CHANNEL_ID = "channelId"
TOTAL_AMOUNT_MINOR = "totalAmountMinor"
CURRENCY_CODE = "currencyCode"
ESTIMATED_DELIVERY_TIME = "estimatedDeliveryTime"
TRACKING_CODE = "trackingCode"
CREATED_AT = "createdAt"
UPDATED_AT = "updatedAt"
VERSION = "version"
TTL = "ttl"
# Details table only.
ITEMS = "items"
DELIVERY_LOCATION = "deliveryLocation"
# Inside each element of `items`.
ITEM_ID = "itemId"
ITEM_NAME = "name"
ITEM_QUANTITY = "quantity"
ITEM_UNIT_PRICE_MINOR = "unitPriceMinor"
ITEM_TOTAL_PRICE_MINOR = "totalPriceMinor"
# Inside `deliveryLocation`.
LATITUDE = "latitude"
LONGITUDE = "longitude"
ADDRESS = "address"
CITY = "city"
POSTAL_CODE = "postalCode"

_STATUS_PREFIX = "ORDER_STATUS_"


# --- scalars -------------------------------------------------------------------------------
def _status_name(number: int) -> str:
    try:
        name = order_pb2.OrderStatus.Name(number)  # type: ignore[arg-type]
    except ValueError:
        raise ValueError(f"unknown order status {number}") from None
    if number == order_pb2.ORDER_STATUS_UNSPECIFIED:
        raise ValueError("order status is unspecified")
    return name.removeprefix(_STATUS_PREFIX)


def _status_number(name: str) -> order_pb2.OrderStatus.ValueType:
    try:
        number = order_pb2.OrderStatus.Value(_STATUS_PREFIX + name)
    except ValueError:
        raise ValueError(f"unknown order status {name!r}") from None
    if number == order_pb2.ORDER_STATUS_UNSPECIFIED:
        raise ValueError("order status is unspecified")
    return number


def _s(value: str) -> AttributeValue:
    return {"S": value}


def _n(value: int) -> AttributeValue:
    return {"N": str(value)}


def _float_n(value: float) -> AttributeValue:
    # repr() is the shortest text that parses back to the same double (at most 17 digits,
    # well inside DynamoDB's 38), so float(text) restores the exact value even after
    # DynamoDB rewrites the number in its own canonical form.
    if not math.isfinite(value):
        raise ValueError(f"{value!r} is not a number DynamoDB can store")
    return {"N": repr(value)}


def _get(item: Mapping[str, AttributeValue], name: str, kind: str) -> Any:
    try:
        return item[name][kind]
    except (KeyError, TypeError):
        raise ValueError(f"read-model item has no {kind} attribute {name!r}") from None


def _get_int(item: Mapping[str, AttributeValue], name: str) -> int:
    return int(_get(item, name, "N"))


# --- encoding ------------------------------------------------------------------------------
def ttl_after(hours: int, now_epoch: float) -> int:
    """The `ttl` value for an item written at `now_epoch` that should live `hours`."""
    return int(now_epoch) + hours * 3600


def item_key(order_id: str) -> Item:
    """The primary key of an order's item in either table."""
    return {ORDER_ID: _s(order_id)}


def _summary_attributes(order: order_pb2.Order | order_pb2.OrderSummary, ttl_epoch: int) -> Item:
    if not order.order_id:
        raise ValueError("order has no order_id")
    if order.version < 1:
        raise ValueError(f"order {order.order_id} has version {order.version}; versions start at 1")
    item: Item = {
        ORDER_ID: _s(order.order_id),
        STATUS: _s(_status_name(order.status)),
        CUSTOMER_ID: _s(order.customer_id),
        RESTAURANT_ID: _s(order.restaurant_id),
        CHANNEL_ID: _s(order.channel_id),
        TOTAL_AMOUNT_MINOR: _n(order.total.amount_minor),
        CURRENCY_CODE: _s(order.total.currency_code),
        TRACKING_CODE: _s(order.tracking_code),
        CREATED_AT: _s(format_timestamp(order.created_at)),
        UPDATED_AT: _s(format_timestamp(order.updated_at)),
        VERSION: _n(order.version),
        TTL: _n(ttl_epoch),
    }
    if order.HasField("estimated_delivery_time"):
        item[ESTIMATED_DELIVERY_TIME] = _s(format_timestamp(order.estimated_delivery_time))
    return item


def status_item(order: order_pb2.Order | order_pb2.OrderSummary, ttl_epoch: int) -> Item:
    """The order-status table's item: the summary fields, no items or location (an order or
    its status record give the same item)."""
    return _summary_attributes(order, ttl_epoch)


def details_item(order: order_pb2.Order, ttl_epoch: int) -> Item:
    """The order-details table's item: the summary fields plus items and delivery location.

    Raises ValueError when an item is priced in another currency than the order's total:
    the contract forbids it, and the item stores one currency per order.
    """
    item = _summary_attributes(order, ttl_epoch)
    currency = order.total.currency_code
    lines: list[AttributeValue] = []
    for line in order.items:
        if line.unit_price.currency_code != currency or line.total_price.currency_code != currency:
            raise ValueError(
                f"order {order.order_id}: item {line.item_id!r} is not priced in {currency!r}"
            )
        lines.append(
            {
                "M": {
                    ITEM_ID: _s(line.item_id),
                    ITEM_NAME: _s(line.name),
                    ITEM_QUANTITY: _n(line.quantity),
                    ITEM_UNIT_PRICE_MINOR: _n(line.unit_price.amount_minor),
                    ITEM_TOTAL_PRICE_MINOR: _n(line.total_price.amount_minor),
                }
            }
        )
    item[ITEMS] = {"L": lines}
    location = order.delivery_location
    item[DELIVERY_LOCATION] = {
        "M": {
            LATITUDE: _float_n(location.latitude),
            LONGITUDE: _float_n(location.longitude),
            ADDRESS: _s(location.address),
            CITY: _s(location.city),
            POSTAL_CODE: _s(location.postal_code),
        }
    }
    return item


# --- decoding ------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ItemIdentity:
    """What tells one stored write of an order apart from any other: its version and its update
    time (a lost commit's version number is reused later, but never with the same time)."""

    version: int
    updated_at: str

    @classmethod
    def of(cls, item: Mapping[str, AttributeValue]) -> ItemIdentity:
        """The identity of a stored item; raises ValueError when it lacks either attribute."""
        return cls(_get_int(item, VERSION), str(_get(item, UPDATED_AT, "S")))


def item_version(item: Mapping[str, AttributeValue]) -> int:
    """The order version an item holds."""
    return _get_int(item, VERSION)


def is_expired(item: Mapping[str, AttributeValue], now_epoch: float) -> bool:
    """True when the item's `ttl` has passed: DynamoDB may still return it for up to two days
    (and moto forever), so readers must treat it as absent. No `ttl` means it never expires."""
    ttl = item.get(TTL)
    return ttl is not None and int(ttl["N"]) < now_epoch


def summary_from_item(item: Mapping[str, AttributeValue]) -> order_pb2.OrderSummary:
    """The status record in an item of either table; raises ValueError for a malformed item."""
    summary = order_pb2.OrderSummary(
        order_id=_get(item, ORDER_ID, "S"),
        status=_status_number(_get(item, STATUS, "S")),
        customer_id=_get(item, CUSTOMER_ID, "S"),
        restaurant_id=_get(item, RESTAURANT_ID, "S"),
        channel_id=_get(item, CHANNEL_ID, "S"),
        total=order_pb2.Money(
            currency_code=_get(item, CURRENCY_CODE, "S"),
            amount_minor=_get_int(item, TOTAL_AMOUNT_MINOR),
        ),
        tracking_code=_get(item, TRACKING_CODE, "S"),
        created_at=parse_timestamp(_get(item, CREATED_AT, "S")),
        updated_at=parse_timestamp(_get(item, UPDATED_AT, "S")),
        version=_get_int(item, VERSION),
    )
    if ESTIMATED_DELIVERY_TIME in item:
        summary.estimated_delivery_time.CopyFrom(
            parse_timestamp(_get(item, ESTIMATED_DELIVERY_TIME, "S"))
        )
    return summary


def order_from_item(item: Mapping[str, AttributeValue]) -> order_pb2.Order:
    """The whole order in an order-details item; raises ValueError for a malformed item."""
    summary = summary_from_item(item)
    currency = summary.total.currency_code
    order = order_from_summary(summary)
    for element in _get(item, ITEMS, "L"):
        line = element.get("M") if isinstance(element, dict) else None
        if not isinstance(line, dict):
            raise ValueError(f"read-model item {summary.order_id}: an order line is not a map")
        order.items.append(
            order_pb2.OrderItem(
                item_id=_get(line, ITEM_ID, "S"),
                name=_get(line, ITEM_NAME, "S"),
                quantity=_get_int(line, ITEM_QUANTITY),
                unit_price=order_pb2.Money(
                    currency_code=currency, amount_minor=_get_int(line, ITEM_UNIT_PRICE_MINOR)
                ),
                total_price=order_pb2.Money(
                    currency_code=currency, amount_minor=_get_int(line, ITEM_TOTAL_PRICE_MINOR)
                ),
            )
        )
    location = _get(item, DELIVERY_LOCATION, "M")
    order.delivery_location.CopyFrom(
        order_pb2.DeliveryLocation(
            latitude=float(_get(location, LATITUDE, "N")),
            longitude=float(_get(location, LONGITUDE, "N")),
            address=_get(location, ADDRESS, "S"),
            city=_get(location, CITY, "S"),
            postal_code=_get(location, POSTAL_CODE, "S"),
        )
    )
    return order
